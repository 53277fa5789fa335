"""The library as the web page browses it: albums, artists, cover art and playlists stored in the catalogue.

The same grouping, ids and cover art as the Subsonic endpoints (:mod:`.subsonic_model`, :mod:`.subsonic_media`):
an album is ``al-`` and 16 hex digits derived from its tags, an artist ``ar-`` and 16 hex digits, so a link to an
album stays valid across scans. Playlists are the catalogue's (:mod:`soundalike.library.playlists`): a Subsonic
app and the web page see the same ones. Writes go through ``LibraryState.write`` and keep the search caches.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel, Field

from soundalike.library.catalog import Library, Track
from soundalike.library.playlists import MAX_NAME, Playlist, PlaylistError

from .app import MAX_ID, Server, ServerDep, TrackId, TrackOut, _public, playlist_m3u, require_token
from .subsonic_media import cover_image
from .subsonic_model import Album, Artist, Browse, browse_state, sort_name

T = TypeVar("T")

ALBUM_ID = r"^al-[0-9a-f]{16}$"
ARTIST_ID = r"^ar-[0-9a-f]{16}$"
COVER_ID = r"^([0-9]{1,18}|al-[0-9a-f]{16}|ar-[0-9a-f]{16})$"
MAX_PLAYLIST = 5000
PLACEHOLDER = resources.files("soundalike.app.server").joinpath("static", "cover.svg")

views = APIRouter(prefix="/api", dependencies=[Depends(require_token)])

AlbumId = Annotated[str, PathParam(pattern=ALBUM_ID, description="An album id (``al-`` and 16 hex digits).")]
ArtistId = Annotated[str, PathParam(pattern=ARTIST_ID, description="An artist id (``ar-`` and 16 hex digits).")]
PlaylistId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="A playlist id.")]
TrackIds = Annotated[list[Annotated[int, Field(ge=1, le=MAX_ID)]], Field(max_length=MAX_PLAYLIST)]


# --- response and request shapes ----------------------------------------------------------------------------------
class AlbumOut(BaseModel):
    """An album: tracks sharing an album name and album artist."""

    id: str
    name: str
    artist: str
    artist_id: str
    year: int | None
    genre: str | None
    track_count: int
    duration: float
    cover_url: str = Field(description="Its cover art (a neutral placeholder when it has none).")


class AlbumTrackOut(TrackOut):
    """A track of an album, with its position on the album."""

    track_no: int
    disc_no: int


class AlbumDetail(AlbumOut):
    """An album with its tracks in album order."""

    tracks: list[AlbumTrackOut]


class AlbumPage(BaseModel):
    """Albums, sorted by artist (without a leading article), year and name."""

    total: int
    offset: int
    limit: int
    items: list[AlbumOut]


class ArtistOut(BaseModel):
    """An album artist or track artist."""

    id: str
    name: str
    album_count: int
    cover_url: str


class ArtistDetail(ArtistOut):
    """An artist with its albums (newest first) and every track it plays on them."""

    albums: list[AlbumOut]
    tracks: list[TrackOut]


class ArtistPage(BaseModel):
    """Artists, sorted by name without a leading article."""

    total: int
    offset: int
    limit: int
    items: list[ArtistOut]


class PlaylistOut(BaseModel):
    """A playlist stored in the catalogue."""

    id: int
    name: str
    comment: str
    track_count: int
    duration: float
    created_at: float = Field(description="Seconds since the epoch.")
    changed_at: float
    cover_url: str | None = Field(description="The cover of its first track's album (None when empty).")


class PlaylistDetail(PlaylistOut):
    """A playlist with its entries in order (a track may appear more than once)."""

    tracks: list[TrackOut]


class PlaylistIn(BaseModel):
    """A new playlist."""

    name: str = Field(..., min_length=1, max_length=MAX_NAME)
    comment: str = Field("", max_length=2000)
    track_ids: TrackIds = Field(default_factory=list)


class PlaylistPatch(BaseModel):
    """Changes to a playlist: what is given replaces what it had (``track_ids``: the whole content, in order)."""

    name: str | None = Field(None, min_length=1, max_length=MAX_NAME)
    comment: str | None = Field(None, max_length=2000)
    track_ids: TrackIds | None = None


class PlaylistAdd(BaseModel):
    """Tracks to insert before ``position`` (0 = first; none = at the end)."""

    track_ids: TrackIds = Field(..., min_length=1)
    position: int | None = Field(None, ge=0, le=MAX_PLAYLIST)


class PlaylistMove(BaseModel):
    """Move the entry at ``source`` to ``target`` (0-based positions)."""

    source: int = Field(..., ge=0, le=MAX_PLAYLIST)
    target: int = Field(..., ge=0, le=MAX_PLAYLIST)


# --- helpers ------------------------------------------------------------------------------------------------------
def cover_url(item_id: str) -> str:
    """The URL of an item's cover art on this API (always answers an image: the placeholder when there is none)."""
    return f"/api/cover/{item_id}?placeholder=true"


