"""Listening data for collaborative filtering: playlists read into a sparse playlist x track matrix.

Seed 004 (``seeds/004_3495b76c5a649c02.txt``, §4, §5) trains a convnet to predict the latent factors a
collaborative-filtering model gives each song; the factors come from usage data. Here the usage data are playlists
(a track being in a playlist = one implicit "listen"), read from one of three forms and mapped onto catalogue track
ids:

* **Million Playlist Dataset** JSON slices (``{"playlists": [{"pid", "tracks": [{"track_uri", ...}]}]}``), one
  file or a folder of them, with a CSV of ``track_uri,path`` that says which local file each Spotify URI is. The
  CSV is ``track_map`` when given, else every CSV with those columns beside the slices.
* A folder of **M3U / M3U8** playlists (searched recursively; one playlist per file, or a single playlist file):
  ``#`` lines (``#EXTM3U``, ``#EXTINF``...) are ignored, relative entries are resolved against the playlist's
  folder, ``file://`` URLs are accepted and other URLs count as unknown.
  A folder that holds M3U files is read as M3U playlists (any JSON in it is then ignored).
* A **CSV of** ``list,track`` rows: ``track`` is a path (relative to the CSV's folder) or a catalogue track id.

Every entry that does not become a catalogue track is counted by reason (missing file, file not in the catalogue,
URI without a path, unknown track id, URL...), with a few examples, so a user can see what was lost. Matrix
values are 1 (membership): a track listed twice in one playlist, or two copies of one track, count once and are
reported as duplicates; a playlist id seen twice (MPD ``pid``) keeps its first occurrence.

:func:`als_item_factors` factorises the matrix with ``implicit``'s alternating least squares (Hu, Koren &
Volinsky's weighted matrix factorisation, the model seed 004's NIPS paper used), deterministically (seeded).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
from scipy import sparse

M3U_SUFFIXES = (".m3u", ".m3u8")
MAX_EXAMPLES = 5


class InteractionsError(ValueError):
    """Listening data that cannot be used: missing, unreadable, malformed, or naming no catalogue track."""


# --- resolving entries to catalogue tracks ----------------------------------------------------------------------
def _path_key(path: str | os.PathLike[str]) -> bytes:
    """The catalogue's key for a path (absolute, as bytes: see ``catalog._to_blob``)."""
    return os.fsencode(os.path.abspath(os.fsencode(path)))


class TrackResolver:
    """Maps paths and track ids to catalogue track ids (one query for all indexed paths)."""

    def __init__(self, lib: Any) -> None:
        rows = lib.conn.execute("SELECT path, track_id FROM files WHERE status='ok' AND track_id IS NOT NULL")
        self.by_path: dict[bytes, int] = {bytes(p): int(t) for p, t in rows}
        self.ids: set[int] = {int(r[0]) for r in lib.conn.execute("SELECT id FROM tracks")}

    def path(self, path: str | os.PathLike[str]) -> tuple[int | None, str]:
        """``(track id, "")`` for an indexed file, else ``(None, reason)``."""
        found = self.by_path.get(_path_key(path))
        if found is not None:
            return found, ""
        return (None, "missing file") if not os.path.exists(path) else (None, "file not in the catalogue")

    def track_id(self, value: str) -> tuple[int | None, str]:
        """A catalogue track id given as text."""
        try:
            tid = int(value)
        except ValueError:
            return None, "not a track id"
        return (tid, "") if tid in self.ids else (None, "unknown track id")


def _resolve_path_entry(resolver: TrackResolver, entry: str, base: Path) -> tuple[int | None, str]:
    """A playlist entry (path, relative path or file:// URL) to a track id."""
    entry = entry.strip()
    if entry.lower().startswith("file://"):
        entry = unquote(urlparse(entry).path)
    elif "://" in entry:
        return None, "URL, not a local file"
    if "\\" in entry and not os.path.exists(entry):
        entry = entry.replace("\\", "/")
    path = Path(os.path.expanduser(entry))
    if not path.is_absolute():
        path = base / path
    return resolver.path(path)


