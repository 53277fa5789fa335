"""Evaluation playlists as lists of catalogue track ids, filtered by length, and split into seed and held-out parts.

Sources (registry :data:`PLAYLIST_SOURCES` for the derived ones; anything else is a path):

* ``album`` / ``artist`` — derived from the catalogue's tags: every album (artist) with at least ``min_length``
  tracks becomes a playlist, its tracks in path order (file names usually start with the track number). Albums are
  grouped by the album tag alone (untagged files already carry their folder's name, see ``analysis.py``); tracks
  without an artist tag are left out of artist playlists.
* a path — Million Playlist Dataset JSON slices (with a ``track_uri,path`` CSV), a folder of M3U/M3U8 files, or a
  ``list,track`` CSV, read by :func:`soundalike.interactions.load_interactions`, which resolves entries to catalogue
  tracks and counts the lost ones by reason (missing file, file not in the catalogue, unknown track id, URL...).
  Duplicates within a playlist count once. That reader keeps each playlist's *membership*, not its order, so these
  playlists list their tracks by catalogue id (``PlaylistSet.ordered`` is False).

Playlists with fewer than ``min_length`` (default 10, seed 000 §5.1) resolvable tracks are dropped and reported;
the rest are evaluated.

Split (:func:`split_playlist`): seed 000 does not say how it hides part of each playlist, so the choice here is to
hold out ``floor(holdout_fraction * length)`` tracks (default half, at least 1, and at least one seed track):

* ``random`` (default) — a random subset, seeded per playlist by ``(seed, crc32(name))``, so a playlist's split does
  not depend on which other playlists are evaluated. It means the same for every source, including those whose
  order is not kept;
* ``ordered`` — the first tracks are the seed and the last ones held out (RecSys Challenge 2018 style); meaningful
  for sources that keep the playlist order (``ordered`` is True).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .interactions import Interactions, InteractionsError, load_interactions

DEFAULT_MIN_LENGTH = 10
"""Seed 000 §5.1 keeps MPD playlists of at least 10 tracks."""
DEFAULT_HOLDOUT_FRACTION = 0.5
SPLIT_MODES = ("random", "ordered")
SplitMode = Literal["random", "ordered"]
MAX_NAMES = 5

TOO_SHORT = "too short"


class EvaluationError(ValueError):
    """Evaluation that cannot run: no usable playlists, an empty library or embedding, bad parameters."""


@dataclass(frozen=True)
class EvalPlaylist:
    """One evaluation playlist: a name and distinct catalogue track ids."""

    name: str
    tracks: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.tracks)


@dataclass(frozen=True)
class DroppedPlaylist:
    """A playlist left out of the evaluation, with its usable length and the reason."""

    name: str
    tracks: int
    reason: str

    def to_dict(self) -> dict[str, object]:
        """JSON-ready fields."""
        return {"name": self.name, "tracks": self.tracks, "reason": self.reason}


@dataclass
class PlaylistSet:
    """Evaluation playlists from one source, with what was dropped or lost on the way and why."""

    playlists: list[EvalPlaylist]
    source: str
    kind: str  # "album", "artist", "mpd", "m3u" or "csv"
    min_length: int
    ordered: bool  # tracks are in the source's playlist order
    dropped: list[DroppedPlaylist] = field(default_factory=list)
    lost_entries: dict[str, int] = field(default_factory=dict)  # reason -> playlist entries that are no track
    notes: list[str] = field(default_factory=list)  # one line each: what was read, lost, skipped

    def __len__(self) -> int:
        return len(self.playlists)

    def __iter__(self) -> Iterator[EvalPlaylist]:
        return iter(self.playlists)

    def dropped_by_reason(self) -> dict[str, int]:
        """Number of dropped playlists per reason."""
        out: dict[str, int] = {}
        for d in self.dropped:
            out[d.reason] = out.get(d.reason, 0) + 1
        return out

    def restrict(self, track_ids: Iterable[int], *, why: str, min_length: int | None = None) -> PlaylistSet:
        """A copy with only the tracks in ``track_ids``; playlists now under ``min_length`` are dropped (``why``)."""
        keep = {int(t) for t in track_ids}
        limit = self.min_length if min_length is None else min_length
        kept: list[EvalPlaylist] = []
        dropped = list(self.dropped)
        removed = repeated = 0
        for pl in self.playlists:
            unique = tuple(dict.fromkeys(pl.tracks))  # given playlists may repeat a track: count it once
            repeated += len(pl.tracks) - len(unique)
            tracks = tuple(t for t in unique if t in keep)
            removed += len(unique) - len(tracks)
            if len(tracks) >= limit:
                kept.append(EvalPlaylist(pl.name, tracks))
            else:
                dropped.append(DroppedPlaylist(pl.name, len(tracks), f"fewer than {limit} tracks {why}"))
        notes = list(self.notes)
        if repeated:
            notes.append(f"{repeated} repeated playlist entries counted once")
        if removed:
            notes.append(f"{removed} playlist entries left out, keeping only tracks {why}")
        return PlaylistSet(kept, self.source, self.kind, limit, self.ordered, dropped, dict(self.lost_entries), notes)

    def report(self) -> str:
        """Human-readable lines: playlists kept, entries lost by reason, playlists dropped by reason (with names)."""
        lines = [f"{self.source}: {len(self.playlists)} {self.kind} playlists of >= {self.min_length} tracks "
                 f"kept, {len(self.dropped)} dropped"]
        lines += self.notes
        by_reason: dict[str, list[DroppedPlaylist]] = {}
        for d in self.dropped:
            by_reason.setdefault(d.reason, []).append(d)
        for reason, items in by_reason.items():
            names = ", ".join(f"{d.name!r} ({d.tracks})" for d in items[:MAX_NAMES])
            more = f" and {len(items) - MAX_NAMES} more" if len(items) > MAX_NAMES else ""
            lines.append(f"dropped {len(items)} playlists, {reason}: {names}{more}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no track lists)."""
        return {"source": self.source, "kind": self.kind, "min_length": self.min_length, "ordered": self.ordered,
                "playlists": len(self.playlists), "tracks": sum(len(p) for p in self.playlists),
                "dropped": self.dropped_by_reason(), "dropped_playlists": [d.to_dict() for d in self.dropped],
                "lost_entries": dict(self.lost_entries), "notes": list(self.notes)}


