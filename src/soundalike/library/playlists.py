"""Playlists stored in the catalogue: named, ordered lists of track ids (a track may appear more than once).

Used by the Subsonic endpoints and meant for any other front end (the web page, the command line). A playlist's
rows go when it is deleted; a track that leaves the library leaves every playlist. Every change is one
transaction and stamps the playlist's ``changed_at``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .transactions import Transaction

MAX_NAME = 500


class PlaylistError(ValueError):
    """A playlist request that cannot be done (unknown playlist or track, empty name, bad position)."""


@dataclass(frozen=True)
class Playlist:
    """One stored playlist: its fields, how many entries it has and their total duration in seconds."""

    id: int
    name: str
    comment: str
    public: bool
    created_at: float
    changed_at: float
    track_count: int
    duration: float


def _name(name: str) -> str:
    clean = " ".join(str(name).split())
    if not clean:
        raise PlaylistError("a playlist needs a name")
    if len(clean) > MAX_NAME:
        raise PlaylistError(f"a playlist name has at most {MAX_NAME} characters")
    return clean


class PlaylistStore:
    """The playlists of one catalogue connection (``Library.playlists``)."""

    _SELECT = ("SELECT p.id, p.name, p.comment, p.public, p.created_at, p.changed_at, COUNT(t.id), "
               "COALESCE(SUM(t.duration), 0) FROM playlists p LEFT JOIN playlist_tracks e ON e.playlist_id = p.id "
               "LEFT JOIN tracks t ON t.id = e.track_id")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @staticmethod
    def _row(row: tuple) -> Playlist:  # type: ignore[type-arg]
        return Playlist(int(row[0]), row[1], row[2], bool(row[3]), float(row[4]), float(row[5]), int(row[6]),
                        float(row[7]))

    def all(self) -> list[Playlist]:
        """Every playlist, by name (case folded) then id."""
        rows = self.conn.execute(self._SELECT + " GROUP BY p.id ORDER BY lower(p.name), p.id")
        return [self._row(r) for r in rows]

    def get(self, playlist_id: int) -> Playlist | None:
        """The playlist with this id, or None."""
        row = self.conn.execute(self._SELECT + " WHERE p.id=? GROUP BY p.id", (int(playlist_id),)).fetchone()
        return None if row is None else self._row(row)

    def _existing(self, playlist_id: int) -> Playlist:
        found = self.get(playlist_id)
        if found is None:
            raise PlaylistError(f"no playlist with id {playlist_id}")
        return found

    def track_ids(self, playlist_id: int) -> list[int]:
        """The playlist's track ids in order (raises :class:`PlaylistError` for an unknown playlist)."""
        self._existing(playlist_id)
        rows = self.conn.execute("SELECT track_id FROM playlist_tracks WHERE playlist_id=? ORDER BY position",
                                 (int(playlist_id),))
        return [int(r[0]) for r in rows]

    def _check_tracks(self, track_ids: Iterable[int]) -> list[int]:
        ids = [int(i) for i in track_ids]
        wanted = sorted(set(ids))
        known: set[int] = set()
        for start in range(0, len(wanted), 500):
            part = wanted[start:start + 500]
            marks = ",".join("?" * len(part))
            known |= {int(r[0]) for r in self.conn.execute(f"SELECT id FROM tracks WHERE id IN ({marks})", part)}
        missing = [i for i in wanted if i not in known]
        if missing:
            raise PlaylistError(f"no track with id {', '.join(map(str, missing[:5]))}")
        return ids

    def _write(self, playlist_id: int, track_ids: Sequence[int]) -> None:
        self.conn.execute("DELETE FROM playlist_tracks WHERE playlist_id=?", (playlist_id,))
        self.conn.executemany("INSERT INTO playlist_tracks (playlist_id, position, track_id) VALUES (?, ?, ?)",
                              [(playlist_id, n, t) for n, t in enumerate(track_ids)])
        self.conn.execute("UPDATE playlists SET changed_at=? WHERE id=?", (time.time(), playlist_id))

    def create(self, name: str, track_ids: Iterable[int] = (), *, comment: str = "", public: bool = False
               ) -> Playlist:
        """A new playlist named ``name`` holding ``track_ids`` in order (unknown tracks: :class:`PlaylistError`)."""
        clean = _name(name)
        ids = self._check_tracks(track_ids)
        now = time.time()
        with Transaction(self.conn):
            cur = self.conn.execute("INSERT INTO playlists (name, comment, public, created_at, changed_at) "
                                    "VALUES (?, ?, ?, ?, ?)", (clean, str(comment), int(bool(public)), now, now))
            playlist_id = int(cur.lastrowid or 0)
            self._write(playlist_id, ids)
        return self._existing(playlist_id)

    def update(self, playlist_id: int, *, name: str | None = None, comment: str | None = None,
               public: bool | None = None) -> Playlist:
        """Change the name, comment or visibility of a playlist (what is None stays)."""
        return self.edit(playlist_id, name=name, comment=comment, public=public)

    def rename(self, playlist_id: int, name: str) -> Playlist:
        """Give a playlist a new name."""
        return self.update(playlist_id, name=name)

    def replace_tracks(self, playlist_id: int, track_ids: Iterable[int]) -> Playlist:
        """Make ``track_ids`` (in order) the whole content of the playlist."""
        return self.edit(playlist_id, tracks=track_ids)

    def add_tracks(self, playlist_id: int, track_ids: Iterable[int], position: int | None = None) -> Playlist:
        """Insert ``track_ids`` before ``position`` (0 = first; None = at the end)."""
        current = self.track_ids(playlist_id)
        ids = self._check_tracks(track_ids)
        at = len(current) if position is None else int(position)
        if not 0 <= at <= len(current):
            raise PlaylistError(f"position {at} is outside the playlist (0..{len(current)})")
        return self.replace_tracks(playlist_id, current[:at] + ids + current[at:])

    def remove_positions(self, playlist_id: int, positions: Iterable[int]) -> Playlist:
        """Remove the entries at these 0-based positions (of the playlist as it is now)."""
        return self.edit(playlist_id, remove=positions)

    def move(self, playlist_id: int, source: int, target: int) -> Playlist:
        """Move the entry at position ``source`` to position ``target`` (both 0-based)."""
        current = self.track_ids(playlist_id)
        for p in (source, target):
            if not 0 <= p < len(current):
                raise PlaylistError(f"position {p} is outside the playlist (0..{len(current) - 1})")
        entry = current.pop(source)
        current.insert(target, entry)
        return self.replace_tracks(playlist_id, current)

    def edit(self, playlist_id: int, *, name: str | None = None, comment: str | None = None,
             public: bool | None = None, tracks: Iterable[int] | None = None, remove: Iterable[int] = (),
             add: Iterable[int] = ()) -> Playlist:
        """Change a playlist all at once or not at all: name, comment, visibility (None: kept), then its entries —
        ``tracks`` the whole new content, else the entries at 0-based positions ``remove`` (of the playlist as it
        was) dropped and ``add`` appended. Everything is checked before anything is written, in one transaction."""
        clean = None if name is None else _name(name)
        new_tracks = None if tracks is None else self._check_tracks(tracks)
        adds = self._check_tracks(add)
        drop = {int(p) for p in remove}
        with Transaction(self.conn):
            current = self.track_ids(playlist_id)  # inside the write lock: no other writer changes it meanwhile
            outside = sorted(p for p in drop if not 0 <= p < len(current))
            if outside:
                raise PlaylistError(f"position {outside[0]} is outside the playlist (0..{len(current) - 1})")
            fields = {k: v for k, v in (("name", clean), ("comment", None if comment is None else str(comment)),
                                        ("public", None if public is None else int(bool(public))))
                      if v is not None}
            for column, value in fields.items():
                self.conn.execute(f"UPDATE playlists SET {column}=?, changed_at=? WHERE id=?",
                                  (value, time.time(), int(playlist_id)))
            base = new_tracks if new_tracks is not None else [t for n, t in enumerate(current) if n not in drop]
            if new_tracks is not None or drop or adds:
                self._write(int(playlist_id), base + adds)
        return self._existing(playlist_id)

    def delete(self, playlist_id: int) -> None:
        """Delete a playlist (raises :class:`PlaylistError` when there is none with this id)."""
        self._existing(playlist_id)
        with Transaction(self.conn):
            self.conn.execute("DELETE FROM playlists WHERE id=?", (int(playlist_id),))