# --- the result -----------------------------------------------------------------------------------------------
@dataclass
class Interactions:
    """A binary playlist x track matrix over catalogue tracks, and what could not be used."""

    matrix: sparse.csr_matrix  # (n_lists, n_tracks) float32, 1 = the track is in the list
    track_ids: np.ndarray  # int64 (n_tracks,): the catalogue id of each column
    lists: list[str]  # the name of each row
    source: str
    format: str  # "mpd", "m3u" or "csv"
    entries: int = 0  # playlist entries read
    unknown: dict[str, int] = field(default_factory=dict)  # reason -> entries that are no catalogue track
    examples: list[str] = field(default_factory=list)  # a few of those entries, with their reason
    duplicates: int = 0  # (list, track) pairs seen again
    duplicate_lists: int = 0  # lists (MPD pids) seen again, skipped
    empty_lists: int = 0  # lists without any catalogue track (not in the matrix)

    @property
    def n_unknown(self) -> int:
        """Entries that did not become a catalogue track."""
        return sum(self.unknown.values())

    def summary(self) -> dict[str, Any]:
        """Plain facts for a model card."""
        return {"interactions": self.source, "interactions_format": self.format, "playlists": len(self.lists),
                "interaction_tracks": int(len(self.track_ids)), "interaction_entries": self.entries,
                "interaction_pairs": int(self.matrix.nnz), "unknown_entries": dict(self.unknown),
                "duplicate_entries": self.duplicates, "duplicate_playlists": self.duplicate_lists,
                "playlists_without_catalogue_tracks": self.empty_lists}

    def report(self) -> str:
        """One human-readable paragraph: what was read and what was lost, with counts."""
        text = (f"{self.source}: {len(self.lists)} playlists, {len(self.track_ids)} catalogue tracks, "
                f"{self.matrix.nnz} playlist entries used of {self.entries} read")
        if self.unknown:
            lost = ", ".join(f"{n} {reason}" for reason, n in sorted(self.unknown.items(), key=lambda kv: -kv[1]))
            text += f"; not in the catalogue: {lost}"
            if self.examples:
                text += f" (e.g. {'; '.join(self.examples)})"
        if self.duplicates:
            text += f"; {self.duplicates} duplicate entries counted once"
        if self.duplicate_lists:
            text += f"; {self.duplicate_lists} repeated playlists skipped"
        if self.empty_lists:
            text += f"; {self.empty_lists} playlists without any catalogue track"
        return text


class _Builder:
    """Accumulates (list, track) pairs and the reasons entries were dropped."""

    def __init__(self, source: Path, fmt: str) -> None:
        self.source, self.fmt = source, fmt
        self.lists: dict[str, set[int]] = {}
        self.order: list[str] = []
        self.entries = 0
        self.unknown: Counter[str] = Counter()
        self.examples: list[str] = []
        self.duplicates = 0
        self.duplicate_lists = 0

    def new_list(self, name: str) -> bool:
        """Start list ``name``; False if it was seen before (MPD pids)."""
        if name in self.lists:
            self.duplicate_lists += 1
            return False
        self.lists[name] = set()
        self.order.append(name)
        return True

    def add(self, name: str, track: int | None, reason: str, entry: str) -> None:
        """One entry of list ``name``: a track id, or None with the reason it is not one."""
        self.entries += 1
        if name not in self.lists:
            self.lists[name] = set()
            self.order.append(name)
        if track is None:
            self.unknown[reason] += 1
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append(f"{entry!r}: {reason}")
            return
        members = self.lists[name]
        if track in members:
            self.duplicates += 1
        members.add(track)

    def build(self) -> Interactions:
        names = [n for n in self.order if self.lists[n]]
        all_ids = np.array(sorted(set().union(*(self.lists[n] for n in names))) if names else [], dtype=np.int64)
        column = {int(t): i for i, t in enumerate(all_ids)}
        rows: list[int] = []
        cols: list[int] = []
        for r, name in enumerate(names):
            for t in sorted(self.lists[name]):
                rows.append(r)
                cols.append(column[t])
        matrix = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(names), len(all_ids)),
                                   dtype=np.float32)
        return Interactions(matrix, all_ids, names, str(self.source), self.fmt, self.entries, dict(self.unknown),
                            list(self.examples), self.duplicates, self.duplicate_lists,
                            len(self.order) - len(names))


# --- readers --------------------------------------------------------------------------------------------------
def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        if path.suffix.lower() == ".m3u":  # plain .m3u is often Latin-1
            return data.decode("latin-1")
        raise InteractionsError(f"{path}: not UTF-8 text") from None


def csv_rows(path: Path) -> tuple[list[str], Iterator[list[str]]]:
    """The lower-cased header and the remaining rows of a CSV file."""
    try:
        text = _read_text(path)
    except OSError as exc:
        raise InteractionsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise InteractionsError(f"{path}: empty CSV file (expected a header row)") from None
    except csv.Error as exc:
        raise InteractionsError(f"{path}: not a valid CSV file ({exc})") from None
    return [h.strip().lower() for h in header], reader


