"""The catalogue: a SQLite database (WAL) of files, tracks, tags, analysis status and vectors, plus the feature store.

A *track* is identified by the hash of its decoded audio, so a renamed, moved or re-tagged file stays the same
track, and byte-identical copies are one track with several paths. A *file* row records one path, its size and
mtime (to skip unchanged files on the next scan) and its status: ``ok`` or the kind of error that stopped it.
Paths are stored as bytes, so names that are not valid UTF-8 survive.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from soundalike.audio import descriptors
from soundalike.audio.analysis import Analysis, Tags
from soundalike.audio.decode import display_path

from .featurestore import FeatureStore, Location
from .listening import PlayLog, Stars
from .playlists import PlaylistStore
from .transactions import Transaction

SCHEMA_VERSION = 11
DB_NAME = "catalog.sqlite"
#: The library's folder of search indexes (written by soundalike.search.index: ANN indexes, their statistics and
#: re-rank stores).
INDEX_DIR = "indexes"
#: An upgrade of a catalogue with at least this many tracks says so first (on stderr, through logging).
UPGRADE_NOTICE_TRACKS = 50_000

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tracks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    audio_hash TEXT NOT NULL UNIQUE,
    duration REAL NOT NULL,
    analysed_seconds REAL NOT NULL,
    artist TEXT NOT NULL DEFAULT '',
    album TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    added_at REAL NOT NULL,
    f_artist TEXT NOT NULL DEFAULT '',
    f_album TEXT NOT NULL DEFAULT '',
    f_title TEXT NOT NULL DEFAULT '',
    album_artist TEXT NOT NULL DEFAULT '',
    genre TEXT NOT NULL DEFAULT '',
    track_no INTEGER NOT NULL DEFAULT 0,
    disc_no INTEGER NOT NULL DEFAULT 0,
    year INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tracks_order ON tracks(f_artist, f_album, f_title, id);
CREATE INDEX IF NOT EXISTS tracks_title ON tracks(f_title);
CREATE TABLE IF NOT EXISTS files (
    path BLOB PRIMARY KEY,
    track_id INTEGER REFERENCES tracks(id) ON DELETE CASCADE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    file_hash TEXT,
    status TEXT NOT NULL,
    error TEXT,
    scanned_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_track ON files(track_id);
CREATE INDEX IF NOT EXISTS files_hash ON files(file_hash);
CREATE TABLE IF NOT EXISTS spectrograms (
    track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    preset TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    n_mels INTEGER NOT NULL,
    n_frames INTEGER NOT NULL,
    PRIMARY KEY (track_id, preset)
);
CREATE TABLE IF NOT EXISTS vectors (
    track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    n_segments INTEGER NOT NULL DEFAULT 0,
    segments BLOB,
    version INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (track_id, model)
);
CREATE INDEX IF NOT EXISTS vectors_model_version ON vectors(model, track_id, version);
CREATE TABLE IF NOT EXISTS playlists (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    public INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    changed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS playlist_tracks (
    playlist_id INTEGER NOT NULL REFERENCES playlists(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    PRIMARY KEY (playlist_id, position)
);
CREATE TABLE IF NOT EXISTS plays (
    id INTEGER PRIMARY KEY,
    track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    played_at REAL NOT NULL,
    client TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS plays_track ON plays(track_id, played_at);
CREATE TABLE IF NOT EXISTS stars (
    kind TEXT NOT NULL,
    item TEXT NOT NULL,
    starred_at REAL NOT NULL,
    PRIMARY KEY (kind, item)
);
"""

# Full-text index of the folded tags for :meth:`Library.search` (trigrams: any substring of 3+ characters is found
# through the index, as ``instr`` finds it), kept in step with ``tracks`` by triggers so every writer maintains it.
# Each column is indexed with two filler characters (char(1)) after it, so every 1- or 2-character substring starts
# some indexed trigram ("u2" at a title's end is in "u2\x01"): a short word is found through the index's
# vocabulary (the trigrams that start with it), not by reading every track. The padded text comes from a view, the
# index's external content, so a 'rebuild' pads as the triggers do. The columns are folded already (fold()), so the
# index keeps them as they are (case_sensitive): its trigrams are the very text ``instr`` searches.
# Statements, not split on ";" like _SCHEMA: a trigger's body holds semicolons.
_FTS_PAD = "char(1, 1)"
_FTS = (
    "CREATE VIEW IF NOT EXISTS tracks_fts_text AS SELECT id, "
    + ", ".join(f"{c} || {_FTS_PAD} AS {c}" for c in ("f_artist", "f_album", "f_title")) + " FROM tracks",
    "CREATE VIRTUAL TABLE IF NOT EXISTS tracks_fts USING fts5(f_artist, f_album, f_title, content='tracks_fts_text', "
    "content_rowid='id', tokenize='trigram case_sensitive 1')",
    "CREATE TRIGGER IF NOT EXISTS tracks_fts_insert AFTER INSERT ON tracks BEGIN "
    f"INSERT INTO tracks_fts(rowid, f_artist, f_album, f_title) VALUES (new.id, new.f_artist || {_FTS_PAD}, "
    f"new.f_album || {_FTS_PAD}, new.f_title || {_FTS_PAD}); END",
    "CREATE TRIGGER IF NOT EXISTS tracks_fts_delete AFTER DELETE ON tracks BEGIN "
    "INSERT INTO tracks_fts(tracks_fts, rowid, f_artist, f_album, f_title) VALUES ('delete', old.id, "
    f"old.f_artist || {_FTS_PAD}, old.f_album || {_FTS_PAD}, old.f_title || {_FTS_PAD}); END",
    "CREATE TRIGGER IF NOT EXISTS tracks_fts_update AFTER UPDATE OF f_artist, f_album, f_title ON tracks BEGIN "
    "INSERT INTO tracks_fts(tracks_fts, rowid, f_artist, f_album, f_title) VALUES ('delete', old.id, "
    f"old.f_artist || {_FTS_PAD}, old.f_album || {_FTS_PAD}, old.f_title || {_FTS_PAD}); "
    f"INSERT INTO tracks_fts(rowid, f_artist, f_album, f_title) VALUES (new.id, new.f_artist || {_FTS_PAD}, "
    f"new.f_album || {_FTS_PAD}, new.f_title || {_FTS_PAD}); END",
)
_FTS_TRIGGERS = ("tracks_fts_insert", "tracks_fts_delete", "tracks_fts_update")
#: Shortest search word the trigram index can find as a phrase; a shorter word is looked up in its vocabulary.
FTS_MIN_WORD = 3
#: A short word is found through the index when it is rare: found in fewer than SHORT_WORD_COMMON of the first
#: SHORT_WORD_PROBE tracks, and the start of at most SHORT_WORD_TERMS indexed trigrams. A common one is matched by
#: scanning, which then stops early, while reading the vocabulary costs most for common trigrams (at a million
#: tracks a scan stops within a millisecond or two for a word in half the tracks and reads every track, ~0.9 s, for a
#: rare one: benchmarks/results/search-words.json).
SHORT_WORD_PROBE = 1024
SHORT_WORD_COMMON = 100
SHORT_WORD_TERMS = 64
#: Matches :meth:`Library.search` ranks (exact titles first, ...) beside the exact and prefix matches of a title or
#: an "artist - title" (up to this many of each, found through the B-tree indexes): the first this many in catalogue
#: order. A common word matches a large share of a million tracks; the rest of them follow in catalogue order.
#: (Ranking costs ~4 µs a row at 1 M tracks: 1000 made a search cost more CPU than a ``similar`` query.)
SEARCH_RANKED = 250

# Statements with a ';' inside (run one by one after _SCHEMA's). A star names its track by id without a foreign key
# (albums and artists are starred by tag-derived ids): it goes with the track, or a track that reuses the id (SQLite
# gives the highest id again once its track is deleted) would be starred. Plays and playlist entries cascade.
_TRIGGERS = (
    """CREATE TRIGGER IF NOT EXISTS tracks_drop_stars AFTER DELETE ON tracks BEGIN
        DELETE FROM stars WHERE kind='track' AND item=CAST(OLD.id AS TEXT);
    END""",
)