def _check_min_length(min_length: int) -> None:
    if min_length < 2:
        raise EvaluationError(f"min_length must be >= 2 (a seed part and a held-out part), got {min_length}")


def _filter(candidates: Sequence[EvalPlaylist], min_length: int) -> tuple[list[EvalPlaylist], list[DroppedPlaylist]]:
    kept = [p for p in candidates if len(p) >= min_length]
    dropped = [DroppedPlaylist(p.name, len(p), f"{TOO_SHORT} (fewer than {min_length} catalogue tracks)")
               for p in candidates if len(p) < min_length]
    return kept, dropped


def _require(result: PlaylistSet, require: bool) -> PlaylistSet:
    if require and not result.playlists:
        raise EvaluationError(f"no evaluation playlist has at least {result.min_length} usable tracks\n"
                              f"{result.report()}")
    return result


def tag_playlists(lib: Any, by: str = "album", *, min_length: int = DEFAULT_MIN_LENGTH,
                  require: bool = True) -> PlaylistSet:
    """Playlists derived from tags: each album (``by="album"``) or artist with >= ``min_length`` tracks, path order."""
    if by not in PLAYLIST_SOURCES:
        raise EvaluationError(f"unknown tag for derived playlists {by!r}; choose from {', '.join(PLAYLIST_SOURCES)}")
    _check_min_length(min_length)
    tracks = lib.tracks()
    if not tracks:
        raise EvaluationError(f"the library at {lib.root} has no tracks; index music first (soundalike index PATH)")
    groups: dict[str, list[tuple[str, int]]] = {}
    untagged = 0
    for t in tracks:
        key = (t.album if by == "album" else t.artist).strip()
        if not key:
            untagged += 1
            continue
        groups.setdefault(key, []).append((t.path, t.id))
    candidates = [EvalPlaylist(f"{by}:{name}", tuple(tid for _, tid in sorted(members)))
                  for name, members in sorted(groups.items())]
    kept, dropped = _filter(candidates, min_length)
    notes = [f"{len(tracks)} catalogue tracks in {len(groups)} {by}s"]
    if untagged:
        notes.append(f"{untagged} tracks without an {by} tag: left out")
    return _require(PlaylistSet(kept, by, by, min_length, True, dropped, {}, notes), require)


