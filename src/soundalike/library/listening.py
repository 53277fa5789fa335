"""What the listener did, stored in the catalogue: plays (scrobbles) and stars (favourite tracks, albums, artists).

Albums and artists have no table of their own: a star names them by whatever stable id the front end gives them
(the Subsonic endpoints derive one from the tags). A track that leaves the library takes its plays with it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable

from .transactions import Transaction

STAR_KINDS = ("track", "album", "artist")


class PlayLog:
    """Plays of one catalogue connection (``Library.plays``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def record(self, track_id: int, played_at: float | None = None, client: str = "") -> None:
        """Record that ``track_id`` was played (at ``played_at``, seconds since the epoch; default now)."""
        when = time.time() if played_at is None else float(played_at)
        with Transaction(self.conn):
            if self.conn.execute("SELECT 1 FROM tracks WHERE id=?", (int(track_id),)).fetchone() is None:
                raise ValueError(f"no track with id {track_id}")
            self.conn.execute("INSERT INTO plays (track_id, played_at, client) VALUES (?, ?, ?)",
                              (int(track_id), when, str(client)[:200]))

    def counts(self) -> dict[int, tuple[int, float]]:
        """``track id -> (play count, last played at)`` of every track played at least once."""
        rows = self.conn.execute("SELECT track_id, COUNT(*), MAX(played_at) FROM plays GROUP BY track_id")
        return {int(r[0]): (int(r[1]), float(r[2])) for r in rows}

    def count(self, track_id: int) -> int:
        """How many times one track was played."""
        return int(self.conn.execute("SELECT COUNT(*) FROM plays WHERE track_id=?", (int(track_id),)).fetchone()[0])


class Stars:
    """Stars of one catalogue connection (``Library.stars``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @staticmethod
    def _kind(kind: str) -> str:
        if kind not in STAR_KINDS:
            raise ValueError(f"unknown kind {kind!r} (one of {', '.join(STAR_KINDS)})")
        return kind

    def star(self, kind: str, items: Iterable[str | int], at: float | None = None) -> None:
        """Star these items of ``kind`` (``track``, ``album`` or ``artist``); starring again keeps the first date."""
        when = time.time() if at is None else float(at)
        rows = [(self._kind(kind), str(i), when) for i in items]
        with Transaction(self.conn):
            self.conn.executemany("INSERT OR IGNORE INTO stars (kind, item, starred_at) VALUES (?, ?, ?)", rows)

    def unstar(self, kind: str, items: Iterable[str | int]) -> None:
        """Remove the stars of these items (unstarred items are ignored)."""
        rows = [(self._kind(kind), str(i)) for i in items]
        with Transaction(self.conn):
            self.conn.executemany("DELETE FROM stars WHERE kind=? AND item=?", rows)

    def starred(self, kind: str) -> dict[str, float]:
        """``item -> starred at`` (seconds since the epoch) of every starred item of ``kind``, oldest first."""
        rows = self.conn.execute("SELECT item, starred_at FROM stars WHERE kind=? ORDER BY starred_at, item",
                                 (self._kind(kind),))
        return {str(r[0]): float(r[1]) for r in rows}