def album_out(a: Album) -> dict[str, Any]:
    """An album's JSON fields (without its tracks)."""
    return {"id": a.id, "name": a.name, "artist": a.artist, "artist_id": a.artist_id, "year": a.year or None,
            "genre": a.genre or None, "track_count": len(a.track_ids), "duration": round(a.duration, 3),
            "cover_url": cover_url(a.id)}


def album_detail(b: Browse, a: Album) -> dict[str, Any]:
    """An album's JSON fields with its tracks in album order."""
    tracks = [{**b.tracks[i].to_dict(), "track_no": b.tracks[i].track_no, "disc_no": b.tracks[i].disc_no}
              for i in a.track_ids]
    return {**album_out(a), "tracks": tracks}


def artist_out(a: Artist) -> dict[str, Any]:
    """An artist's JSON fields (without albums and tracks)."""
    return {"id": a.id, "name": a.name, "album_count": len(a.album_ids), "cover_url": cover_url(a.id)}


def artist_detail(b: Browse, a: Artist) -> dict[str, Any]:
    """An artist's JSON fields with its albums and tracks."""
    return {**artist_out(a), "albums": [album_out(b.albums[k]) for k in a.album_ids],
            "tracks": [t.to_dict() for t in b.tracks_of(a.id)]}


def _sorted_albums(b: Browse) -> list[Album]:
    return sorted(b.albums.values(), key=lambda a: (sort_name(a.artist), a.year or 0, sort_name(a.name), a.id))


def _playlist_out(b: Browse, p: Playlist, ids: list[int]) -> dict[str, Any]:
    first = b.album_of.get(ids[0]) if ids else None
    return {"id": p.id, "name": p.name, "comment": p.comment, "track_count": p.track_count,
            "duration": round(p.duration, 3), "created_at": p.created_at, "changed_at": p.changed_at,
            "cover_url": cover_url(first) if first else None}


def _track_of(server: Server, b: Browse, track_id: int) -> Track | None:
    return b.tracks.get(track_id) or server.state.lib().track(track_id)


def _write(server: Server, work: Callable[[Library], T]) -> T:
    """A playlist change; an unknown playlist answers 404, any other refusal 400."""
    try:
        return server.state.write(work)
    except PlaylistError as exc:
        raise HTTPException(404 if str(exc).startswith("no playlist") else 400, str(exc)) from None


def _or_404(found: T | None, message: str) -> T:
    """``found``, or a 404 answer saying ``message`` when it is None."""
    if found is None:
        raise HTTPException(404, message)
    return found


def _existing(server: Server, playlist_id: int) -> Playlist:
    return _or_404(server.state.lib().playlists.get(playlist_id), f"no playlist with id {playlist_id}")


def _playlist_detail(server: Server, playlist_id: int) -> dict[str, Any]:
    p = _existing(server, playlist_id)
    b = browse_state(server.state)
    ids = server.state.lib().playlists.track_ids(playlist_id)
    tracks = [t.to_dict() for i in ids if (t := _track_of(server, b, i)) is not None]
    return _public(server, {**_playlist_out(b, p, ids), "tracks": tracks})


# --- albums and artists -------------------------------------------------------------------------------------------
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Limit = Annotated[int, Query(ge=1, le=5000)]


