"""The re-rank store of a compact index: every indexed track's search vector in float16, in a file beside the index.

A compact index (8-bit codes, or PQ) ranks candidates by decoded codes, then re-scores the best few with exact
vectors (:meth:`~soundalike.search.index.VectorIndex.search`). Reading those from the catalogue took three SQLite
rows a track (one a part of the default: ~2 pages each, 1.1 ms of CPU for 40 tracks at a million) and was the
largest single cost of ``similar``, ``continue`` and ``path`` under load (docs/scaling.md). Here a track's search
vector — already transformed, unit length — is one row of ``dim`` float16 values (3.8 KB for the default's 1882
dimensions: one page), read with one ``pread`` a candidate: no Python objects a row, nothing mapped into the
server's memory (the rows stay in the page cache, shared by every process). Written in code because no library
offers an append-only, id-keyed array file that several processes read while one appends; numpy's ``memmap``
would count every page it ever touched in the server's resident memory.

float16 rounds each value by at most 2⁻¹¹ of it: a score moves by ~1e-5 (measured: ``benchmarks/scale.py
--rerank-reads``), against ~5e-3 for the 8-bit codes; the rows are made unit length again on reading.

Files (``STEM`` is the index file's path without ``.ann``): ``STEM.refine`` — the rows, appended, never rewritten
in place; ``STEM.refine.map`` — the magic line ``SOUNDALIKE-REFINE``, a little-endian uint64 header length, a
JSON header (format, dimension, rows, the rows file's inode, and the fingerprint of the search-space statistics
the rows were transformed with), then the track id of each row as int64 (-1: removed); replaced atomically. Other
statistics (a refit) or another rows file make the store unusable, and it is written again. A process that reads
keeps the rows of its own map: others only append (under an exclusive ``flock`` of the rows file) or replace the
whole store with a new rows file (an append notices that and refuses: :class:`StoreReplaced`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .ann import write_atomically
from .vectors import unit_rows

FORMAT = 1
DTYPE = np.dtype("<f2")
MAGIC = b"SOUNDALIKE-REFINE\n"


class StoreReplaced(OSError):
    """Another process replaced the store's rows file since this one was opened: this one must not write to it."""


def fingerprint(stats: dict[str, Any]) -> str:
    """A short hash of search-space statistics (``Embedding.to_json()``): rows transformed with them match it."""
    return hashlib.blake2b(json.dumps(stats, sort_keys=True).encode(), digest_size=12).hexdigest()


def store_paths(stem: Path) -> tuple[Path, Path]:
    """``(rows, map)`` files of the store at ``stem``."""
    return stem.with_name(stem.name + ".refine"), stem.with_name(stem.name + ".refine.map")


def _open_rows(path: Path) -> int:
    """A read-only descriptor of a rows file."""
    return os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))


