""""Continue this playlist": the library tracks that best continue a playlist, by seed 000's score functions."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from soundalike.library.catalog import Library
from soundalike.models.pretrained import DEFAULT_NAME
from soundalike.search.index import RERANK, RERANK_TOP, VectorIndex
from soundalike.search.vectors import unit_rows

from .playlists import Entry, read_playlist
from .queries import IndexLoader, Query, QueryError, resolve_all
from .scoring import ScoreError, ScoreMethod, score_method
from .selection import Filters, Recommendation, Selector

#: Candidates an approximate (IVF) index proposes per search when a playlist is continued, beside ``4 k + 32``: the
#: score is then computed for these only, not for every track of a million-track library. A track among the ``k``
#: best by ``max`` is among the ``k + p`` nearest of its nearest playlist track (p: the playlist's length), so a few
#: dozen per playlist track suffice; more are fetched when the filters refuse many.
CANDIDATES = 32
#: Playlist tracks (evenly spread) whose neighbours are proposed, beside the playlist's mean.
MAX_SEED_SEARCHES = 32
#: The proposal stops growing here (a filter that refuses nearly everything gets fewer than k results).
MAX_CANDIDATES = 20_000
#: The playlist's tracks are searched with the index's ``nprobe`` divided by this (at least one cell: their own);
#: the playlist's mean with the full ``nprobe``. A query's cost is the cells it scans, and a playlist's tracks lie
#: in the few cells around its mean (one album: often the same cell for all).
SEED_NPROBE_DIVISOR = 4


def candidates(index: VectorIndex, seeds: np.ndarray, fetch: int) -> np.ndarray:
    """Sorted track ids an index proposes for a playlist: the ``fetch`` nearest of the playlist's mean direction
    (which ranks ``mean`` scores exactly) and of its tracks (at most :data:`MAX_SEED_SEARCHES`, evenly spread),
    searched with fewer cells (:data:`SEED_NPROBE_DIVISOR`) and once per IVF cell they fall in (the mean direction
    of the tracks that share a cell: one search for an album whose tracks lie together)."""
    pick = seeds if len(seeds) <= MAX_SEED_SEARCHES else \
        seeds[np.linspace(0, len(seeds) - 1, MAX_SEED_SEARCHES).astype(np.int64)]
    want = min(fetch, len(index))
    nprobe = index.ann.params.nprobe or 1
    mean, _ = index.ann.search(unit_rows(seeds.mean(axis=0))[None, :], want)
    cells = index.ann.cells(pick)
    groups = np.vstack([unit_rows(pick[cells == c].mean(axis=0)) for c in np.unique(cells)])
    near, _ = index.ann.search(groups, want, nprobe=max(1, nprobe // SEED_NPROBE_DIVISOR))
    found = np.concatenate([mean.ravel(), near.ravel()])
    return np.unique(found[found >= 0])


def exact_head(lib: Library, index: VectorIndex, seeds: np.ndarray, method: ScoreMethod, ids: np.ndarray,
               scores: np.ndarray, head: int) -> tuple[np.ndarray, np.ndarray]:
    """Ranked candidates of a compact index with the first ``head`` re-scored from the stored float vectors and
    ranked by those scores (as a search re-ranks for ``similar``); the rest keep their decoded scores, after them."""
    cand, vectors = index.exact_vectors(lib, ids[:head])
    exact = method(seeds, vectors) if len(cand) else np.zeros(0, np.float32)
    order = np.argsort(-exact, kind="stable")
    return np.concatenate([cand[order], ids[head:]]), np.concatenate([exact[order], scores[head:]])


@dataclass
class PlaylistQuery:
    """A playlist resolved against the library: its tracks' queries and the entries that could not be used."""

    source: str
    queries: list[Query]
    skipped: list[str] = field(default_factory=list)  # "entry: reason" lines

    @property
    def model(self) -> str:
        """The key of the index the playlist was resolved in."""
        return self.queries[0].model

    @property
    def notes(self) -> list[str]:
        """What the answer should say (fallbacks), once each."""
        return list(dict.fromkeys(note for q in self.queries for note in q.notes))

    def to_dict(self) -> dict[str, object]:
        """JSON-ready description."""
        return {"playlist": self.source, "tracks": [q.to_dict() for q in self.queries], "skipped": self.skipped}


