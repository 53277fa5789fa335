"""The catalogue seen as Subsonic sees music: artists, albums and songs, with stable ids derived from the tags.

Song ids are catalogue track ids (``"42"``). An album is the tracks sharing an album name and album artist (the
``albumartist`` tag, else the artist): its id is ``al-`` and 16 hex digits of the BLAKE2b of the folded names, so
it stays the same across scans, restarts and re-indexing as long as the tags do. An artist (album artists and
track artists alike) is ``ar-`` and the hash of the folded name. The whole view is built from the server's
snapshot of the catalogue, once per catalogue generation.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from soundalike.library.catalog import Track, fold

from .media import audio_content_type
from .state import LibraryState
from .subsonic_protocol import Call, not_found

UNKNOWN_ARTIST = "[Unknown Artist]"
IGNORED_ARTICLES = "The El La Los Las Le Les"
FOLDER_ID = 1


def stable_id(prefix: str, *names: str) -> str:
    """``prefix`` and 16 hex digits of the BLAKE2b of the folded ``names``."""
    text = "\x1f".join(fold(n) for n in names)
    return prefix + hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def artist_id(name: str) -> str:
    """The stable id of an artist name."""
    return stable_id("ar-", name)


def iso(seconds: float) -> str:
    """Seconds since the epoch as the ISO 8601 UTC time Subsonic uses (``2026-01-31T12:00:00.000Z``)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(seconds * 1000) % 1000:03d}Z"


def index_letter(name: str) -> str:
    """The index heading of a name: its first letter after a leading article, ``#`` for anything else."""
    words = name.split(maxsplit=1)
    if len(words) == 2 and words[0].lower() in IGNORED_ARTICLES.lower().split():
        name = words[1]
    first = fold(name[:1]).upper()[:1]
    return first if first.isalpha() and first.isascii() else "#"


def sort_name(name: str) -> str:
    """A name folded, without a leading article (for sorting)."""
    words = name.split(maxsplit=1)
    if len(words) == 2 and words[0].lower() in IGNORED_ARTICLES.lower().split():
        return fold(words[1])
    return fold(name)


@dataclass
class Album:
    """Tracks sharing an album name and album artist."""

    id: str
    name: str
    artist: str
    artist_id: str
    track_ids: list[int] = field(default_factory=list)
    duration: float = 0.0
    year: int = 0
    genre: str = ""
    created: float = 0.0


@dataclass
class Artist:
    """An album artist or track artist, with the albums it appears on."""

    id: str
    name: str
    album_ids: list[str] = field(default_factory=list)


@dataclass
class Browse:
    """Artists, albums and songs of one catalogue generation."""

    tracks: dict[int, Track]
    albums: dict[str, Album]
    artists: dict[str, Artist]
    album_of: dict[int, str]
    ordered: list[int] = field(default_factory=list)

    @classmethod
    def build(cls, tracks: dict[int, Track]) -> Browse:
        """Group the tracks into albums and artists (deterministic: by track id, then names)."""
        albums: dict[str, Album] = {}
        artists: dict[str, Artist] = {}
        album_of: dict[int, str] = {}

        def artist(name: str) -> Artist:
            found = artists.get(artist_id(name))
            if found is None:
                found = artists[artist_id(name)] = Artist(artist_id(name), name)
            return found

        for track in sorted(tracks.values(), key=lambda t: t.id):
            owner = track.album_artist or track.artist or UNKNOWN_ARTIST
            key = stable_id("al-", owner, track.album)
            album = albums.get(key)
            if album is None:
                album = albums[key] = Album(key, track.album, owner, artist(owner).id, created=track.added_at)
            album.track_ids.append(track.id)
            album.duration += track.duration
            album.year = album.year or track.year
            album.genre = album.genre or track.genre
            album.created = min(album.created, track.added_at)
            album_of[track.id] = key
            for name in {owner, track.artist or UNKNOWN_ARTIST}:
                if key not in artist(name).album_ids:
                    artist(name).album_ids.append(key)
        for album in albums.values():
            album.track_ids.sort(key=lambda i: (tracks[i].disc_no, tracks[i].track_no, fold(tracks[i].title), i))
        for a in artists.values():
            a.album_ids.sort(key=lambda k: (-albums[k].year if albums[k].year else 0, fold(albums[k].name), k))
        ordered = sorted(tracks, key=lambda i: (sort_name(tracks[i].album_artist or tracks[i].artist),
                                                fold(tracks[i].album), tracks[i].disc_no, tracks[i].track_no,
                                                fold(tracks[i].title), i))
        return cls(tracks, albums, artists, album_of, ordered)

    def track(self, raw: str) -> Track:
        """The track of a song id (error 70 when there is none)."""
        text = raw.strip()
        if text.isascii() and text.isdigit() and len(text) <= 18 and int(text) in self.tracks:
            return self.tracks[int(text)]
        raise not_found("Song", raw)

    def album(self, raw: str) -> Album:
        """The album of an album id (error 70 when there is none)."""
        found = self.albums.get(raw.strip())
        if found is None:
            raise not_found("Album", raw)
        return found

    def artist(self, raw: str) -> Artist:
        """The artist of an artist id (error 70 when there is none)."""
        found = self.artists.get(raw.strip())
        if found is None:
            raise not_found("Artist", raw)
        return found

    def tracks_of(self, raw: str) -> list[Track]:
        """The tracks an id stands for: one song, an album's songs, or every song of an artist's albums."""
        text = raw.strip()
        if text.startswith("al-"):
            return [self.tracks[i] for i in self.album(text).track_ids]
        if text.startswith("ar-"):
            a = self.artist(text)
            own = {a.name} if a.name != UNKNOWN_ARTIST else {"", UNKNOWN_ARTIST}
            return [self.tracks[i] for k in a.album_ids for i in self.albums[k].track_ids
                    if (self.tracks[i].artist or UNKNOWN_ARTIST) in own or self.albums[k].artist == a.name]
        return [self.track(text)]


