"""Subsonic playlists, plays and stars, all stored in the catalogue (:mod:`soundalike.library.playlists`,
:mod:`soundalike.library.listening`): they outlive the server, and other front ends see the same playlists.

``scrobble`` with ``submission=true`` (the default) records a play; ``submission=false`` says what a player is
playing now (kept in memory for ``getNowPlaying``, for 30 minutes). Stars name songs by id and albums and
artists by their tag-derived ids. Writes go through ``LibraryState.write``: they do not invalidate the server's
track list and search indexes as a scan does.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from soundalike.library.catalog import Library
from soundalike.library.playlists import Playlist

from . import subsonic_model as model
from .subsonic_model import Browse, Marks, browse
from .subsonic_protocol import Call, SubsonicError, clamp_int, endpoint, missing, not_found

NOW_PLAYING_SECONDS = 30 * 60
_now_lock = threading.Lock()


def _playlist_id(raw: str) -> int:
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise not_found("Playlist", raw)
    return int(text)


def _song_ids(b: Browse, raws: list[str]) -> list[int]:
    return [b.track(raw).id for raw in raws]


def _playlist(call: Call, b: Browse, p: Playlist, marks: Marks | None = None, entries: bool = False
              ) -> dict[str, Any]:
    """A Subsonic ``Playlist`` (with its ``entry`` songs when ``entries``)."""
    ids = call.server.state.lib().playlists.track_ids(p.id)
    out: dict[str, Any] = {"id": str(p.id), "name": p.name, "comment": p.comment or None, "owner": call.user,
                           "public": p.public, "songCount": p.track_count, "duration": int(round(p.duration)),
                           "created": model.iso(p.created_at), "changed": model.iso(p.changed_at),
                           "coverArt": b.album_of.get(ids[0]) if ids else None}
    if entries:
        marks = marks or Marks.read(call)
        out["entry"] = [model.song(call, b, b.tracks[i], marks) for i in ids if i in b.tracks]
    return out


@endpoint("getPlaylists", "Every playlist")
def get_playlists(call: Call) -> dict[str, Any]:
    """Every playlist of the catalogue (by name)."""
    b = browse(call)
    return {"playlists": {"playlist": [_playlist(call, b, p) for p in call.server.state.lib().playlists.all()]}}


def _answer(call: Call, playlist_id: int) -> dict[str, Any]:
    found = call.server.state.lib().playlists.get(playlist_id)
    if found is None:
        raise not_found("Playlist", str(playlist_id))
    return {"playlist": _playlist(call, browse(call), found, entries=True)}


@endpoint("getPlaylist", "One playlist with its songs")
def get_playlist(call: Call) -> dict[str, Any]:
    """``id``: a playlist id."""
    return _answer(call, _playlist_id(call.params.required("id")))


@endpoint("createPlaylist", "Create a playlist, or replace the songs of one")
def create_playlist(call: Call) -> dict[str, Any]:
    """``name`` and ``songId`` (repeated) make a playlist; ``playlistId`` and ``songId`` replace its songs (and
    ``name``, if given, renames it). Answers the playlist."""
    p = call.params
    b = browse(call)
    songs = _song_ids(b, p.all("songId"))
    raw_id, name = p.get("playlistId"), p.get("name")
    if raw_id:
        playlist_id = _playlist_id(raw_id)

        call.server.state.write(lambda lib: lib.playlists.edit(playlist_id, name=name or None, tracks=songs))
    elif name:
        playlist_id = call.server.state.write(lambda lib: lib.playlists.create(name, songs).id)
    else:
        raise missing("name or playlistId")
    return _answer(call, playlist_id)


@endpoint("updatePlaylist", "Rename a playlist, add or remove songs")
def update_playlist(call: Call) -> dict[str, Any]:
    """``playlistId``; optional ``name``, ``comment``, ``public``, ``songIndexToRemove`` (repeated, 0-based, of the
    playlist before this call) and ``songIdToAdd`` (repeated, appended)."""
    p = call.params
    playlist_id = _playlist_id(p.required("playlistId"))
    b = browse(call)
    adds = _song_ids(b, p.all("songIdToAdd"))
    removes = [clamp_int("songIndexToRemove", raw, -1, 10**9) for raw in p.all("songIndexToRemove")]
    public = None if p.get("public") in (None, "") else p.flag("public", False)

    # one transaction, everything checked first: a bad index leaves the name (and the rest) as it was
    call.server.state.write(lambda lib: lib.playlists.edit(playlist_id, name=p.get("name") or None,
                                                           comment=p.get("comment"), public=public, remove=removes,
                                                           add=adds))
    return {}


@endpoint("deletePlaylist", "Delete a playlist")
def delete_playlist(call: Call) -> dict[str, Any]:
    """``id``: a playlist id."""
    playlist_id = _playlist_id(call.params.required("id"))
    call.server.state.write(lambda lib: lib.playlists.delete(playlist_id))
    return {}


def _now_playing(call: Call) -> dict[tuple[str, str], tuple[int, float]]:
    """``(user, client) -> (song id, since)`` of this server (in memory)."""
    app_state = call.request.app.state
    with _now_lock:
        if not hasattr(app_state, "subsonic_now_playing"):
            app_state.subsonic_now_playing = {}
        table: dict[tuple[str, str], tuple[int, float]] = app_state.subsonic_now_playing
        return table


@endpoint("scrobble", "Record plays (or what is playing now)")
def scrobble(call: Call) -> dict[str, Any]:
    """``id`` (repeated), ``time`` (repeated, ms since the epoch, default now), ``submission`` (true: a play is
    recorded in the catalogue; false: the song is playing now)."""
    p = call.params
    raws = p.all("id")
    if not raws:
        raise missing("id")
    b = browse(call)
    ids = _song_ids(b, raws)
    times = [clamp_int("time", raw, 0, 10**15) / 1000.0 for raw in p.all("time")]
    if p.flag("submission", True):
        def record(lib: Library) -> None:
            for n, track_id in enumerate(ids):
                lib.plays.record(track_id, times[n] if n < len(times) else None, client=call.client)

        call.server.state.write(record)
    else:
        table = _now_playing(call)
        with _now_lock:
            table[(call.user, call.client)] = (ids[-1], time.time())
    return {}


@endpoint("getNowPlaying", "What players are playing now")
def get_now_playing(call: Call) -> dict[str, Any]:
    """Songs that players announced (``scrobble`` with ``submission=false``) in the last 30 minutes."""
    b, marks, now = browse(call), Marks.read(call), time.time()
    table = _now_playing(call)
    with _now_lock:
        current = sorted(table.items(), key=lambda item: -item[1][1])
    entries = []
    for n, ((user, client), (track_id, since)) in enumerate(current):
        if now - since <= NOW_PLAYING_SECONDS and track_id in b.tracks:
            entries.append({**model.song(call, b, b.tracks[track_id], marks), "username": user,
                            "minutesAgo": int((now - since) // 60), "playerId": n + 1,
                            "playerName": client or None})
    return {"nowPlaying": {"entry": entries}}


def _star_targets(call: Call) -> dict[str, list[str]]:
    """``kind -> items`` named by ``id`` (songs, or album and artist ids), ``albumId`` and ``artistId``."""
    p = call.params
    b = browse(call)
    targets: dict[str, list[str]] = {"track": [], "album": [], "artist": []}
    for raw in p.all("id"):
        if raw.startswith("al-"):
            targets["album"].append(b.album(raw).id)
        elif raw.startswith("ar-"):
            targets["artist"].append(b.artist(raw).id)
        else:
            targets["track"].append(str(b.track(raw).id))
    targets["album"] += [b.album(raw).id for raw in p.all("albumId")]
    targets["artist"] += [b.artist(raw).id for raw in p.all("artistId")]
    if not any(targets.values()):
        raise missing("id, albumId or artistId")
    return targets


@endpoint("star", "Star songs, albums or artists")
def star(call: Call) -> dict[str, Any]:
    """``id``, ``albumId``, ``artistId`` (each repeated)."""
    targets = _star_targets(call)

    def mark(lib: Library) -> None:
        for kind, items in targets.items():
            if items:
                lib.stars.star(kind, items)

    call.server.state.write(mark)
    return {}


@endpoint("unstar", "Remove stars")
def unstar(call: Call) -> dict[str, Any]:
    """``id``, ``albumId``, ``artistId`` (each repeated)."""
    targets = _star_targets(call)

    def unmark(lib: Library) -> None:
        for kind, items in targets.items():
            if items:
                lib.stars.unstar(kind, items)

    call.server.state.write(unmark)
    return {}


def _starred(call: Call) -> tuple[Browse, Marks, list[model.Artist], list[model.Album], list[int]]:
    b, marks = browse(call), Marks.read(call)
    artists = [b.artists[i] for i in marks.stars["artist"] if i in b.artists]
    albums = [b.albums[i] for i in marks.stars["album"] if i in b.albums]
    songs = [int(i) for i in marks.stars["track"] if int(i) in b.tracks]
    return b, marks, artists, albums, songs


@endpoint("getStarred2", "Starred artists, albums and songs")
def get_starred2(call: Call) -> dict[str, Any]:
    """Everything starred, oldest star first."""
    b, marks, artists, albums, songs = _starred(call)
    return {"starred2": {"artist": [model.artist(b, a, marks) for a in artists],
                         "album": [model.album(b, a, marks) for a in albums],
                         "song": [model.song(call, b, b.tracks[i], marks) for i in songs]}}


@endpoint("getStarred", "Starred artists, albums and songs (folders)")
def get_starred(call: Call) -> dict[str, Any]:
    """As ``getStarred2``, albums as folder entries."""
    b, marks, artists, albums, songs = _starred(call)
    return {"starred": {"artist": [{"id": a.id, "name": a.name, "starred": marks.starred("artist", a.id)}
                                   for a in artists],
                        "album": [model.album_dir(b, a, marks) for a in albums],
                        "song": [model.song(call, b, b.tracks[i], marks) for i in songs]}}


@endpoint("setRating", "Ratings (accepted, not stored)")
def set_rating(call: Call) -> dict[str, Any]:
    """``id`` and ``rating`` are checked; ratings are not stored (stars and plays are)."""
    b = browse(call)
    raw = call.params.required("id")
    if not (raw.startswith("al-") or raw.startswith("ar-")):
        b.track(raw)
    if not 0 <= clamp_int("rating", call.params.required("rating"), -1, 6) <= 5:
        raise SubsonicError(0, "rating must be between 0 and 5")
    return {}