def resolve_playlist(lib: Library, entries: Sequence[object], source: str = "", *, model: str = DEFAULT_NAME,
                     index: VectorIndex | None = None, indexes: IndexLoader | None = None
                     ) -> tuple[VectorIndex, PlaylistQuery]:
    """Resolve playlist entries (:class:`~soundalike.recommend.playlists.Entry`, ids or texts) in one index, as
    :func:`~soundalike.recommend.queries.resolve_all` chooses it; outside audio files are analysed on the fly.
    Entries that name nothing usable are listed in ``skipped`` with the reason."""
    given = [entry if isinstance(entry, Entry) else Entry(str(entry)) for entry in entries]
    texts = [str(e.track_id) if e.track_id is not None else (e.path or e.text) for e in given]
    chosen, results = resolve_all(lib, texts, model, index, indexes)
    queries: list[Query] = []
    skipped: list[str] = []
    seen: set[int] = set()
    for e, q in zip(given, results, strict=True):
        if isinstance(q, QueryError):
            skipped.append(f"{e.text}: {q}")
            continue
        if q.track is not None:
            if q.track.id in seen:
                skipped.append(f"{e.text}: listed twice (kept once)")
                continue
            seen.add(q.track.id)
        queries.append(q)
    if not queries:
        reasons = "; ".join(skipped[:3]) or "it is empty"
        raise QueryError(f"{source or 'the playlist'}: no usable track ({reasons})")
    return chosen, PlaylistQuery(source, queries, skipped)


def continue_playlist(lib: Library, playlist: str | os.PathLike[str] | Sequence[object], k: int = 10, *,
                      score: str = "max", model: str = DEFAULT_NAME, index: VectorIndex | None = None,
                      indexes: IndexLoader | None = None, filters: Filters | None = None,
                      exclude: Iterable[int] = ()) -> tuple[PlaylistQuery, list[Recommendation]]:
    """The ``k`` library tracks that best continue ``playlist`` (a playlist file, or a list of entries) by seed
    000's score functions (eq. 1: ``max``, ``mean``, ``topk``; §5.4: ``cluster``), without the playlist's tracks
    nor the track ids in ``exclude`` (what a player played lately, say)."""
    try:
        method = score_method(score)
    except ScoreError as exc:
        raise QueryError(str(exc)) from None
    if isinstance(playlist, str | os.PathLike):
        source = str(playlist)
        try:
            entries: Sequence[object] = read_playlist(playlist)
        except ValueError as exc:
            raise QueryError(str(exc)) from None
    else:
        source, entries = "playlist", playlist
    index, pq = resolve_playlist(lib, entries, source, model=model, index=index, indexes=indexes)
    seeds = np.vstack([q.vector for q in pq.queries])
    excluded: set[int] = set(exclude).union(*(q.exclude for q in pq.queries))
    tracks = [q.track for q in pq.queries if q.track is not None]
    selector = Selector(lib, index, tracks, seeds, filters or Filters(), excluded)
    if index.ann.kind == "ivf":  # approximate search: score the candidates it proposes, not every track
        fetch = max(CANDIDATES, 4 * k + 32) + len(seeds)
        while True:
            ids = candidates(index, seeds, fetch)
            ids = ids[~np.isin(ids, list(selector.exclude))]
            found = method(seeds, index.vectors_of(ids))
            ranked = np.argsort(-found, kind="stable")
            ids, found = ids[ranked], found[ranked]
            if index.compact:  # decoded codes ranked them: the best re-scored from the stored floats
                ids, found = exact_head(lib, index, seeds, method, ids, found, max(k, RERANK * min(k, RERANK_TOP)))
            selector.take(ids, found, k)
            if len(selector.kept) >= k or fetch >= min(len(index), MAX_CANDIDATES):
                return pq, selector.kept
            fetch *= 4
    scores = method(seeds, index.vectors)
    order = np.argsort(-scores, kind="stable")
    for start in range(0, len(order), 4 * k + 32):  # in slices: the filters may refuse many
        chunk = order[start:start + 4 * k + 32]
        selector.take(index.ids[chunk], scores[chunk], k)
        if len(selector.kept) >= k:
            break
    return pq, selector.kept