class RefineStore:
    """Float16 search vectors of indexed tracks, by track id (module doc)."""

    def __init__(self, stem: Path, dim: int, stats: str, ids: np.ndarray, fd: int) -> None:
        """A store at ``stem`` of ``dim``-wide rows whose track ids are ``ids`` (row order; -1 where removed), read
        through ``fd``, its rows file open for reading (the store closes it)."""
        self.stem, self.dim, self.stats = stem, int(dim), stats
        # read with pread (positional): one descriptor serves every thread, and forked workers share it
        self._fd: int | None = fd
        self.inode = os.fstat(fd).st_ino
        self.row_bytes = self.dim * DTYPE.itemsize
        self._rows_path, self._map_path = store_paths(stem)
        self._set_ids(np.asarray(ids, dtype=np.int64))
        self.dirty = False  # rows appended or removed since the map was last saved

    def _set_ids(self, ids: np.ndarray) -> None:
        self.dirty = True
        self.row_ids = ids
        live = np.flatnonzero(ids >= 0)
        order = np.argsort(ids[live], kind="stable")
        self._sorted, self._row_of = ids[live][order], live[order]

    def __len__(self) -> int:
        return len(self._sorted)

    @property
    def dead(self) -> int:
        """Rows of removed tracks (space a rewrite would give back)."""
        return len(self.row_ids) - len(self._sorted)

    # --- opening and writing ------------------------------------------------------------------------------------
    @classmethod
    def open(cls, stem: Path, dim: int, stats: str) -> RefineStore | None:
        """The store at ``stem`` if it holds ``dim``-wide rows made with the statistics ``stats`` and is whole; else
        None (absent, other statistics, cut short, unreadable: a caller writes it again)."""
        rows, map_path = store_paths(stem)
        try:
            blob = map_path.read_bytes()
            fd = _open_rows(rows)
        except OSError:
            return None
        try:
            info = os.fstat(fd)
            start = len(MAGIC) + 8
            (length,) = struct.unpack("<Q", blob[len(MAGIC):start])
            header = json.loads(blob[start:start + length])
            ids = np.frombuffer(blob, dtype="<i8", offset=start + length).astype(np.int64)
            if blob.startswith(MAGIC) and isinstance(header, dict) and header.get("format") == FORMAT \
                    and header.get("dim") == dim and header.get("stats") == stats and header.get("rows") == len(ids) \
                    and header.get("inode") == info.st_ino and info.st_size >= len(ids) * dim * DTYPE.itemsize:
                return cls(stem, dim, stats, ids, fd)
        except (OSError, ValueError, struct.error):
            pass
        os.close(fd)
        return None

    @classmethod
    def create(cls, stem: Path, dim: int, stats: str) -> RefineStore:
        """A new, empty store at ``stem`` (a new rows file: readers of an older one keep theirs)."""
        rows, _ = store_paths(stem)
        rows.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(rows, lambda f: None)
        store = cls(stem, dim, stats, np.zeros(0, np.int64), _open_rows(rows))
        store.save()
        return store

    def append(self, track_ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add (or replace) these tracks' search vectors (rows appended; a replaced track's old row is dead)."""
        ids = np.asarray(track_ids, dtype=np.int64).ravel()
        x = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32), dtype=DTYPE)
        if x.shape != (len(ids), self.dim):
            raise ValueError(f"expected vectors ({len(ids)}, {self.dim}), got shape {np.shape(vectors)}")
        if not len(ids):
            return
        with open(self._rows_path, "r+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # another process appending to this file waits
            if os.fstat(f.fileno()).st_ino != self.inode:
                raise StoreReplaced(f"{self._rows_path}: replaced by another process since it was opened")
            end = f.seek(0, os.SEEK_END)
            first = -(-end // self.row_bytes)  # whole rows: a torn write of another process is skipped
            f.seek(first * self.row_bytes)
            f.write(x.tobytes())
        replaced = np.isin(self.row_ids, ids)
        old = np.where(replaced, -1, self.row_ids)
        gap = np.full(first - len(old), -1, np.int64)  # rows other processes appended meanwhile: not ours
        self._set_ids(np.concatenate([old, gap, ids]))

    def remove(self, track_ids: np.ndarray) -> int:
        """Forget these tracks' rows (the rows stay in the file, dead); returns how many were held."""
        gone = np.isin(self.row_ids, np.asarray(track_ids, dtype=np.int64))
        if gone.any():
            self._set_ids(np.where(gone, -1, self.row_ids))
        return int(gone.sum())

    def save(self) -> None:
        """Write the map (replaced atomically; the rows were written by :meth:`append`)."""
        header = json.dumps({"format": FORMAT, "dim": self.dim, "rows": len(self.row_ids), "stats": self.stats,
                             "inode": self.inode, "dtype": DTYPE.str}).encode()
        body = MAGIC + struct.pack("<Q", len(header)) + header + self.row_ids.astype("<i8").tobytes()
        write_atomically(self._map_path, lambda f: f.write(body))
        self.dirty = False

    # --- reading ------------------------------------------------------------------------------------------------
    def has(self, track_ids: np.ndarray) -> np.ndarray:
        """Whether each of ``track_ids`` has a row (booleans, in the given order)."""
        want = np.asarray(track_ids, dtype=np.int64).ravel()
        if not len(self._sorted):
            return np.zeros(len(want), dtype=bool)
        pos = np.minimum(np.searchsorted(self._sorted, want), len(self._sorted) - 1)
        return self._sorted[pos] == want

    def read(self, track_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, unit float32 vectors)`` of those of ``track_ids`` the store holds, sorted by id, duplicates once."""
        want = np.unique(np.asarray(track_ids, dtype=np.int64).ravel())
        found = want[self.has(want)]
        out = np.empty((len(found), self.dim), DTYPE)
        if not len(found):
            return found, out.astype(np.float32)
        rows = self._row_of[np.searchsorted(self._sorted, found)]
        fd = self._fd
        if fd is None:
            raise OSError(f"{self._rows_path}: the re-rank store was closed")
        for i in np.argsort(rows, kind="stable").tolist():  # in file order
            got = os.preadv(fd, [out[i]], int(rows[i]) * self.row_bytes)
            if got != self.row_bytes:
                raise OSError(f"{self._rows_path}: row {int(rows[i])} is cut short ({got} of {self.row_bytes} bytes)")
        return found, unit_rows(out.astype(np.float32))

    def close(self) -> None:
        """Close the rows file (reads fail afterwards)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.close()