DESCRIPTOR_MODEL = "descriptor"
MAX_TRACK_ID = (1 << 63) - 1  # SQLite's largest integer: no id above it exists


def _bytes_of(paths: Iterable[Path]) -> int:
    """Bytes the regular files among ``paths`` take (files that vanish meanwhile count 0)."""
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):
            if path.is_file():
                total += path.stat().st_size
    return total


class CatalogError(Exception):
    """A catalogue that cannot be used (missing, newer schema, nothing indexed...)."""


def default_library_dir() -> Path:
    """``$SOUNDALIKE_LIBRARY``, else ``~/.local/share/soundalike``."""
    env = os.environ.get("SOUNDALIKE_LIBRARY")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "soundalike"


class TrackLabel(NamedTuple):
    """What a map shows of a track (:meth:`Library.labels`)."""

    id: int
    title: str
    artist: str
    album: str


@dataclass(frozen=True)
class Track:
    """One track of the library with its first (sorted) path."""

    id: int
    path: str
    artist: str
    album: str
    title: str
    duration: float
    audio_hash: str
    album_artist: str = ""
    genre: str = ""
    track_no: int = 0
    disc_no: int = 0
    year: int = 0
    added_at: float = 0.0

    def to_dict(self) -> dict[str, object]:
        """JSON-ready fields of the command-line contract."""
        return {"track_id": self.id, "path": self.path, "artist": self.artist, "album": self.album,
                "title": self.title, "duration": round(self.duration, 3)}

    @property
    def label(self) -> str:
        """``artist - title`` (or the title alone)."""
        return f"{self.artist} - {self.title}" if self.artist else self.title


@dataclass(frozen=True)
class FileRecord:
    """What the catalogue knows about one path."""

    path: bytes
    track_id: int | None
    size: int
    mtime_ns: int
    file_hash: str | None
    status: str
    error: str | None


@dataclass(frozen=True)
class NewTrack:
    """A track catalogued in bulk by :meth:`Library.add_tracks`: one file, its tags and its pooled vectors by model
    (no spectrogram, no segments)."""

    path: str | os.PathLike[str] | bytes
    audio_hash: str
    duration: float
    tags: Tags
    vectors: Mapping[str, np.ndarray] = field(default_factory=dict)
    size: int = 0
    mtime_ns: int = 0
    file_hash: str | None = None


def _to_blob(path: str | os.PathLike[str] | bytes) -> bytes:
    return os.fsencode(os.path.abspath(os.fsencode(path)))


def fold(text: str) -> str:
    """Lower-case text without accents (for search and for matching tags): ``Beyoncé`` -> ``beyonce``."""
    text = unicodedata.normalize("NFKD", text).casefold()
    return "".join(c for c in text if not unicodedata.combining(c))


def _prefix_end(prefix: str) -> str | None:
    """The smallest text above every text that starts with ``prefix`` (SQLite compares UTF-8 bytes, in code point
    order): ``prefix`` with its last character incremented; None when there is none to increment."""
    last = ord(prefix[-1])
    if last >= 0x10FFFF or 0xD7FF <= last < 0xE000:
        return None
    return prefix[:-1] + chr(last + 1)


def _fts_quote(text: str) -> str:
    """``text`` as one FTS5 string (a phrase, or a single trigram), its double quotes doubled."""
    return '"' + text.replace('"', '""') + '"'


def search_words(text: str) -> list[str]:
    """The folded words of a search text that can match (words without a letter or digit, like ``-``, cannot)."""
    return [w for w in fold(text).split() if any(c.isalnum() for c in w)]


def _migrate_2(conn: sqlite3.Connection) -> None:
    """Version 2: folded artist/album/title columns (one accent- and case-folded search for CLI and server)."""
    have = {r[1] for r in conn.execute("PRAGMA table_info(tracks)")}
    for column in ("f_artist", "f_album", "f_title"):
        if column not in have:
            conn.execute(f"ALTER TABLE tracks ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")
    rows = conn.execute("SELECT id, artist, album, title FROM tracks").fetchall()
    conn.executemany("UPDATE tracks SET f_artist=?, f_album=?, f_title=? WHERE id=?",
                     [(fold(a), fold(b), fold(c), i) for i, a, b, c in rows])


def _migrate_3(conn: sqlite3.Connection) -> None:
    """Version 3: vectors carry the version of what made them (descriptors computed so far are version 1); model
    checkpoints are recorded relative to the package or the library where they live there."""
    if "version" not in {r[1] for r in conn.execute("PRAGMA table_info(vectors)")}:
        conn.execute("ALTER TABLE vectors ADD COLUMN version INTEGER NOT NULL DEFAULT 0")
    conn.execute("UPDATE vectors SET version=1 WHERE model=?", (DESCRIPTOR_MODEL,))
    for key, value in conn.execute("SELECT key, value FROM meta WHERE key LIKE 'model:%'").fetchall():
        info = json.loads(value)
        path = Path(str(info.get("checkpoint", "")))
        if path.is_absolute() and path.parent.name == "pretrained" and path.parent.parent.name in ("soundalike",
                                                                                                   "models"):
            info["checkpoint"] = "package:" + path.name  # the shipped model, wherever the package is now
            conn.execute("UPDATE meta SET value=? WHERE key=?", (json.dumps(info), key))


_EXTRA_TAGS = ("album_artist", "genre", "track_no", "disc_no", "year")
_FOLDED = ("artist", "album", "title")  # the tags with a folded search column (f_artist...)
_TAG_FIELDS = (*_FOLDED, *_EXTRA_TAGS)


Backfill = tuple[list[tuple[str, str, int, int, int, int]], list[int]]
"""What :func:`_read_extra_tags` found: ``(album_artist, genre, track_no, disc_no, year, track_id)`` rows, and the
ids of the tracks none of whose files could be read."""


def _read_extra_tags(conn: sqlite3.Connection) -> Backfill:
    """The extra tags of every track, read from the first of its ok files (in path order) that is there; run before
    the migration takes the write lock (mutagen reads tags only, no audio: seconds for thousands of files, but a
    scan or server beside us must not wait for them)."""
    from soundalike.audio.analysis import read_tags

    rows = conn.execute("SELECT track_id, path FROM files WHERE status='ok' AND track_id IS NOT NULL "
                        "ORDER BY track_id, path").fetchall()
    paths: dict[int, list[bytes]] = {}
    for track_id, path in rows:
        paths.setdefault(int(track_id), []).append(path)
    updates, unread = [], []
    for track_id, candidates in paths.items():
        path = next((p for p in candidates if os.path.isfile(p) and os.access(p, os.R_OK)), None)
        if path is None:
            unread.append(track_id)
            continue
        tags = read_tags(os.fsdecode(path))
        updates.append((tags.album_artist, tags.genre, tags.track_no, tags.disc_no, tags.year, track_id))
    return updates, unread


def _migrate_4(conn: sqlite3.Connection, backfill: Backfill | None = None) -> None:
    """Version 4: album artist, genre, track and disc numbers and year of each track, from ``backfill`` (read before
    the write lock by :func:`_read_extra_tags`). The files of a track none of whose files could be read (an
    unmounted disk) are marked changed (no mtime, no file hash): the next scan analyses them again and stores
    their tags. The playlists, plays and stars tables come from _SCHEMA."""
    have = {r[1] for r in conn.execute("PRAGMA table_info(tracks)")}
    for column in _EXTRA_TAGS:
        if column not in have:
            kind = "TEXT NOT NULL DEFAULT ''" if column in ("album_artist", "genre") else "INTEGER NOT NULL DEFAULT 0"
            conn.execute(f"ALTER TABLE tracks ADD COLUMN {column} {kind}")
    updates, unread = backfill if backfill is not None else _read_extra_tags(conn)
    conn.executemany("UPDATE tracks SET album_artist=?, genre=?, track_no=?, disc_no=?, year=? WHERE id=?", updates)
    conn.executemany("UPDATE files SET mtime_ns=-1, file_hash=NULL WHERE track_id=? AND status='ok'",
                     [(track_id,) for track_id in unread])


