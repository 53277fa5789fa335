""""A path from A to B": a smooth sequence of distinct tracks along the great circle between two tracks."""

from __future__ import annotations

import numpy as np

from soundalike.library.catalog import Library
from soundalike.models.pretrained import DEFAULT_NAME
from soundalike.search.index import VectorIndex
from soundalike.search.vectors import unit_rows

from .queries import IndexLoader, Query, QueryError, resolve_all
from .selection import Filters, Recommendation, Selector

#: Candidates per waypoint (beside the tracks already excluded): searched for every waypoint in one batch; a waypoint
#: whose candidates are all used or refused searches further on its own.
WAYPOINT_CANDIDATES = 32


def _slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """The unit vector a fraction ``t`` of the way from ``a`` to ``b`` along the great circle."""
    omega = float(np.arccos(np.clip(a @ b, -1.0, 1.0)))
    v = a if omega < 1e-6 else (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    return unit_rows(v)


def path_between(lib: Library, start: str, end: str, n: int = 10, *, model: str = DEFAULT_NAME,
                 index: VectorIndex | None = None, indexes: IndexLoader | None = None,
                 filters: Filters | None = None) -> tuple[Query, Query, list[Recommendation]]:
    """A smooth sequence of ``n`` distinct tracks from ``start`` to ``end`` (both included): waypoints evenly
    spaced on the great circle between their vectors, each filled by the nearest unused track."""
    if n < 2:
        raise QueryError("a path has at least 2 tracks (the start and the end)")
    index, ends = resolve_all(lib, [start, end], model, index, indexes)
    for q in ends:
        if isinstance(q, QueryError):
            raise q
    a, b = ends
    assert isinstance(a, Query) and isinstance(b, Query)
    if a.track is None or b.track is None:
        raise QueryError("a path runs between library tracks: index the file first, or give a track id")
    if a.track.id == b.track.id:
        raise QueryError(f"the start and the end are the same track ({a.track.label})")
    selector = Selector(lib, index, [a.track, b.track], np.vstack([a.vector, b.vector]), filters or Filters(),
                        a.exclude | b.exclude)
    targets = np.vstack([_slerp(a.vector, b.vector, i / (n - 1)) for i in range(1, n - 1)]) if n > 2 else \
        np.zeros((0, len(a.vector)), np.float32)
    ids, scores = index.search_batch(targets, WAYPOINT_CANDIDATES + len(selector.exclude) + n, lib=lib)
    for target, cand, score in zip(targets, ids, scores, strict=True):
        before = len(selector.kept)
        selector.take(cand, score, before + 1)
        fetch = 4 * WAYPOINT_CANDIDATES
        while len(selector.kept) == before:  # every candidate used or refused: search this waypoint further
            found, exact = index.search(target, fetch, exclude=selector.exclude, lib=lib)
            selector.take(found, exact, before + 1)
            if len(found) < fetch:
                break
            fetch *= 4
        if len(selector.kept) == before:
            break  # the library has no more allowed tracks
    first = Recommendation(a.track, 1.0)
    last = Recommendation(b.track, float(a.vector @ b.vector))
    return a, b, [first, *selector.kept, last]
