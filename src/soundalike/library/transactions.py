"""The catalogue's one way to write atomically: ``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any error) on an
autocommit connection, used by :meth:`~soundalike.library.catalog.Library.transaction` and the stores built on
the same connection (playlists, plays, stars)."""

from __future__ import annotations

import sqlite3


class Transaction:
    """``with Transaction(conn):`` — one atomic write; the write lock is taken at once (no upgrade deadlock)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