def _migrate_5(conn: sqlite3.Connection) -> None:
    """Version 5: a track's stars go with it (the trigger comes from _TRIGGERS); stars of tracks already gone are
    dropped now, before a new track takes their id."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='stars'").fetchone() is not None:
        conn.execute("DELETE FROM stars WHERE kind='track' AND item NOT IN (SELECT CAST(id AS TEXT) FROM tracks)")


def _migrate_6(conn: sqlite3.Connection) -> None:
    """Version 6: an index of vectors by model (a million-track catalogue reads one model's vectors, or lists its
    models, without scanning every vector) and the trigram full-text index of the tags, filled once here from the
    tracks already catalogued (both created by _SCHEMA and _FTS after the migrations). A catalogue that has the
    index already (made by a development build that numbered this step 5) is not indexed twice."""
    had = conn.execute("SELECT 1 FROM sqlite_master WHERE name='tracks_fts'").fetchone() is not None
    for statement in _FTS:
        conn.execute(statement)
    if not had:
        conn.execute("INSERT INTO tracks_fts(tracks_fts) VALUES ('rebuild')")


def _migrate_7(conn: sqlite3.Connection) -> None:
    """Version 7: an index of the folded titles (created by _SCHEMA after the migrations), so a search finds exact
    and prefix title matches without ranking every track that contains its words."""


def _migrate_8(conn: sqlite3.Connection) -> None:
    """Version 8: the index of vectors by model holds each vector's version too (created by _SCHEMA after the
    migrations), so the ids of the current descriptors are read from the index alone: at a million tracks 2.0 s of
    row lookups became 0.4 s, most of a large index's load."""
    conn.execute("DROP INDEX IF EXISTS vectors_model")



def _fts_is_padded(conn: sqlite3.Connection) -> bool:
    """Whether the catalogue's full-text index is the padded one of version 9 (its short words are indexed)."""
    row = conn.execute("SELECT sql FROM sqlite_master WHERE name='tracks_fts'").fetchone()
    return row is not None and "tracks_fts_text" in row[0]