def interaction_playlists(data: Interactions, *, min_length: int = DEFAULT_MIN_LENGTH,
                          require: bool = True) -> PlaylistSet:
    """Playlists from listening data already read by :func:`soundalike.interactions.load_interactions`."""
    _check_min_length(min_length)
    matrix = data.matrix.tocsr()
    candidates = []
    for row, name in enumerate(data.lists):
        cols = matrix.indices[matrix.indptr[row]:matrix.indptr[row + 1]]
        candidates.append(EvalPlaylist(name, tuple(sorted(int(t) for t in data.track_ids[cols]))))
    kept, dropped = _filter(candidates, min_length)
    notes = [data.report()]
    if data.empty_lists:
        notes.append(f"{data.empty_lists} playlists name no catalogue track at all: left out")
    return _require(PlaylistSet(kept, data.source, data.format, min_length, False, dropped, dict(data.unknown), notes),
                    require)


PLAYLIST_SOURCES: dict[str, Callable[..., PlaylistSet]] = {
    "album": lambda lib, **kw: tag_playlists(lib, "album", **kw),
    "artist": lambda lib, **kw: tag_playlists(lib, "artist", **kw),
}
"""Playlists derived from the catalogue itself, by name."""


def load_playlists(lib: Any, source: str | os.PathLike[str], *, track_map: str | os.PathLike[str] | None = None,
                   min_length: int = DEFAULT_MIN_LENGTH, require: bool = True) -> PlaylistSet:
    """Evaluation playlists from ``source``: ``album``/``artist`` (derived from tags) or a path of listening data.

    Raises :class:`EvaluationError` for unreadable data and (with ``require``) when no playlist is long enough.
    """
    _check_min_length(min_length)
    name = os.fspath(source)
    if isinstance(name, str) and name.strip().lower() in PLAYLIST_SOURCES:
        return PLAYLIST_SOURCES[name.strip().lower()](lib, min_length=min_length, require=require)
    if not lib.conn.execute("SELECT COUNT(*) FROM tracks").fetchone()[0]:
        raise EvaluationError(f"the library at {lib.root} has no tracks; index music first (soundalike index PATH)")
    try:
        data = load_interactions(lib, source, track_map=track_map, require_tracks=False)
    except InteractionsError as exc:
        raise EvaluationError(str(exc)) from exc
    return interaction_playlists(data, min_length=min_length, require=require)


# --- split -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SplitPlaylist:
    """A playlist split into the seed part (given to the recommender) and the held-out part (to be found)."""

    name: str
    seed: tuple[int, ...]
    heldout: tuple[int, ...]


def holdout_size(length: int, fraction: float = DEFAULT_HOLDOUT_FRACTION) -> int:
    """Tracks held out of a playlist of ``length``: ``floor(fraction * length)``, within ``[1, length - 1]``."""
    if not 0.0 < fraction < 1.0:
        raise EvaluationError(f"holdout_fraction must be between 0 and 1 (exclusive), got {fraction}")
    if length < 2:
        raise EvaluationError(f"a playlist needs >= 2 tracks to split, got {length}")
    return int(min(max(int(np.floor(fraction * length + 1e-9)), 1), length - 1))


def split_playlist(playlist: EvalPlaylist, *, holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
                   mode: SplitMode = "random", seed: int = 0) -> SplitPlaylist:
    """Seed and held-out parts of a playlist (``random``: seeded by ``seed`` and its name; ``ordered``: tail out)."""
    n = len(playlist.tracks)
    h = holdout_size(n, holdout_fraction)
    if mode == "ordered":
        return SplitPlaylist(playlist.name, playlist.tracks[: n - h], playlist.tracks[n - h:])
    if mode != "random":
        raise EvaluationError(f"unknown split mode {mode!r}; choose from {', '.join(SPLIT_MODES)}")
    rng = np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(playlist.name.encode("utf-8", "replace"))])
    out = np.zeros(n, dtype=bool)
    out[rng.choice(n, size=h, replace=False)] = True
    seed_part = tuple(t for t, o in zip(playlist.tracks, out, strict=True) if not o)
    held = tuple(t for t, o in zip(playlist.tracks, out, strict=True) if o)
    return SplitPlaylist(playlist.name, seed_part, held)


def split_playlists(playlists: Iterable[EvalPlaylist], *, holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
                    mode: SplitMode = "random", seed: int = 0) -> list[SplitPlaylist]:
    """:func:`split_playlist` for every playlist."""
    return [split_playlist(p, holdout_fraction=holdout_fraction, mode=mode, seed=seed) for p in playlists]