def _is_track_map(path: Path) -> bool:
    try:
        header, _ = csv_rows(path)
    except InteractionsError:
        return False
    return "track_uri" in header and "path" in header


def read_track_map(paths: Iterable[Path]) -> dict[str, Path]:
    """``track_uri -> absolute path`` from CSVs of ``track_uri,path`` (paths relative to each CSV's folder)."""
    mapping: dict[str, Path] = {}
    for path in paths:
        header, rows = csv_rows(path)
        if "track_uri" not in header or "path" not in header:
            raise InteractionsError(f"{path}: a track map needs the columns track_uri,path "
                                    f"(found: {','.join(header) or 'none'})")
        iu, ip = header.index("track_uri"), header.index("path")
        try:
            for line, row in enumerate(rows, 2):
                if not row or not any(c.strip() for c in row):
                    continue
                if len(row) <= max(iu, ip):
                    raise InteractionsError(f"{path}, line {line}: expected {len(header)} columns, got {len(row)}")
                uri, target = row[iu].strip(), row[ip].strip()
                if uri and target:
                    p = Path(os.path.expanduser(target))
                    mapping.setdefault(uri, p if p.is_absolute() else path.parent / p)
        except csv.Error as exc:
            raise InteractionsError(f"{path}: not a valid CSV file ({exc})") from None
    return mapping


def read_mpd(lib: Any, slices: list[Path], track_map: list[Path], source: Path | None = None) -> Interactions:
    """Million Playlist Dataset JSON ``slices``, mapped to local files by the ``track_uri,path`` CSVs."""
    if not track_map:
        where = slices[0].parent if slices else source
        raise InteractionsError(f"{source or where}: MPD playlists name Spotify URIs; a CSV of track_uri,path "
                                f"saying which local file each URI is must be given (track_map) or lie in {where}")
    uri_paths = read_track_map(track_map)
    resolver = TrackResolver(lib)
    cache: dict[str, tuple[int | None, str]] = {}
    builder = _Builder(source or slices[0], "mpd")
    for path in slices:
        try:
            data = json.loads(_read_text(path))
        except OSError as exc:
            raise InteractionsError(f"{path}: cannot read ({exc.strerror or exc})") from None
        except json.JSONDecodeError as exc:
            raise InteractionsError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
        playlists = data.get("playlists") if isinstance(data, dict) else None
        if not isinstance(playlists, list):
            raise InteractionsError(f"{path}: not a Million Playlist Dataset slice (no \"playlists\" list)")
        for n, pl in enumerate(playlists):
            if not isinstance(pl, dict) or not isinstance(pl.get("tracks", []), list):
                raise InteractionsError(f"{path}: playlist #{n} is not an object with a \"tracks\" list")
            name = f"mpd:{pl.get('pid', f'{path.name}#{n}')}"
            if not builder.new_list(name):
                continue
            for item in pl.get("tracks", []):
                uri = str(item.get("track_uri", "")) if isinstance(item, dict) else ""
                if uri not in cache:
                    target = uri_paths.get(uri)
                    if not uri:
                        cache[uri] = (None, "entry without track_uri")
                    elif target is None:
                        cache[uri] = (None, "track_uri not in the track map")
                    else:
                        cache[uri] = resolver.path(target)
                tid, reason = cache[uri]
                label = uri
                if tid is None and isinstance(item, dict) and item.get("track_name"):
                    label = f"{item.get('artist_name', '')} - {item.get('track_name')} ({uri})"
                builder.add(name, tid, reason, label)
    return builder.build()


def read_m3u(lib: Any, playlists: list[Path], source: Path | None = None) -> Interactions:
    """M3U/M3U8 playlist files, one list each (named by the path relative to ``source``)."""
    resolver = TrackResolver(lib)
    base = source if source is not None and source.is_dir() else None
    builder = _Builder(source or playlists[0], "m3u")
    for path in playlists:
        try:
            text = _read_text(path)
        except OSError as exc:
            raise InteractionsError(f"{path}: cannot read ({exc.strerror or exc})") from None
        name = str(path.relative_to(base)) if base is not None else path.name
        builder.new_list(name)
        for line in text.splitlines():
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            tid, reason = _resolve_path_entry(resolver, entry, path.parent)
            builder.add(name, tid, reason, entry)
    return builder.build()