def _migrate_9(conn: sqlite3.Connection) -> None:
    """Version 9: the full-text index pads each column with two filler characters (from a view), so words of one
    or two characters are found through it; the unpadded index of versions 6-8 is dropped and built again from the
    tracks. One built by version 6's migration in this same run is padded already."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name='tracks_fts'").fetchone() is None \
            or _fts_is_padded(conn):
        return
    for name in _FTS_TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    conn.execute("DROP TABLE tracks_fts")
    for statement in _FTS:
        conn.execute(statement)
    conn.execute("INSERT INTO tracks_fts(tracks_fts) VALUES ('rebuild')")


def _migrate_10(conn: sqlite3.Connection) -> None:
    """Version 10: track ids are never given out again (AUTOINCREMENT). Before, SQLite gave a new track the id of
    the highest one deleted, and what keys vectors by id outside the catalogue (a large library's IVF index and
    re-rank store) could serve the deleted track's vector for it. SQLite cannot add AUTOINCREMENT to a table, so
    ``tracks`` is copied into a new one, ids kept (foreign keys are off meanwhile: :func:`_prepare`); the views,
    triggers and indexes on it come from _SCHEMA, _FTS and _TRIGGERS after the migrations. The search indexes are
    dropped after the commit (:func:`_drop_search_indexes`): one may hold a deleted track's id that the new
    sequence, starting after today's highest id, would give out."""
    for name in (*_FTS_TRIGGERS, "tracks_drop_stars"):
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    conn.execute("DROP VIEW IF EXISTS tracks_fts_text")  # a view on a dropped table would stop the rename
    create = _SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS tracks ("):]
    create = create[:create.index(";")].replace("IF NOT EXISTS tracks", "tracks_v10")
    conn.execute(create)
    columns = ", ".join(r[1] for r in conn.execute("PRAGMA table_info(tracks_v10)"))
    conn.execute(f"INSERT INTO tracks_v10 ({columns}) SELECT {columns} FROM tracks")
    conn.execute("DROP TABLE tracks")
    conn.execute("ALTER TABLE tracks_v10 RENAME TO tracks")


def _migrate_11(conn: sqlite3.Connection) -> None:
    """Version 11: no table changes. A library's analysis window may now record its hash algorithm
    (``scan.library_window``: new libraries hash with XXH3, older ones keep BLAKE2b); a soundalike before it would
    ignore that and hash a library's new files with BLAKE2b — a moved or copied file would then become a new track
    and its history would be lost — so the number makes such a version refuse the catalogue ("newer schema")."""


def _drop_search_indexes(root: Path) -> None:
    """Remove the library's search indexes (derived data, built again on the next query)."""
    folder = root / INDEX_DIR
    for path in folder.glob("*") if folder.is_dir() else ():
        with contextlib.suppress(OSError):
            path.unlink()


# Forward migrations: version -> the function that brings a catalogue of version - 1 to it (inside the transaction
# of _prepare; tables, indexes and triggers that a version adds come from _SCHEMA, _FTS and _TRIGGERS after the
# migrations ran).
_MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {2: _migrate_2, 3: _migrate_3, 4: _migrate_4,
                                                               5: _migrate_5, 6: _migrate_6,
                                                               7: _migrate_7, 8: _migrate_8, 9: _migrate_9,
                                                               10: _migrate_10, 11: _migrate_11}


def _schema_version(conn: sqlite3.Connection) -> int | None:
    """The catalogue's schema version, or None when it has no meta table yet."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    except sqlite3.OperationalError:
        return None
    return None if row is None else int(row[0])


def _existing_version(conn: sqlite3.Connection) -> int | None:
    """The schema version of a catalogue that has tracks (1 when it predates the meta table's), None for a new one."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='tracks'").fetchone() is None:
        return None
    version = _schema_version(conn)
    return 1 if version is None else version


def _prepare(conn: sqlite3.Connection, db: Path) -> None:
    """Create the schema of a new catalogue, or migrate an older one forward: one transaction, so that a reader
    never sees half a schema and a crash mid-migration leaves the old version intact."""
    if _schema_version(conn) == SCHEMA_VERSION:
        return  # the usual case: no write lock taken (a scan may be writing in another process)
    before = _existing_version(conn)
    # Version 4 reads every track's file tags: before the write lock (checked again under it: another process may
    # have migrated meanwhile, then nothing read here is used).
    backfill = _read_extra_tags(conn) if before is not None and before < 4 else None
    # Version 10 copies the tracks table: with foreign keys on, dropping the old one would delete every row that
    # refers to a track (files, vectors, plays...). The pragma cannot change inside a transaction.
    rebuild = before is not None and before < 10
    if rebuild:
        conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("BEGIN IMMEDIATE")
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() if "meta" in tables \
            else None
        if row is not None and int(row[0]) > SCHEMA_VERSION:
            raise CatalogError(f"{db} has schema {row[0]}, newer than this soundalike ({SCHEMA_VERSION}): upgrade "
                               "soundalike to use it")
        version = SCHEMA_VERSION if "tracks" not in tables else 1 if row is None else int(row[0])
        if version < SCHEMA_VERSION:  # a large catalogue takes a while (schema 9 rebuilds the search index): say so
            tracks = conn.execute("SELECT COUNT(*) FROM tracks").fetchone()[0]
            if tracks >= UPGRADE_NOTICE_TRACKS:
                log.warning("upgrading the catalogue %s from schema %d to %d (%d tracks; once, may take a minute)",
                            db, version, SCHEMA_VERSION, tracks)
        broken = len(conn.execute("PRAGMA foreign_key_check").fetchall()) if rebuild else 0
        for target in range(version + 1, SCHEMA_VERSION + 1):
            if target == 4:
                _migrate_4(conn, backfill)
            else:
                _MIGRATIONS[target](conn)
        for statement in _SCHEMA.split(";"):  # new catalogues, and tables or indexes added since
            if statement.strip():
                conn.execute(statement)
        for statement in (*_FTS, *_TRIGGERS):
            conn.execute(statement)
        if rebuild and len(conn.execute("PRAGMA foreign_key_check").fetchall()) > broken:
            raise CatalogError(f"{db}: the upgrade to schema {SCHEMA_VERSION} broke a reference between tables; "
                               "the catalogue is left as it was")
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        if rebuild:
            conn.execute("PRAGMA foreign_keys = ON")
    if version < 10:
        _drop_search_indexes(db.parent)


class Library:
    """A music library's catalogue (``catalog.sqlite``) and feature store (``features/``) in one folder."""

    def __init__(self, root: Path, conn: sqlite3.Connection) -> None:
        self.root = root
        self.conn = conn
        self.store = FeatureStore(root / "features")
        # A read-only catalogue of an older version has no full-text index: its searches scan, as they did.
        self._fts = conn.execute("SELECT 1 FROM sqlite_master WHERE name='tracks_fts'").fetchone() is not None
        # Short words use the padded index of version 9 (an older read-only catalogue scans for them, as it did).
        self._fts_short = self._fts and _fts_is_padded(conn)
        self._vocab_ready = False

    @classmethod
    def open(cls, root: str | os.PathLike[str] | None = None, *, create: bool = True,
             readonly: bool = False) -> Library:
        """Open (and with ``create`` make) the library at ``root`` (default: :func:`default_library_dir`)."""
        path = Path(root).expanduser() if root is not None else default_library_dir()
        db = path / DB_NAME
        if not db.exists() and not create:
            raise CatalogError(f"no library at {path} (run `soundalike index PATH --library {path}` first)")
        if not readonly:
            path.mkdir(parents=True, exist_ok=True)
        uri = f"file:{db}?mode=ro" if readonly else f"file:{db}"
        conn = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 30000")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            try:
                _prepare(conn, db)
            except CatalogError:
                conn.close()
                raise
        elif conn.execute("SELECT 1 FROM sqlite_master WHERE name='tracks'").fetchone() is None:
            conn.close()
            raise CatalogError(f"{db} holds no catalogue yet (is it being created?)")
        return cls(path, conn)

    def close(self) -> None:
        """Close the database connection."""
        self.conn.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def playlists(self) -> PlaylistStore:
        """The catalogue's playlists (create, list, rename, reorder, replace tracks, delete)."""
        return PlaylistStore(self.conn)

    @property
    def plays(self) -> PlayLog:
        """Plays recorded in the catalogue (scrobbles), with counts per track."""
        return PlayLog(self.conn)

    @property
    def stars(self) -> Stars:
        """Starred (favourite) tracks, albums and artists."""
        return Stars(self.conn)

    def writing(self, *, wait: bool = True, on_wait: Callable[[str], None] | None = None
                ) -> contextlib.AbstractContextManager[None]:
        """``with lib.writing():`` — hold the library's inter-process writer lock (:mod:`.lock`)."""
        from .lock import writer_lock

        return writer_lock(self.root, wait=wait, on_wait=on_wait)

    # --- transactions -------------------------------------------------------------------------------------
    def transaction(self) -> Transaction:
        """``with lib.transaction():`` — one atomic write (BEGIN IMMEDIATE ... COMMIT / ROLLBACK)."""
        return Transaction(self.conn)

    # --- files --------------------------------------------------------------------------------------------
    def file_records(self) -> dict[bytes, FileRecord]:
        """Every known path with its record."""
        rows = self.conn.execute("SELECT path, track_id, size, mtime_ns, file_hash, status, error FROM files")
        return {r[0]: FileRecord(*r) for r in rows}

    def track_for_file_hash(self, fhash: str) -> int | None:
        """The track of an already analysed byte-identical file, if any."""
        row = self.conn.execute(
            "SELECT track_id FROM files WHERE file_hash=? AND status='ok' AND track_id IS NOT NULL LIMIT 1",
            (fhash,)).fetchone()
        return None if row is None else int(row[0])

    def track_for_audio_hash(self, ahash: str) -> int | None:
        """The track whose decoded audio has this hash, if any."""
        row = self.conn.execute("SELECT id FROM tracks WHERE audio_hash=?", (ahash,)).fetchone()
        return None if row is None else int(row[0])

    def record_error(self, path: bytes, size: int, mtime_ns: int, kind: str, reason: str) -> None:
        """Record that ``path`` could not be analysed (replacing what was known about it)."""
        with self.transaction():
            self._upsert_file(path, None, size, mtime_ns, None, kind, reason)

    def link_file(self, path: bytes, size: int, mtime_ns: int, fhash: str, track_id: int) -> None:
        """Record ``path`` as another copy of an already analysed track."""
        with self.transaction():
            self._upsert_file(path, track_id, size, mtime_ns, fhash)

    def add_analysis(self, path: bytes, size: int, mtime_ns: int, fhash: str, result: Analysis) -> tuple[int, bool]:
        """Store a new analysis (or link to the track with the same audio); returns ``(track_id, is_new)``."""
        existing = self.track_for_audio_hash(result.audio_hash)
        if existing is not None:
            with self.transaction():
                # The same audio with new bytes at a path that held it (re-tagged), or its only file: new tags.
                own = self.conn.execute("SELECT COUNT(*) FROM files WHERE track_id=? AND status='ok' AND path!=?",
                                        (existing, path)).fetchone()[0] == 0
                was_here = self.conn.execute("SELECT 1 FROM files WHERE path=? AND track_id=?",
                                             (path, existing)).fetchone() is not None
                if own or was_here:
                    self._set_tags(existing, result.tags)
                stored = self.conn.execute("SELECT version FROM vectors WHERE track_id=? AND model=?",
                                           (existing, DESCRIPTOR_MODEL)).fetchone()
                current = descriptors.DESCRIPTOR_VERSION
                if result.descriptor is not None and (stored is None or stored[0] != current):
                    self.put_vector(existing, DESCRIPTOR_MODEL, result.descriptor)
                self._upsert_file(path, existing, size, mtime_ns, fhash)
            return existing, False
        # Data first, then the rows that point at it, in one transaction: a crash leaves at most unused bytes.
        locations = {name: self.store.append(name, spec) for name, spec in result.spectrograms.items()}
        with self.transaction():
            tags = result.tags
            cur = self.conn.execute(
                "INSERT INTO tracks (audio_hash, duration, analysed_seconds, artist, album, title, added_at,"
                " f_artist, f_album, f_title, album_artist, genre, track_no, disc_no, year)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (result.audio_hash, result.duration, result.analysed_seconds, tags.artist, tags.album, tags.title,
                 time.time(), fold(tags.artist), fold(tags.album), fold(tags.title), tags.album_artist, tags.genre,
                 tags.track_no, tags.disc_no, tags.year))
            track_id = int(cur.lastrowid or 0)
            self._upsert_file(path, track_id, size, mtime_ns, fhash)
            for name, loc in locations.items():
                self.conn.execute("INSERT INTO spectrograms VALUES (?, ?, ?, ?, ?, ?)",
                                  (track_id, name, loc.chunk, loc.offset, loc.n_mels, loc.n_frames))
            if result.descriptor is not None:
                self.put_vector(track_id, DESCRIPTOR_MODEL, result.descriptor)
        return track_id, True

    def add_tracks(self, tracks: Sequence[NewTrack]) -> list[int]:
        """Catalogue many tracks in one transaction with batched statements (a million-track catalogue is built in
        minutes, not hours); returns their ids in order. A track whose audio hash is catalogued already keeps its
        id and gets the new file and vectors; a path that is catalogued already, or a vector that is not finite or
        whose length differs from its model's, is a :class:`CatalogError` and nothing of the batch is kept."""
        if not tracks:
            return []
        now = time.time()
        with self.transaction():
            self._check_bulk_vectors(tracks)
            hashes = [t.audio_hash for t in tracks]
            known: dict[str, int] = {}
            for start in range(0, len(hashes), 500):
                part = hashes[start:start + 500]
                marks = ",".join("?" * len(part))
                known.update(self.conn.execute(f"SELECT audio_hash, id FROM tracks WHERE audio_hash IN ({marks})",
                                               part).fetchall())
            next_id = int(self.conn.execute(  # after every id given out (AUTOINCREMENT's sequence), not only today's
                "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name='tracks'), 0),"
                " COALESCE((SELECT MAX(id) FROM tracks), 0))").fetchone()[0]) + 1
            ids: list[int] = []
            rows = []
            for t in tracks:
                if t.audio_hash not in known:
                    known[t.audio_hash] = next_id
                    tags = t.tags
                    rows.append((next_id, t.audio_hash, float(t.duration), float(t.duration), tags.artist, tags.album,
                                 tags.title, now, fold(tags.artist), fold(tags.album), fold(tags.title),
                                 tags.album_artist, tags.genre, int(tags.track_no), int(tags.disc_no), int(tags.year)))
                    next_id += 1
                ids.append(known[t.audio_hash])
            self.conn.executemany(
                "INSERT INTO tracks (id, audio_hash, duration, analysed_seconds, artist, album, title, added_at,"
                " f_artist, f_album, f_title, album_artist, genre, track_no, disc_no, year)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            try:
                self.conn.executemany(
                    "INSERT INTO files (path, track_id, size, mtime_ns, file_hash, status, error, scanned_at)"
                    " VALUES (?, ?, ?, ?, ?, 'ok', NULL, ?)",
                    [(_to_blob(t.path), i, int(t.size), int(t.mtime_ns), t.file_hash, now)
                     for t, i in zip(tracks, ids, strict=True)])
            except sqlite3.IntegrityError as exc:
                raise CatalogError(f"add_tracks: a path is catalogued already ({exc})") from None
            self.conn.executemany(
                "INSERT OR REPLACE INTO vectors (track_id, model, dim, vector, n_segments, segments, version)"
                " VALUES (?, ?, ?, ?, 0, NULL, ?)",
                [(i, model, v.size, v.tobytes(), descriptors.DESCRIPTOR_VERSION if model == DESCRIPTOR_MODEL else 0)
                 for t, i in zip(tracks, ids, strict=True) for model, raw in t.vectors.items()
                 for v in (np.asarray(raw, dtype=np.float32).ravel(),)])
        return ids

    def _check_bulk_vectors(self, tracks: Sequence[NewTrack]) -> None:
        """One length per model (the catalogue's, or the batch's first) and finite values, before anything is
        written: one bad vector would otherwise make every later read of its model fail."""
        dims: dict[str, int] = {}
        for t in tracks:
            for model, raw in t.vectors.items():
                v = np.asarray(raw, dtype=np.float32).ravel()
                if model not in dims:
                    row = self.conn.execute("SELECT dim FROM vectors WHERE model=? LIMIT 1", (model,)).fetchone()
                    dims[model] = int(row[0]) if row is not None else v.size
                if v.size != dims[model]:
                    raise CatalogError(f"add_tracks: {os.fsdecode(t.path)}: a {model} vector of {v.size} values, "
                                       f"the model's have {dims[model]}")
                if not np.all(np.isfinite(v)):
                    raise CatalogError(f"add_tracks: {os.fsdecode(t.path)}: the {model} vector is not finite")

    def set_tags(self, track_id: int, tags: Tags, fields: Iterable[str] = ("artist", "album", "title")) -> None:
        """Replace only the named ``fields`` of a track's tags (default: artist, album and title, as another tagger,
        beets say, knows them); every other tag stays as scanned."""
        chosen = tuple(dict.fromkeys(fields))
        unknown = [f for f in chosen if f not in _TAG_FIELDS]
        if unknown:
            raise ValueError(f"unknown tag field {unknown[0]!r} (one of {', '.join(_TAG_FIELDS)})")
        if not chosen:
            return
        columns = [f"{f}=?" for f in chosen] + [f"f_{f}=?" for f in chosen if f in _FOLDED]
        values = [getattr(tags, f) for f in chosen] + [fold(getattr(tags, f)) for f in chosen if f in _FOLDED]
        with self.transaction():
            self.conn.execute(f"UPDATE tracks SET {', '.join(columns)} WHERE id=?", (*values, track_id))

    def _set_tags(self, track_id: int, tags: Tags) -> None:
        """Every tag column of a track from its file's tags (a re-tagged file: the scan's whole truth)."""
        self.conn.execute("UPDATE tracks SET artist=?, album=?, title=?, f_artist=?, f_album=?, f_title=?, "
                          "album_artist=?, genre=?, track_no=?, disc_no=?, year=? WHERE id=?",
                          (tags.artist, tags.album, tags.title, fold(tags.artist), fold(tags.album),
                           fold(tags.title), tags.album_artist, tags.genre, tags.track_no, tags.disc_no, tags.year,
                           track_id))

    def _upsert_file(self, path: bytes, track_id: int | None, size: int, mtime_ns: int, fhash: str | None,
                     status: str = "ok", error: str | None = None) -> None:
        """Insert or replace the row of ``path``; a track it pointed at before leaves the index if no other file
        holds it (checked for that one track: a whole-table sweep per file made a scan quadratic)."""
        before = self.conn.execute("SELECT track_id FROM files WHERE path=?", (path,)).fetchone()
        self.conn.execute(
            "INSERT OR REPLACE INTO files (path, track_id, size, mtime_ns, file_hash, status, error, scanned_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (path, track_id, size, mtime_ns, fhash, status, error, time.time()))
        if before is not None and before[0] is not None and before[0] != track_id:
            self._drop_if_orphan(int(before[0]))

    def add_spectrogram(self, track_id: int, preset: str, spectrogram: np.ndarray) -> None:
        """Store another preset's spectrogram for an existing track (data first, then the row)."""
        loc = self.store.append(preset, spectrogram)
        with self.transaction():
            self.conn.execute("INSERT OR REPLACE INTO spectrograms VALUES (?, ?, ?, ?, ?, ?)",
                              (track_id, preset, loc.chunk, loc.offset, loc.n_mels, loc.n_frames))

    def remove_files(self, paths: Iterable[bytes]) -> int:
        """Forget these paths; tracks left without any file leave the index. Returns how many were removed."""
        paths = list(paths)
        if not paths:
            return 0
        with self.transaction():
            held: set[int] = set()
            for start in range(0, len(paths), 500):
                chunk = paths[start:start + 500]
                marks = ",".join("?" * len(chunk))
                held |= {int(r[0]) for r in self.conn.execute(
                    f"SELECT DISTINCT track_id FROM files WHERE path IN ({marks}) AND track_id IS NOT NULL", chunk)}
            self.conn.executemany("DELETE FROM files WHERE path=?", [(p,) for p in paths])
            for track_id in held:
                self._drop_if_orphan(track_id)
        return len(paths)

    def _drop_if_orphan(self, track_id: int) -> None:
        self.conn.execute("DELETE FROM tracks WHERE id=? AND NOT EXISTS (SELECT 1 FROM files WHERE track_id=?)",
                          (track_id, track_id))

    # --- vectors ------------------------------------------------------------------------------------------
    def put_vector(self, track_id: int, model: str, vector: np.ndarray,
                   segments: np.ndarray | None = None) -> None:
        """Store a track's pooled vector (and segment sequence) for ``model``; call inside a transaction.
        Descriptors are stamped with :data:`~soundalike.audio.descriptors.DESCRIPTOR_VERSION`."""
        v = np.asarray(vector, dtype=np.float32).ravel()
        seg_blob = None if segments is None else np.asarray(segments, dtype=np.float16).tobytes()
        n_seg = 0 if segments is None else int(segments.shape[0])
        version = descriptors.DESCRIPTOR_VERSION if model == DESCRIPTOR_MODEL else 0
        self.conn.execute("INSERT OR REPLACE INTO vectors (track_id, model, dim, vector, n_segments, segments, "
                          "version) VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (track_id, model, v.size, v.tobytes(), n_seg, seg_blob, version))

    def stale_descriptors(self) -> set[int]:
        """Tracks whose descriptor was made by another version of :func:`~soundalike.audio.descriptors.describe`
        (never searched; a scan analyses them again)."""
        rows = self.conn.execute("SELECT track_id FROM vectors WHERE model=? AND version!=?",
                                 (DESCRIPTOR_MODEL, descriptors.DESCRIPTOR_VERSION))
        return {int(r[0]) for r in rows}

    def _vector_filter(self, model: str) -> tuple[str, tuple[object, ...]]:
        if model == DESCRIPTOR_MODEL:
            return "model=? AND version=?", (model, descriptors.DESCRIPTOR_VERSION)
        return "model=?", (model,)

    def vector_ids(self, model: str = DESCRIPTOR_MODEL) -> np.ndarray:
        """Sorted ids (int64) of the tracks embedded by ``model`` (descriptors: of the current version only),
        without reading a vector."""
        where, params = self._vector_filter(model)
        rows = self.conn.execute(f"SELECT track_id FROM vectors WHERE {where} ORDER BY track_id", params)
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def vectors(self, model: str = DESCRIPTOR_MODEL, ids: Iterable[int] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """``(track_ids int64 (n,), vectors float32 (n, d))`` of every track embedded by ``model`` (descriptors: of
        the current version only), or of those of ``ids`` that are; ordered by track id. Rows are copied into one
        array as they are read (no second copy of a million vectors)."""
        where, params = self._vector_filter(model)
        if ids is not None:
            wanted = np.unique(np.fromiter((int(i) for i in ids), dtype=np.int64))
            parts = [self.vectors_in(model, wanted[start:start + 500]) for start in range(0, len(wanted), 500)]
            parts = [p for p in parts if len(p[0])]
            if not parts:
                return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
            return np.concatenate([p[0] for p in parts]), np.vstack([p[1] for p in parts])
        with self._read_snapshot():  # the count and the rows from one state of the catalogue
            first = self.conn.execute(f"SELECT dim FROM vectors WHERE {where} LIMIT 1", params).fetchone()
            if first is None:
                return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
            n = int(self.conn.execute(f"SELECT COUNT(*) FROM vectors WHERE {where}", params).fetchone()[0])
            dim = int(first[0])
            out_ids = np.zeros(n, dtype=np.int64)
            mat = np.zeros((n, dim), dtype=np.float32)
            row = 0
            for track_id, vdim, blob in self.conn.execute(
                    f"SELECT track_id, dim, vector FROM vectors WHERE {where} ORDER BY track_id", params):
                if row == n or vdim != dim:
                    raise CatalogError(f"{model} vectors changed while being read (or have mixed dimensions)")
                out_ids[row] = track_id
                mat[row] = np.frombuffer(blob, dtype=np.float32)
                row += 1
        return out_ids[:row], mat[:row]

    @contextlib.contextmanager
    def _read_snapshot(self) -> Iterator[None]:
        """Statements inside see one state of the catalogue (a read transaction; WAL lets writers go on), unless a
        transaction is open already."""
        if self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    def vectors_in(self, model: str, ids: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`vectors` of ``model`` for at most a few hundred track ``ids`` (one query), ordered by id."""
        where, params = self._vector_filter(model)
        wanted = [int(i) for i in ids]
        if not wanted:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        marks = ",".join("?" * len(wanted))
        rows = self.conn.execute(f"SELECT track_id, dim, vector FROM vectors WHERE {where} AND track_id IN ({marks})"
                                 " ORDER BY track_id", (*params, *wanted)).fetchall()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        found = np.array([r[0] for r in rows], dtype=np.int64)
        return found, np.vstack([np.frombuffer(r[2], dtype=np.float32) for r in rows])

    def vectors_of(self, models: Sequence[str], ids: Iterable[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`vectors` of each of ``models`` (in that order) for the tracks ``ids``, read together: one query a
        500 tracks through the (track, model) key, which finds a track's rows side by side (less CPU than a query
        a model: docs/scaling.md)."""
        wanted = np.unique(np.fromiter((int(i) for i in ids), dtype=np.int64))
        names = list(dict.fromkeys(models))
        slot = {m: i for i, m in enumerate(names)}
        found: list[list[int]] = [[] for _ in names]
        blobs: list[list[bytes]] = [[] for _ in names]
        for start in range(0, len(wanted), 500):
            part = wanted[start:start + 500].tolist()
            # "+model": the key's first column finds the rows; the model is then checked in the key itself, before
            # a row is read (without the "+", SQLite took the (model, track_id) index, a model at a time)
            sql = (f"SELECT track_id, model, version, vector FROM vectors WHERE track_id IN "
                   f"({','.join('?' * len(part))}) AND +model IN ({','.join('?' * len(names))}) ORDER BY track_id")
            for track_id, model, version, blob in self.conn.execute(sql, (*part, *names)):
                if model == DESCRIPTOR_MODEL and version != descriptors.DESCRIPTOR_VERSION:
                    continue  # stale descriptors, as vectors() leaves them out
                found[slot[model]].append(track_id)
                blobs[slot[model]].append(blob)
        out = []
        for model in models:
            i = slot[model]
            if not found[i]:
                out.append((np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)))
            else:
                out.append((np.array(found[i], dtype=np.int64),
                            np.vstack([np.frombuffer(b, dtype=np.float32) for b in blobs[i]])))
        return out

    def segments(self, track_id: int, model: str) -> np.ndarray | None:
        """The sequence of segment embeddings ``(n_segments, dim)`` stored for a track, if any."""
        row = self.conn.execute("SELECT dim, n_segments, segments FROM vectors WHERE track_id=? AND model=?",
                                (track_id, model)).fetchone()
        if row is None or row[2] is None:
            return None
        return np.frombuffer(row[2], dtype=np.float16).reshape(row[1], row[0]).astype(np.float32)

    def models(self) -> list[str]:
        """Names of the embeddings present in the catalogue (a walk over the model index: one lookup per model,
        not a scan of every vector)."""
        rows = self.conn.execute(
            "WITH RECURSIVE m(name) AS (SELECT MIN(model) FROM vectors UNION ALL "
            "SELECT (SELECT MIN(model) FROM vectors WHERE model > m.name) FROM m WHERE m.name IS NOT NULL) "
            "SELECT name FROM m WHERE name IS NOT NULL")
        return [r[0] for r in rows]

    # --- spectrograms -------------------------------------------------------------------------------------
    def spectrogram(self, track_id: int, preset: str = "melae") -> np.ndarray:
        """The stored log-mel spectrogram (float16 memory map, ``(n_mels, n_frames)``)."""
        row = self.conn.execute("SELECT chunk, offset, n_mels, n_frames FROM spectrograms WHERE track_id=? AND "
                                "preset=?", (track_id, preset)).fetchone()
        if row is None:
            raise CatalogError(f"track {track_id} has no {preset!r} spectrogram")
        return self.store.read(preset, Location(*row))

    # --- tracks -------------------------------------------------------------------------------------------
    _TRACK_SQL = ("SELECT t.id, MIN(f.path), t.artist, t.album, t.title, t.duration, t.audio_hash, t.album_artist, "
                  "t.genre, t.track_no, t.disc_no, t.year, t.added_at FROM tracks t "
                  "JOIN files f ON f.track_id = t.id AND f.status='ok'")

    def _track(self, row: tuple) -> Track:
        return Track(int(row[0]), display_path(row[1]), row[2], row[3], row[4], float(row[5]), row[6], row[7],
                     row[8], int(row[9]), int(row[10]), int(row[11]), float(row[12]))

    def track(self, track_id: int) -> Track | None:
        """The track with this id, or None."""
        if not 0 < track_id <= MAX_TRACK_ID:
            return None
        row = self.conn.execute(self._TRACK_SQL + " WHERE t.id=? GROUP BY t.id", (track_id,)).fetchone()
        return None if row is None or row[0] is None else self._track(row)

    def tracks(self, ids: Iterable[int] | None = None) -> list[Track]:
        """All tracks (ordered by id), or those with the given ids in that order."""
        if ids is None:
            return [self._track(r) for r in self.conn.execute(self._TRACK_SQL + " GROUP BY t.id ORDER BY t.id")]
        wanted = [int(i) for i in ids]
        found = {t.id: t for t in self._tracks_in(wanted)}
        return [found[i] for i in wanted if i in found]

    def _tracks_in(self, ids: list[int]) -> Iterator[Track]:
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            marks = ",".join("?" * len(part))
            for r in self.conn.execute(self._TRACK_SQL + f" WHERE t.id IN ({marks}) GROUP BY t.id", part):
                yield self._track(r)

    def label_rows(self, batch: int = 100_000) -> Iterator[list[tuple[int, str, str, str]]]:
        """``(id, title, artist, album)`` of every track :meth:`tracks` lists, by id, ``batch`` rows at a time
        (one pass; rows, not a :class:`TrackLabel` each: a million in seconds)."""
        # IN (one pass over the files, then the tracks by id) rather than EXISTS (a files lookup a track): at a
        # million tracks 1.2-1.4 instead of 1.6-1.7 s (page cache warm)
        cursor = self.conn.execute("SELECT t.id, t.title, t.artist, t.album FROM tracks t WHERE t.id IN "
                                   "(SELECT track_id FROM files WHERE status='ok') ORDER BY t.id")
        while rows := cursor.fetchmany(batch):
            yield rows

    def labels(self, ids: Iterable[int]) -> list[TrackLabel]:
        """Title, artist and album of those of ``ids`` that :meth:`tracks` lists (tracks with an indexed file), in
        the given order: what a map shows of thousands of tracks, without their paths (one query per 500 ids)."""
        wanted = [int(i) for i in ids]
        found: dict[int, TrackLabel] = {}
        for start in range(0, len(wanted), 500):
            part = wanted[start:start + 500]
            marks = ",".join("?" * len(part))
            for r in self.conn.execute(
                    f"SELECT t.id, t.title, t.artist, t.album FROM tracks t WHERE t.id IN ({marks}) AND EXISTS "
                    "(SELECT 1 FROM files f WHERE f.track_id = t.id AND f.status='ok')", part):
                found[int(r[0])] = TrackLabel(int(r[0]), r[1], r[2], r[3])
        return [found[i] for i in wanted if i in found]

    def track_by_path(self, path: str | os.PathLike[str] | bytes) -> Track | None:
        """The track of an indexed file (by absolute path), or None."""
        row = self.conn.execute("SELECT track_id FROM files WHERE path=? AND status='ok'",
                                (_to_blob(path),)).fetchone()
        return None if row is None or row[0] is None else self.track(int(row[0]))

    # The one track search of the command line and the server: every word of the text must occur (accents and
    # case folded, by instr(): '%' and '_' are plain characters) in the folded artist, album or title; exact
    # titles (or "artist - title") rank first, then titles or labels that start with the text, then the rest.
    # Only a bounded pool is ranked (SEARCH_RANKED): the exact and prefix matches found through the B-tree indexes
    # and the first matches in catalogue order; matches beyond the pool follow it in catalogue order.
    _LABEL = "(CASE WHEN f_artist != '' THEN f_artist || ' - ' || f_title ELSE f_title END)"
    _HAYSTACK = "({t}f_artist || char(10) || {t}f_album || char(10) || {t}f_title)"
    _RANK = (f"CASE WHEN f_title = :n OR {_LABEL} = :n THEN 0 WHEN substr(f_title, 1, length(:n)) = :n "
             f"OR substr({_LABEL}, 1, length(:n)) = :n THEN 1 ELSE 2 END, length(f_title), f_artist, id")

    def _search_where(self, text: str, table: str = "") -> tuple[str, dict[str, str]]:
        """The exact rule (every word by ``instr``, over columns of ``table``) and its parameters."""
        words = search_words(text)
        haystack = self._HAYSTACK.format(t=f"{table}." if table else "")
        clauses = [f"instr({haystack}, :w{i}) > 0" for i in range(len(words))]
        return " AND ".join(clauses) or "1", {f"w{i}": w for i, w in enumerate(words)}

    def _fts_phrase(self, text: str) -> str | None:
        """The full-text query that finds every track containing the words (a superset: ``instr`` stays the rule):
        the words of 3+ characters as phrases, or without such a word the rare short words' trigrams; None when
        the index cannot help, "" when no track can match."""
        words = search_words(text)
        long = [w for w in words if len(w) >= FTS_MIN_WORD]
        if not self._fts:
            return None
        if long:
            return " AND ".join(_fts_quote(w) for w in long)
        groups = []
        for word in words:
            terms = self._short_word_terms(word)
            if terms == []:
                return ""  # no indexed trigram starts with it: no track contains it
            if terms is not None:
                groups.append("(" + " OR ".join(_fts_quote(t) for t in terms) + ")")
        return " AND ".join(groups) or None

    def _short_word_terms(self, word: str) -> list[str] | None:
        """The index's trigrams that start with a word of 1-2 characters (every track that contains it has one),
        or None when the word is common (a scan finds it sooner) or the index has no padded short words."""
        if not self._fts_short:
            return None
        common = self.conn.execute(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM (SELECT f_artist, f_album, f_title FROM tracks ORDER BY id "
            f"LIMIT :probe) WHERE instr({self._HAYSTACK.format(t='')}, :w) > 0 LIMIT :common)",
            {"probe": SHORT_WORD_PROBE, "common": SHORT_WORD_COMMON, "w": word}).fetchone()[0]
        end = _prefix_end(word)
        if common >= SHORT_WORD_COMMON or end is None:
            return None
        if not self._vocab_ready:  # the vocabulary's view of the index, in this connection's own temp schema
            self.conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.tracks_fts_vocab USING "
                              "fts5vocab(main, 'tracks_fts', 'row')")
            self._vocab_ready = True
        terms = [r[0] for r in self.conn.execute(
            "SELECT term FROM temp.tracks_fts_vocab WHERE term >= :lo AND term < :hi LIMIT :n",
            {"lo": word, "hi": end, "n": SHORT_WORD_TERMS + 1})]
        return None if len(terms) > SHORT_WORD_TERMS else terms

    def _matches_from(self, text: str, after: int, skip: list[int], limit: int, offset: int = 0) -> list[int]:
        """Ids of matches of ``text`` above id ``after``, in id order, leaving out ``skip``; ``limit`` < 0: all."""
        phrase = self._fts_phrase(text)
        if phrase == "":
            return []
        where, params = self._search_where(text, "t")
        args = {**params, "after": after, "skip": json.dumps(skip), "limit": limit, "offset": offset}
        if phrase is None:
            sql, order = f"SELECT t.id FROM tracks AS t WHERE t.id > :after AND {where}", "t.id"
        else:  # the full-text index yields its rows in id order, lazily: a LIMIT stops it early
            sql = (f"SELECT t.id FROM tracks_fts JOIN tracks AS t ON t.id = tracks_fts.rowid WHERE tracks_fts MATCH "
                   f":fts AND tracks_fts.rowid > :after AND {where}")
            order = "tracks_fts.rowid"
            args["fts"] = phrase
        sql += f" AND t.id NOT IN (SELECT value FROM json_each(:skip)) ORDER BY {order} LIMIT :limit OFFSET :offset"
        return [int(r[0]) for r in self.conn.execute(sql, args)]

    def _best_candidates(self, needle: str) -> list[int]:
        """Ids of tracks whose title or "artist - title" is ``needle`` or starts with it (up to
        :data:`SEARCH_RANKED` of each kind), through the title and artist indexes."""
        found: list[int] = []
        q = self.conn.execute
        # (column, prefix, artist): the title, an artist that starts with the text, "artist - title" at each " - "
        ranges: list[tuple[str, str, str | None]] = [("f_title", needle, None), ("f_artist", needle, None)]
        parts = needle.split(" - ")
        ranges += [("f_title", " - ".join(parts[i:]), " - ".join(parts[:i])) for i in range(1, len(parts))]
        for column, prefix, artist in ranges:
            stop = _prefix_end(prefix) if prefix else None
            if stop is None:
                continue  # nothing to look up (the first matches are ranked all the same)
            where = f"{column} >= :lo AND {column} < :hi"
            if artist is not None:
                where += " AND f_artist = :artist"
            found += [int(r[0]) for r in q(f"SELECT id FROM tracks WHERE {where} LIMIT :n",
                                          {"lo": prefix, "hi": stop, "artist": artist, "n": SEARCH_RANKED})]
        return found

    def search(self, text: str, limit: int | None = 10, offset: int = 0) -> list[Track]:
        """Tracks whose artist, album or title contain every word of ``text`` (accents and case ignored), best
        first (exact titles, then titles or labels that start with the text, then shorter titles; of a larger
        result, the :data:`SEARCH_RANKED` first matches and every exact or prefix one are ranked, the rest
        follow in catalogue order); a text without words lists every track by artist, album and title."""
        return self._search(text, limit, offset)

    def search_counted(self, text: str, limit: int | None = 10, offset: int = 0, count_limit: int | None = None
                       ) -> tuple[list[Track], int]:
        """:meth:`search` and :meth:`search_count` (``count_limit`` as its ``limit``) at once: where the full-text
        index alone finds exactly the matches (every word has 3+ characters) and the count is capped, one pass over
        the index gives the count and the first matches the ranking takes, instead of a pass for each."""
        words = search_words(text)
        # only words of 3+ characters: for shorter ones _fts_phrase reads the vocabulary, which the fallback's
        # search and count would read again
        exact = count_limit is not None and bool(words) and all(len(w) >= FTS_MIN_WORD for w in words)
        phrase = self._fts_phrase(text) if exact else None
        if phrase and count_limit is not None:
            found = [int(r[0]) for r in self.conn.execute(
                "SELECT rowid FROM tracks_fts WHERE tracks_fts MATCH :fts ORDER BY rowid LIMIT :n",
                {"fts": phrase, "n": max(SEARCH_RANKED, count_limit)})]
            return self._search(text, limit, offset, first=found[:SEARCH_RANKED]), min(len(found), count_limit)
        return self._search(text, limit, offset), self.search_count(text, limit=count_limit)

    def _search(self, text: str, limit: int | None, offset: int, first: list[int] | None = None) -> list[Track]:
        """:meth:`search`; ``first``: the first :data:`SEARCH_RANKED` matches in id order, when the caller has
        them already."""
        want = -1 if limit is None else limit
        if not search_words(text):
            sql = "SELECT id FROM tracks ORDER BY f_artist, f_album, f_title, id LIMIT :limit OFFSET :offset"
            return self.tracks([r[0] for r in self.conn.execute(sql, {"limit": want, "offset": offset})])
        needle = fold(text.strip())
        if first is None:
            first = self._matches_from(text, 0, [], SEARCH_RANKED)
        best = self._best_candidates(needle)
        where, params = self._search_where(text)
        pool = sorted(set(first) | set(best))
        # The matches are taken first (MATERIALIZED), then sorted: with the filter and the ORDER BY in one query
        # SQLite re-evaluated the row's expressions while sorting (at 1M tracks, 3,000 rows: 27 -> 11 ms CPU).
        ranked = [int(r[0]) for r in self.conn.execute(
            f"WITH m AS MATERIALIZED (SELECT id, f_title, f_artist FROM tracks WHERE id IN "
            f"(SELECT value FROM json_each(:pool)) AND {where}) SELECT id FROM m ORDER BY {self._RANK}",
            {**params, "pool": json.dumps(pool), "n": needle})]
        ids = ranked[offset:] if limit is None else ranked[offset:offset + limit]
        if len(first) == SEARCH_RANKED and (limit is None or len(ids) < limit):  # more matches beyond the pool
            more = -1 if limit is None else limit - len(ids)
            ids += self._matches_from(text, first[-1], sorted(set(best) - set(first)), more,
                                      max(0, offset - len(ranked)))
        return self.tracks(ids)

    def search_count(self, text: str, limit: int | None = None) -> int:
        """How many tracks :meth:`search` finds for ``text``; with ``limit``, counting stops there (at most
        ``limit``: a common word of a million tracks is counted in a millisecond instead of tens of them)."""
        cap = {"cap": -1 if limit is None else max(0, int(limit))}
        if not search_words(text):
            return int(self.conn.execute("SELECT COUNT(*) FROM (SELECT 1 FROM tracks LIMIT :cap)", cap).fetchone()[0])
        phrase = self._fts_phrase(text)
        if phrase == "":
            return 0
        if phrase is not None and all(len(w) >= FTS_MIN_WORD for w in search_words(text)):
            # the index finds exactly the rows that contain every word (as instr finds them): counted in the index
            sql, params = "SELECT 1 FROM tracks_fts WHERE tracks_fts MATCH :fts", {"fts": phrase}
        else:
            where, params = self._search_where(text, "t")
            sql = f"SELECT 1 FROM tracks AS t WHERE {where}"
            if phrase is not None:
                sql = (f"SELECT 1 FROM tracks_fts JOIN tracks AS t ON t.id = tracks_fts.rowid WHERE tracks_fts MATCH "
                       f":fts AND {where}")
                params = {**params, "fts": phrase}
        return int(self.conn.execute(f"SELECT COUNT(*) FROM ({sql} LIMIT :cap)", {**params, **cap}).fetchone()[0])

    def file_paths(self, track_id: int) -> list[bytes]:
        """Every indexed file of a track as the catalogue stores it: the real path in bytes (names that are not
        UTF-8 included; :meth:`paths_of` and ``Track.path`` are for showing), in path order."""
        rows = self.conn.execute("SELECT path FROM files WHERE track_id=? AND status='ok' ORDER BY path",
                                 (track_id,))
        return [bytes(r[0]) for r in rows]

    def paths_of(self, track_id: int) -> list[str]:
        """Every indexed path of a track (duplicates included)."""
        rows = self.conn.execute("SELECT path FROM files WHERE track_id=? AND status='ok' ORDER BY path",
                                 (track_id,))
        return [display_path(r[0]) for r in rows]

    def stats(self) -> dict[str, object]:
        """Counts of tracks, files, errors by kind, models, and disk use."""
        q = self.conn.execute
        errors = dict(q("SELECT status, COUNT(*) FROM files WHERE status!='ok' GROUP BY status").fetchall())
        return {
            "library": str(self.root),
            "tracks": q("SELECT COUNT(*) FROM tracks").fetchone()[0],
            "files": q("SELECT COUNT(*) FROM files WHERE status='ok'").fetchone()[0],
            "errors": errors,
            "hours": round((q("SELECT COALESCE(SUM(duration), 0) FROM tracks").fetchone()[0]) / 3600.0, 3),
            "models": self.models(),
            "feature_store_bytes": self.store.disk_bytes(),
            "catalogue_bytes": _bytes_of(self.root.glob(DB_NAME + "*")),
            "indexes_bytes": _bytes_of((self.root / INDEX_DIR).glob("*")),
        }

    def fingerprint(self) -> list[tuple[str, str, str]]:
        """Sorted ``(path, audio_hash, status)`` of every file: equal for catalogues with the same content."""
        rows = self.conn.execute("SELECT f.path, COALESCE(t.audio_hash, ''), f.status FROM files f "
                                 "LEFT JOIN tracks t ON t.id = f.track_id ORDER BY f.path")
        return [(display_path(r[0]), r[1], r[2]) for r in rows]

    def roots(self) -> list[str]:
        """The folders (and files) scans were asked to index, as given to them (absolute)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key='roots'").fetchone()
        return list(json.loads(row[0])) if row else []

    def add_roots(self, roots: Iterable[str]) -> None:
        """Remember roots a scan indexed (for showing paths relative to them)."""
        known = self.roots()
        fresh = [r for r in roots if r not in known]
        if fresh:
            self.set_meta("roots", known + fresh)

    def set_meta(self, key: str, value: object) -> None:
        """Store a JSON value in the meta table."""
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

