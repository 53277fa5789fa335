"""The Subsonic API (1.16.1, with OpenSubsonic extensions) under ``/rest``: any Subsonic app is a soundalike client.

Phone and desktop players (DSub, Symfonium, Feishin, Supersonic, substreamer...) browse the library by artist,
album, genre and folder, search it, stream and download songs, show cover art, keep playlists, stars and plays in
the catalogue, and ask for songs that *sound* alike (``getSimilarSongs2``, ``getArtistInfo2``'s similar artists,
and the ``sonicSimilarity`` extension: ``getSonicSimilarTracks``, ``findSonicPath``). The modules:

- :mod:`.subsonic_protocol`: parameters (GET or form POST, ``.view`` aliases), authentication, XML/JSON, errors;
- :mod:`.subsonic_model`: artists, albums and songs with stable ids derived from the tags;
- :mod:`.subsonic_browse`: browsing, album lists, genres, random songs, search, similar songs, top songs;
- :mod:`.subsonic_media`: stream, download, cover art;
- :mod:`.subsonic_playlists`: playlists, scrobbles, now playing, stars;
- this one: the server endpoints (ping, license, extensions, user, scan status) and sonic similarity.

``sonicSimilarity`` v1 answers as Navidrome does: a ``sonicMatch`` list of ``{"entry": Child, "similarity": s}``,
``s = (1 + cosine) / 2`` in [0, 1] (1 = the same sound); for a path, relative to the start song. See
docs/subsonic.md for the endpoint list and how to point an app at the server.
"""

from __future__ import annotations

from typing import Any

from soundalike.recommend import path_between, similar

from . import subsonic_browse, subsonic_media, subsonic_playlists  # noqa: F401 - they register their endpoints
from . import subsonic_model as model
from .subsonic_model import Marks, browse
from .subsonic_protocol import EXTENSIONS, Call, SubsonicError, endpoint, rest

__all__ = ["rest", "similarity"]


def similarity(cosine: float) -> float:
    """A cosine similarity in [-1, 1] as the extension's normalised similarity in [0, 1]."""
    return round(min(1.0, max(0.0, (1.0 + float(cosine)) / 2.0)), 6)


@endpoint("ping", "Subsonic ping")
def ping(call: Call) -> dict[str, Any]:
    """An empty ``ok`` answer (checks the server and the credentials)."""
    return {}


@endpoint("getLicense", "The license (always valid)")
def get_license(call: Call) -> dict[str, Any]:
    """A valid license: soundalike is MIT-licensed software."""
    return {"license": {"valid": True}}


@endpoint("getOpenSubsonicExtensions", "The OpenSubsonic extensions we implement", public=True)
def get_extensions(call: Call) -> dict[str, Any]:
    """``sonicSimilarity``, ``apiKeyAuthentication`` and ``formPost`` (this endpoint needs no credentials)."""
    return {"openSubsonicExtensions": EXTENSIONS}


@endpoint("getUser", "The user's roles")
def get_user(call: Call) -> dict[str, Any]:
    """Whoever has the token may stream, download, keep playlists and scrobble; nothing administrative."""
    name = call.params.get("username") or call.user
    return {"user": {"username": name, "email": "", "scrobblingEnabled": True, "adminRole": False,
                     "settingsRole": False, "downloadRole": True, "uploadRole": False, "playlistRole": True,
                     "coverArtRole": True, "commentRole": False, "podcastRole": False, "streamRole": True,
                     "jukeboxRole": False, "shareRole": False, "videoConversionRole": False,
                     "folder": [model.FOLDER_ID]}}


@endpoint("getScanStatus", "Scan status (scans run with soundalike index)")
def get_scan_status(call: Call) -> dict[str, Any]:
    """Not scanning; ``count`` is the number of songs (``soundalike index`` scans, beside the server)."""
    return {"scanStatus": {"scanning": False, "count": len(browse(call).tracks)}}


@endpoint("startScan", "Scan status (this server does not scan)")
def start_scan(call: Call) -> dict[str, Any]:
    """Starts nothing: run ``soundalike index`` (the server sees its changes within seconds)."""
    return {"scanStatus": {"scanning": False, "count": len(browse(call).tracks)}}


def _empty(name: str, summary: str, fields: dict[str, Any]) -> None:
    def answer(call: Call) -> dict[str, Any]:
        return fields

    answer.__doc__ = f"{summary}: always empty here."
    endpoint(name, summary)(answer)


# Features this server does not have, answered empty (apps ask at start-up and give up on an error).
_EMPTY: tuple[tuple[str, str, dict[str, Any]], ...] = (
        ("getPodcasts", "Podcasts", {"podcasts": {}}),
        ("getNewestPodcasts", "Newest podcast episodes", {"newestPodcasts": {}}),
        ("getInternetRadioStations", "Internet radio stations", {"internetRadioStations": {}}),
        ("getBookmarks", "Bookmarks", {"bookmarks": {}}),
        ("getShares", "Shares", {"shares": {}}),
        ("getPlayQueue", "The saved play queue", {}),
        ("savePlayQueue", "Save the play queue (not kept)", {}),
        ("getLyrics", "Lyrics", {"lyrics": {}}),
        ("getLyricsBySongId", "Structured lyrics", {"lyricsList": {}}),
        ("getVideos", "Videos", {"videos": {}}),
        ("getChatMessages", "Chat messages", {"chatMessages": {}}))
for _name, _summary, _fields in _EMPTY:
    _empty(_name, _summary, _fields)


@endpoint("getSonicSimilarTracks", "Sonically similar tracks (sonicSimilarity extension)")
def get_sonic_similar_tracks(call: Call) -> dict[str, Any]:
    """Parameters ``id`` (required) and ``count`` (default 10, at most 500): the ``count`` tracks that sound most
    like song ``id``, as ``sonicMatch`` entries with ``similarity`` in [0, 1] (1 = the same sound)."""
    b = browse(call)
    song = b.track(call.params.required("id"))
    count = call.params.integer("count", 10, lo=1, hi=500)
    state = call.server.state
    _, results = similar(state.lib(), str(song.id), count, indexes=state.index)
    marks = Marks.read(call)
    return {"sonicMatch": [{"entry": model.song(call, b, b.tracks.get(r.track.id, r.track), marks),
                            "similarity": similarity(r.score)} for r in results]}


@endpoint("findSonicPath", "A path of songs between two songs (sonicSimilarity extension)")
def find_sonic_path(call: Call) -> dict[str, Any]:
    """Parameters ``startSongId``, ``endSongId`` (required) and ``count`` (songs in the path including both ends,
    default 25): ``sonicMatch`` entries in order, each with its ``similarity`` to the start song."""
    b = browse(call)
    start = b.track(call.params.required("startSongId"))
    end = b.track(call.params.required("endSongId"))
    if start.id == end.id:
        raise SubsonicError(0, "startSongId and endSongId are the same song")
    count = call.params.integer("count", 25, lo=2, hi=500)
    state = call.server.state
    a, _, results = path_between(state.lib(), str(start.id), str(end.id), count, indexes=state.index)
    marks = Marks.read(call)
    return {"sonicMatch": [{"entry": model.song(call, b, b.tracks.get(r.track.id, r.track), marks),
                            "similarity": similarity(float(a.index.vector_of(r.track.id) @ a.vector))}
                           for r in results]}