def browse_state(state: LibraryState) -> Browse:
    """The :class:`Browse` view of a server's catalogue now (rebuilt when the catalogue changes; shared by the
    Subsonic endpoints and the web page's JSON API)."""
    return state.cached(("subsonic-browse",), lambda: Browse.build(state.snapshot().by_id))


def browse(call: Call) -> Browse:
    """The :class:`Browse` view of the catalogue now (rebuilt when the catalogue changes)."""
    return browse_state(call.server.state)


@dataclass
class Marks:
    """What the listener did, read once per request: play counts, last plays, stars."""

    plays: dict[int, tuple[int, float]]
    stars: dict[str, dict[str, float]]

    @classmethod
    def read(cls, call: Call) -> Marks:
        """Plays and stars from the catalogue."""
        lib = call.server.state.lib()
        return cls(lib.plays.counts(), {kind: lib.stars.starred(kind) for kind in ("track", "album", "artist")})

    def starred(self, kind: str, item: str) -> str | None:
        """When an item was starred (ISO), or None."""
        at = self.stars[kind].get(item)
        return None if at is None else iso(at)

    def album_plays(self, album: Album) -> tuple[int, float]:
        """Total plays of an album's songs and the last time one was played."""
        counts = [self.plays[i] for i in album.track_ids if i in self.plays]
        return sum(c for c, _ in counts), max((t for _, t in counts), default=0.0)


def song(call: Call, b: Browse, track: Track, marks: Marks) -> dict[str, Any]:
    """A Subsonic ``Child`` (song) with the OpenSubsonic additions clients use."""
    album_id = b.album_of.get(track.id) or stable_id("al-", track.album_artist or track.artist or UNKNOWN_ARTIST,
                                                     track.album)
    suffix = Path(track.path).suffix.lstrip(".").lower()
    try:
        size: int | None = os.stat(track.path).st_size
    except OSError:
        size = None
    artist = track.artist or UNKNOWN_ARTIST
    plays, last = marks.plays.get(track.id, (0, 0.0))
    out: dict[str, Any] = {
        "id": str(track.id), "parent": album_id, "isDir": False, "title": track.title, "album": track.album,
        "artist": artist, "track": track.track_no or None, "discNumber": track.disc_no or None,
        "year": track.year or None, "genre": track.genre or None, "coverArt": album_id, "size": size,
        "contentType": audio_content_type(track.path), "suffix": suffix, "duration": int(round(track.duration)),
        "bitRate": int(size * 8 / track.duration / 1000) if size and track.duration > 0 else None,
        "path": call.server.state.public_path(track.path), "isVideo": False, "playCount": plays,
        "played": iso(last) if plays else None, "created": iso(track.added_at),
        "starred": marks.starred("track", str(track.id)), "albumId": album_id, "artistId": artist_id(artist),
        "type": "music", "mediaType": "song", "displayArtist": artist,
        "displayAlbumArtist": track.album_artist or artist,
    }
    if track.genre:
        out["genres"] = [{"name": track.genre}]
    return out


def album(b: Browse, a: Album, marks: Marks) -> dict[str, Any]:
    """A Subsonic ``AlbumID3``."""
    plays, last = marks.album_plays(a)
    out: dict[str, Any] = {
        "id": a.id, "name": a.name, "artist": a.artist, "artistId": a.artist_id, "coverArt": a.id,
        "songCount": len(a.track_ids), "duration": int(round(a.duration)), "created": iso(a.created),
        "year": a.year or None, "genre": a.genre or None, "playCount": plays, "played": iso(last) if plays else None,
        "starred": marks.starred("album", a.id), "displayArtist": a.artist, "sortName": sort_name(a.name),
    }
    if a.genre:
        out["genres"] = [{"name": a.genre}]
    return out


def album_dir(b: Browse, a: Album, marks: Marks) -> dict[str, Any]:
    """An album as a folder ``Child`` (``isDir``), for the folder-based endpoints."""
    return {"id": a.id, "parent": a.artist_id, "isDir": True, "title": a.name, "name": a.name, "album": a.name,
            "artist": a.artist, "year": a.year or None, "genre": a.genre or None, "coverArt": a.id,
            "created": iso(a.created), "starred": marks.starred("album", a.id), "songCount": len(a.track_ids),
            "duration": int(round(a.duration))}


def artist(b: Browse, a: Artist, marks: Marks) -> dict[str, Any]:
    """A Subsonic ``ArtistID3``."""
    return {"id": a.id, "name": a.name, "albumCount": len(a.album_ids), "coverArt": a.id,
            "starred": marks.starred("artist", a.id), "sortName": sort_name(a.name)}


def indexed_artists(b: Browse, marks: Marks) -> list[dict[str, Any]]:
    """Every artist under its index letter (``#`` first, then A-Z), names sorted without articles."""
    groups: dict[str, list[Artist]] = {}
    for a in b.artists.values():
        groups.setdefault(index_letter(a.name), []).append(a)
    return [{"name": letter, "artist": [artist(b, a, marks) for a in sorted(groups[letter],
                                                                          key=lambda a: (sort_name(a.name), a.id))]}
            for letter in sorted(groups)]
