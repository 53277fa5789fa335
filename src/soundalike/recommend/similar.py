""""More like this": the tracks nearest a query, by pooled cosine or re-ranked by a sequence distance."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from soundalike.library.catalog import Library
from soundalike.models.pretrained import DEFAULT_NAME
from soundalike.search.index import VectorIndex

from .queries import IndexLoader, Query, QueryError, load_index, query_sequence, resolve_one
from .selection import Filters, Recommendation, Selector

DISTANCES = ("cosine", "mean", "minpoint", "frechet", "dtw")
"""``cosine`` between pooled vectors, or a sequence distance of seed 002 §3.3.1 (and DTW, §4.2) used to re-rank."""


def similar(lib: Library, query: str | Query, k: int = 10, *, model: str = DEFAULT_NAME,
            index: VectorIndex | None = None, indexes: IndexLoader | None = None, filters: Filters | None = None,
            distance: str = "cosine", candidates: int = 200, exclude: Iterable[int] = ()
            ) -> tuple[Query, list[Recommendation]]:
    """The ``k`` tracks that sound most like ``query``, best first, without the query or its duplicates.

    The query is searched in ``index`` if given, else in ``model``'s index (from ``indexes``, by default loaded
    from the library). With a sequence ``distance`` the ``candidates`` nearest tracks by pooled cosine are
    re-ranked by that distance between segment sequences in the same search space (the score is then
    1 - distance, with cosine distance between segments); candidates without stored segments are left out and
    :attr:`Query.notes` says how many. Track ids in ``exclude`` are never answered (a player's queue, say)."""
    if distance not in DISTANCES:
        raise QueryError(f"unknown distance {distance!r}; choose one of {', '.join(DISTANCES)}")
    if isinstance(query, Query):
        q = query
        index = index if index is not None else indexes(model) if indexes else load_index(lib, model)
    else:
        index, q = resolve_one(lib, query, model, index, indexes)
    seeds = [q.track] if q.track is not None else []
    selector = Selector(lib, index, seeds, q.vector, filters or Filters(), q.exclude | set(exclude))
    if distance != "cosine":
        from soundalike.search.distances import sequence_distances

        query_seq = query_sequence(lib, index, q)
        pool_ids, _ = index.search(q.vector, max(candidates, k), exclude=selector.exclude)
        kept, seqs = index.sequences(lib, pool_ids.tolist())
        if len(kept) < len(pool_ids):
            q.notes.append(f"{len(pool_ids) - len(kept)} of {len(pool_ids)} candidates have no stored segment "
                           "sequence and were left out (run `soundalike index` on their folders)")
        dist = sequence_distances(query_seq, seqs, distance) if seqs else np.zeros(0)
        order = np.argsort(dist, kind="stable")
        selector.take([kept[i] for i in order], [1.0 - float(dist[i]) for i in order], k)
        by_id = {kept[i]: float(dist[i]) for i in order}
        for r in selector.kept:
            r.distance = by_id.get(r.track.id)
        return q, selector.kept
    fetch = k + 8
    while True:
        ids, scores = index.search(q.vector, fetch, exclude=selector.exclude, lib=lib)  # exact re-rank if compact
        selector.take(ids, scores, k)
        if len(selector.kept) >= k or len(ids) < fetch:
            return q, selector.kept
        fetch *= 4  # the filters refused many candidates: look further down the ranking