def read_list_csv(lib: Any, path: Path) -> Interactions:
    """A CSV of ``list,track`` rows; ``track`` is a path (relative to the CSV's folder) or a catalogue track id."""
    header, rows = csv_rows(path)
    if "list" not in header or "track" not in header:
        raise InteractionsError(f"{path}: expected a header with the columns list,track "
                                f"(found: {','.join(header) or 'none'})")
    il, it = header.index("list"), header.index("track")
    resolver = TrackResolver(lib)
    builder = _Builder(path, "csv")
    try:
        for line, row in enumerate(rows, 2):
            if not row or not any(c.strip() for c in row):
                continue
            if len(row) <= max(il, it):
                raise InteractionsError(f"{path}, line {line}: expected {len(header)} columns, got {len(row)}")
            name, value = row[il].strip(), row[it].strip()
            if not name or not value:
                builder.add(name or "?", None, "empty list or track cell", f"line {line}")
                continue
            tid, reason = _resolve_path_entry(resolver, value, path.parent)
            if tid is None and value.isdigit():
                tid, reason = resolver.track_id(value)
            builder.add(name, tid, reason, value)
    except csv.Error as exc:
        raise InteractionsError(f"{path}: not a valid CSV file ({exc})") from None
    return builder.build()


def load_interactions(lib: Any, source: str | os.PathLike[str], *,
                      track_map: str | os.PathLike[str] | None = None, require_tracks: bool = True) -> Interactions:
    """Read listening data from ``source`` (format detected, see the module docstring) over ``lib``'s tracks.

    Raises :class:`InteractionsError` naming the file and the reason for unreadable or malformed data, and (with
    ``require_tracks``) when no entry is a catalogue track.
    """
    src = Path(os.path.expanduser(os.fspath(source)))
    if not src.exists():
        raise InteractionsError(f"{src}: no such file or folder (listening data: MPD JSON slices, a folder of "
                                "M3U playlists, or a CSV of list,track rows)")
    maps = [Path(os.path.expanduser(os.fspath(track_map)))] if track_map is not None else []
    for m in maps:
        if not m.is_file():
            raise InteractionsError(f"{m}: no such track map file (a CSV of track_uri,path)")
    if src.is_dir():
        m3us = sorted(p for p in src.rglob("*") if p.suffix.lower() in M3U_SUFFIXES and p.is_file())
        slices = sorted(p for p in src.rglob("*.json") if p.is_file())
        if m3us:
            result = read_m3u(lib, m3us, src)
        elif slices:
            maps = maps or sorted(p for p in src.rglob("*.csv") if _is_track_map(p))
            result = read_mpd(lib, slices, maps, src)
        else:
            raise InteractionsError(f"{src}: no playlists found (expected .m3u/.m3u8 files or MPD .json slices)")
    else:
        suffix = src.suffix.lower()
        if suffix == ".json":
            maps = maps or sorted(p for p in src.parent.glob("*.csv") if _is_track_map(p))
            result = read_mpd(lib, [src], maps, src)
        elif suffix in M3U_SUFFIXES:
            result = read_m3u(lib, [src], src)
        elif suffix in (".csv", ".tsv", ".txt"):
            if _is_track_map(src):
                raise InteractionsError(f"{src}: this is a track_uri,path map; pass the MPD JSON slices (file or "
                                        "folder) and keep the map beside them")
            result = read_list_csv(lib, src)
        else:
            raise InteractionsError(f"{src}: unrecognised listening data (expected .json MPD slices, .m3u/.m3u8 "
                                    "playlists or a .csv of list,track rows)")
    if require_tracks and not len(result.track_ids):
        raise InteractionsError(f"{src}: names no catalogue track ({result.report()}); index the music the "
                                "playlists refer to first")
    return result


# --- collaborative filtering ----------------------------------------------------------------------------------
def als_item_factors(data: Interactions, factors: int, *, regularization: float = 0.01, iterations: int = 15,
                     alpha: float = 1.0, seed: int = 0, num_threads: int = 0) -> np.ndarray:
    """Item (track) latent factors ``(n_tracks, factors)`` float32 from ``implicit``'s ALS, deterministic.

    Rows follow ``data.track_ids``. Playlists play the users' part of Hu et al.'s implicit-feedback model.
    ``num_threads`` 0 = all cores; each row is solved on its own, so the result does not depend on it.
    """
    try:
        from implicit.cpu.als import AlternatingLeastSquares
    except ImportError:  # pragma: no cover - depends on the environment
        raise InteractionsError("collaborative filtering needs the 'implicit' package: pip install implicit") from None
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):  # implicit warns (and slows down) with multithreaded BLAS
        model = AlternatingLeastSquares(factors=factors, regularization=regularization, alpha=alpha,
                                        iterations=iterations, random_state=seed, num_threads=num_threads)
        model.fit(data.matrix.tocsr().astype(np.float32), show_progress=False)
    item = np.asarray(model.item_factors, dtype=np.float32)
    return item[:, :factors]