def _page(items: Sequence[T], offset: int, limit: int, out: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
    """One page of ``items`` as the paged answers give it: total, offset, limit and the page's items."""
    return {"total": len(items), "offset": offset, "limit": limit,
            "items": [out(x) for x in items[offset:offset + limit]]}


@views.get("/albums", response_model=AlbumPage, summary="Albums, with paging")
def list_albums(server: ServerDep, offset: Offset = 0, limit: Limit = 500) -> dict[str, Any]:
    """Every album (by artist, year and name) with its cover art URL."""
    return _page(_sorted_albums(browse_state(server.state)), offset, limit, album_out)


@views.get("/albums/{album_id}", response_model=AlbumDetail, summary="One album with its tracks")
def get_album(server: ServerDep, album_id: AlbumId) -> dict[str, Any]:
    """An album's tags, cover art URL and tracks (by disc and track number)."""
    b = browse_state(server.state)
    return _public(server, album_detail(b, _or_404(b.albums.get(album_id), f"no album with id {album_id}")))


@views.get("/artists", response_model=ArtistPage, summary="Artists, with paging")
def list_artists(server: ServerDep, offset: Offset = 0, limit: Limit = 500) -> dict[str, Any]:
    """Every artist (album artists and track artists), sorted by name without a leading article."""
    b = browse_state(server.state)
    return _page(sorted(b.artists.values(), key=lambda a: (sort_name(a.name), a.id)), offset, limit, artist_out)


@views.get("/artists/{artist_id}", response_model=ArtistDetail, summary="One artist with albums and tracks")
def get_artist(server: ServerDep, artist_id: ArtistId) -> dict[str, Any]:
    """An artist's albums (newest first) and every track it plays on them."""
    b = browse_state(server.state)
    return _public(server, artist_detail(b, _or_404(b.artists.get(artist_id), f"no artist with id {artist_id}")))


@views.get("/tracks/{track_id}/album", response_model=AlbumDetail, summary="The album a track is on")
def album_of_track(server: ServerDep, track_id: TrackId) -> dict[str, Any]:
    """The album holding this track, with its tracks."""
    b = browse_state(server.state)
    key = _or_404(b.album_of.get(track_id), f"no track with id {track_id}")
    return _public(server, album_detail(b, b.albums[key]))


@views.get("/tracks/{track_id}/artist", response_model=ArtistDetail, summary="The artist of a track")
def artist_of_track(server: ServerDep, track_id: TrackId) -> dict[str, Any]:
    """The track's artist (its album artist when the track has no artist tag), with albums and tracks."""
    from .subsonic_model import UNKNOWN_ARTIST, artist_id

    b = browse_state(server.state)
    track = _or_404(b.tracks.get(track_id), f"no track with id {track_id}")
    found = _or_404(b.artists.get(artist_id(track.artist or track.album_artist or UNKNOWN_ARTIST)),
                    f"track {track_id} has no artist")
    return _public(server, artist_detail(b, found))


@views.get("/cover/{item_id}", summary="Cover art of a track, album or artist", response_class=Response,
           responses={200: {"content": {"image/*": {}}}, 404: {"description": "No cover art (placeholder=false)"}})
def get_cover(server: ServerDep, item_id: Annotated[str, PathParam(pattern=COVER_ID, description="A track, album "
                                                                                                 "or artist id.")],
              size: Annotated[int | None, Query(ge=16, le=2048, description="Fit in size x size pixels.")] = None,
              placeholder: Annotated[bool, Query(description="A neutral placeholder image (SVG) instead of 404 "
                                                             "when there is no art.")] = False) -> Response:
    """The picture embedded in the files (front cover first) or a ``cover.jpg``/``folder.jpg`` beside them."""
    found = cover_image(server.state, browse_state(server.state), item_id, size)
    headers = {"Cache-Control": "private, max-age=86400"}
    if found is None:
        if not placeholder:
            raise HTTPException(404, f"no cover art for {item_id}")
        return Response(PLACEHOLDER.read_bytes(), media_type="image/svg+xml",
                        headers={**headers, "X-Cover": "placeholder"})
    data, kind = found
    return Response(data, media_type=kind, headers=headers)


# --- plays --------------------------------------------------------------------------------------------------------
@views.post("/tracks/{track_id}/played", status_code=204, response_class=Response, summary="Record a play",
            responses={204: {"description": "Recorded"}})
def track_played(server: ServerDep, track_id: TrackId) -> Response:
    """Record in the catalogue that the track was played (the page calls it once half of a track was heard)."""
    _or_404(server.state.track(track_id), f"no track with id {track_id}")
    server.state.write(lambda lib: lib.plays.record(track_id, client="web"))
    return Response(status_code=204)


# --- playlists ----------------------------------------------------------------------------------------------------
@views.get("/playlists", response_model=list[PlaylistOut], summary="Every stored playlist")
def list_playlists(server: ServerDep) -> list[dict[str, Any]]:
    """The catalogue's playlists, by name (the same as a Subsonic app sees)."""
    b = browse_state(server.state)
    lib = server.state.lib()
    return [_playlist_out(b, p, lib.playlists.track_ids(p.id)[:1]) for p in lib.playlists.all()]


@views.post("/playlists", response_model=PlaylistDetail, status_code=201, summary="Create a playlist")
def create_playlist(server: ServerDep, body: PlaylistIn) -> dict[str, Any]:
    """A new playlist with a name and, optionally, tracks in order."""
    created = _write(server, lambda lib: lib.playlists.create(body.name, body.track_ids, comment=body.comment))
    return _playlist_detail(server, created.id)


@views.get("/playlists/{playlist_id}", response_model=PlaylistDetail, summary="One playlist with its tracks")
def get_playlist(server: ServerDep, playlist_id: PlaylistId) -> dict[str, Any]:
    """A playlist's fields and entries in order."""
    return _playlist_detail(server, playlist_id)


@views.patch("/playlists/{playlist_id}", response_model=PlaylistDetail, summary="Rename or refill a playlist")
def update_playlist(server: ServerDep, playlist_id: PlaylistId, body: PlaylistPatch) -> dict[str, Any]:
    """Change the name or comment, or replace the whole content (``track_ids``) in one transaction each."""
    def change(lib: Library) -> None:
        if body.name is not None or body.comment is not None:
            lib.playlists.update(playlist_id, name=body.name, comment=body.comment)
        if body.track_ids is not None:
            lib.playlists.replace_tracks(playlist_id, body.track_ids)
        if body.name is None and body.comment is None and body.track_ids is None:
            lib.playlists.track_ids(playlist_id)  # nothing to change; 404 for an unknown playlist

    _write(server, change)
    return _playlist_detail(server, playlist_id)


@views.delete("/playlists/{playlist_id}", status_code=204, response_class=Response, summary="Delete a playlist",
              responses={204: {"description": "Deleted"}})
def delete_playlist(server: ServerDep, playlist_id: PlaylistId) -> Response:
    """Delete the playlist (its tracks stay in the library)."""
    _write(server, lambda lib: lib.playlists.delete(playlist_id))
    return Response(status_code=204)


@views.post("/playlists/{playlist_id}/tracks", response_model=PlaylistDetail, summary="Add tracks to a playlist")
def add_to_playlist(server: ServerDep, playlist_id: PlaylistId, body: PlaylistAdd) -> dict[str, Any]:
    """Insert tracks before ``position`` (at the end by default); a track may appear more than once."""
    _write(server, lambda lib: lib.playlists.add_tracks(playlist_id, body.track_ids, body.position))
    return _playlist_detail(server, playlist_id)


@views.post("/playlists/{playlist_id}/move", response_model=PlaylistDetail, summary="Reorder a playlist")
def move_in_playlist(server: ServerDep, playlist_id: PlaylistId, body: PlaylistMove) -> dict[str, Any]:
    """Move one entry from ``source`` to ``target``."""
    _write(server, lambda lib: lib.playlists.move(playlist_id, body.source, body.target))
    return _playlist_detail(server, playlist_id)


@views.delete("/playlists/{playlist_id}/tracks/{position}", response_model=PlaylistDetail,
              summary="Remove one entry of a playlist")
def remove_from_playlist(server: ServerDep, playlist_id: PlaylistId,
                         position: Annotated[int, PathParam(ge=0, le=MAX_PLAYLIST, description="0-based.")]
                         ) -> dict[str, Any]:
    """Remove the entry at ``position`` (0-based)."""
    _write(server, lambda lib: lib.playlists.remove_positions(playlist_id, [position]))
    return _playlist_detail(server, playlist_id)


@views.get("/playlists/{playlist_id}/playlist.m3u", summary="A stored playlist as an M3U file",
           response_class=Response, responses={200: {"content": {"audio/x-mpegurl": {}}}})
def stored_playlist_m3u(server: ServerDep, request: Request, playlist_id: PlaylistId,
                        target: Annotated[str, Query(pattern="^(paths|urls)$", description="paths (loopback "
                                                     "clients only) or urls (stream URLs of this server)")] = "paths"
                        ) -> Response:
    """Extended M3U (UTF-8) of the playlist, named after it; an empty playlist gives an M3U with no entries."""
    p = _existing(server, playlist_id)
    ids = server.state.lib().playlists.track_ids(playlist_id)
    name = p.name.replace("\n", " ").replace("\r", " ")
    if not ids:
        answer = Response(f"#EXTM3U\n#PLAYLIST:{name}\n".encode(), media_type="audio/x-mpegurl")
    else:
        answer = playlist_m3u(server, request, ids=",".join(map(str, ids)), title=name[:200], target=target)
    answer.headers["Content-Disposition"] = m3u_disposition(name)
    return answer


def m3u_disposition(name: str) -> str:
    """``attachment`` named after the playlist (``NAME.m3u8``; an ASCII fallback for old clients)."""
    safe = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "_", name).strip(" .") or "playlist"
    ascii_name = safe.encode("ascii", "replace").decode().replace("?", "_")
    return f'attachment; filename="{ascii_name}.m3u8"; filename*=UTF-8\'\'{quote(safe)}.m3u8'
