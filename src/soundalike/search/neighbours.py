"""Search vectors smoothed over the library's neighbourhood: database-side augmentation (DBA).

Each track's search vector is replaced by the weighted mean of the vectors of its K nearest tracks, itself
included (weight 1), the others weighted by ``max(cos, 0) ** ALPHA``, and made unit length again; an outside query
is expanded the same way against the library (α-weighted query expansion), so a library track's query is its
smoothed vector. Tracks of one album sit close together: a track's nearest tracks pull it towards its album's
other tracks, and what it shares with them counts more than what it has alone. The method: Arandjelović &
Zisserman, "Three things everyone should know to improve object retrieval" (CVPR 2012, §4: DBA); the weights:
Radenović, Tolias & Chum, "Fine-tuning CNN image retrieval with no human annotation" (TPAMI 2018, §5.2: αQE with
α = 3). On same-album retrieval it was chosen on validation albums only (docs/models.md, "Neighbourhood
smoothing").

The neighbour graph (each track's K − 1 nearest other tracks and their cosines, in the unsmoothed space) costs
n² · dim to compute exactly: it is kept in a file beside the index and brought up to date when tracks come and go
(:func:`updated_graph`: an added track is compared with every track, a removed one makes only the tracks that had
it as a neighbour look again; a track whose vector changed under the same id counts as both), the same graph as
computing it afresh. Written here because what is needed — an
exact, incrementally updated k-nearest-neighbour graph whose rows are mean-pooled — is a few matrix products;
faiss's graph indexes (HNSW, NSG) approximate and cannot drop a node.
"""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .ann import write_atomically
from .vectors import unit_rows

log = logging.getLogger(__name__)

#: The exponent of the neighbours' weights ``max(cos, 0) ** ALPHA`` (Radenović et al. 2018: α = 3).
ALPHA = 3.0
#: Rows compared with the whole library at a time: a BLOCK × n block of cosines and its temporaries (their sort
#: order in int64), about 80 MB at 20,000 tracks.
BLOCK = 256
FORMAT = 2
#: Seed of the fixed direction a track's vector is projected on to sign its graph row (:func:`signatures`).
SIGNATURE_SEED = 20121206


@dataclass
class NeighbourGraph:
    """Each track's ``others`` nearest other tracks: ``ids`` (sorted), ``neighbours`` (n, others: track ids, -1 where
    the library has fewer tracks) and their cosines ``scores`` (n, others), best first (equal cosines: the smaller
    track id first); ``stats`` names the search-space statistics the cosines were measured in."""

    ids: np.ndarray
    neighbours: np.ndarray
    scores: np.ndarray
    stats: str
    signature: np.ndarray  # of each track's vector (:func:`signatures`): a reused track id is seen as a new track

    @property
    def others(self) -> int:
        """Neighbours kept a track (K − 1)."""
        return int(self.neighbours.shape[1])

    def save(self, path: Path) -> None:
        """Write the graph atomically (a ``.npz`` file)."""
        buffer = io.BytesIO()
        np.savez(buffer, format=np.int64(FORMAT), ids=self.ids, neighbours=self.neighbours, scores=self.scores,
                 stats=np.array(self.stats), signature=self.signature)
        data = buffer.getvalue()
        write_atomically(path, lambda f: f.write(data))

    @classmethod
    def load(cls, path: Path, stats: str, others: int) -> NeighbourGraph | None:
        """The graph saved at ``path`` if it was measured with ``stats`` and keeps ``others`` neighbours, else None."""
        try:
            with np.load(path, allow_pickle=False) as f:
                if int(f["format"]) != FORMAT or str(f["stats"]) != stats:
                    return None
                graph = cls(f["ids"].astype(np.int64), f["neighbours"].astype(np.int64),
                            f["scores"].astype(np.float32), stats, f["signature"].astype(np.float32))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None  # missing, damaged or from another version: computed again
        n = len(graph.ids)
        if graph.others != others or graph.neighbours.shape != graph.scores.shape or len(graph.neighbours) != n or (
                graph.signature.shape != (n,)):
            return None
        return graph


def signatures(vectors: np.ndarray) -> np.ndarray:
    """Each row's projection on a fixed random direction: a track whose vector changed under the same id (SQLite
    reuses the id of a deleted track) no longer matches its graph row."""
    if not len(vectors):
        return np.zeros(0, np.float32)
    direction = np.random.default_rng(SIGNATURE_SEED).standard_normal(int(vectors.shape[1]), dtype=np.float32)
    return np.asarray(vectors @ direction, dtype=np.float32)


def _nearest(queries: np.ndarray, vectors: np.ndarray, ids: np.ndarray, others: int,
             exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, cosines)`` of the ``others`` nearest ``vectors`` to each query row, best first and equal cosines by
    track id; a query's own track (``exclude``, a track id a row, or none) never among them; -1 and -inf fill rows
    short of candidates."""
    found = np.full((len(queries), others), -1, np.int64)
    best = np.full((len(queries), others), -np.inf, np.float32)
    for start in range(0, len(queries), BLOCK):
        sims = queries[start:start + BLOCK] @ vectors.T
        if exclude is not None:
            own = np.searchsorted(ids, exclude[start:start + BLOCK])
            hit = (own < len(ids)) & (ids[np.minimum(own, len(ids) - 1)] == exclude[start:start + BLOCK])
            sims[np.flatnonzero(hit), own[hit]] = -np.inf
        take = min(others, sims.shape[1])
        if take <= 0:
            continue
        part = np.argpartition(-sims, take - 1, axis=1)[:, :take]
        part_scores = np.take_along_axis(sims, part, axis=1)
        # Where more candidates tie with the last one taken than were taken, the smaller ids win (as a merge in
        # updated_graph decides): rare, so resolved row by row.
        last = part_scores.min(axis=1)
        for row in np.flatnonzero((sims >= last[:, None]).sum(axis=1) > take):
            cands = np.flatnonzero(sims[row] >= last[row])
            part[row] = cands[np.lexsort((ids[cands], -sims[row, cands]))[:take]]
            part_scores[row] = sims[row, part[row]]
        order = np.lexsort((ids[part], -part_scores), axis=1)  # best first; equal cosines by track id
        rows = slice(start, start + len(sims))
        found[rows, :take] = np.take_along_axis(ids[part], order, axis=1)
        best[rows, :take] = np.take_along_axis(part_scores, order, axis=1)
    found[~np.isfinite(best)] = -1
    return found, best


def compute_graph(ids: np.ndarray, vectors: np.ndarray, others: int, stats: str) -> NeighbourGraph:
    """The exact graph of unit ``vectors`` (rows of sorted track ``ids``): each track's ``others`` nearest others."""
    found, best = _nearest(vectors, vectors, ids, others, exclude=ids)
    return NeighbourGraph(ids, found, best, stats, signatures(vectors))


def updated_graph(graph: NeighbourGraph, ids: np.ndarray, vectors: np.ndarray) -> tuple[NeighbourGraph, bool]:
    """``graph`` brought to the tracks ``ids`` (sorted; unit ``vectors`` in the same space), and whether it changed:
    the graph :func:`compute_graph` gives, for the work of the tracks that came and went."""
    signature = signatures(vectors)
    # A track whose vector changed under the same id (a deleted track's id reused) left and came back.
    rows = np.minimum(np.searchsorted(ids, graph.ids), max(len(ids) - 1, 0))
    same = (ids[rows] == graph.ids) if len(ids) else np.zeros(len(graph.ids), bool)
    # (within float rounding: the product's summation order may depend on a row's place in the matrix)
    kept = same & np.isclose(signature[rows], graph.signature, rtol=1e-4, atol=1e-5) if len(ids) else same
    added = ~np.isin(ids, graph.ids[kept])
    if kept.all() and not added.any():
        return graph, False
    removed = graph.ids[~kept]
    old_ids, neighbours, scores = graph.ids[kept], graph.neighbours[kept], graph.scores[kept]
    # A track that lost a neighbour looks again among all; the others only compare with the added tracks.
    again = np.isin(neighbours, removed).any(axis=1)
    rows_old = np.searchsorted(ids, old_ids)
    new_ids, new_vectors = ids[added], vectors[added]
    if len(new_ids):
        keep = np.flatnonzero(~again)
        fresh, fresh_scores = _nearest(vectors[rows_old[keep]], new_vectors, new_ids, graph.others)
        all_ids = np.hstack([neighbours[keep], fresh])
        all_scores = np.hstack([scores[keep], fresh_scores])
        order = np.lexsort((np.where(all_ids < 0, np.iinfo(np.int64).max, all_ids), -all_scores),
                           axis=1)[:, :graph.others]
        neighbours[keep] = np.take_along_axis(all_ids, order, axis=1)
        scores[keep] = np.take_along_axis(all_scores, order, axis=1)
    out_neighbours = np.full((len(ids), graph.others), -1, np.int64)
    out_scores = np.full((len(ids), graph.others), -np.inf, np.float32)
    out_neighbours[rows_old], out_scores[rows_old] = neighbours, scores
    look = np.sort(np.hstack([rows_old[again], np.flatnonzero(added)]))
    if len(look):
        out_neighbours[look], out_scores[look] = _nearest(vectors[look], vectors, ids, graph.others,
                                                          exclude=ids[look])
    return NeighbourGraph(ids, out_neighbours, out_scores, graph.stats, signature), True


def weights(scores: np.ndarray) -> np.ndarray:
    """The weight of each neighbour: ``max(cos, 0) ** ALPHA`` (0 for a missing one)."""
    w = np.maximum(np.nan_to_num(scores, neginf=0.0), 0.0).astype(np.float64) ** ALPHA
    return w.astype(np.float32)


def smoothed(vectors: np.ndarray, graph: NeighbourGraph) -> np.ndarray:
    """Each row of unit ``vectors`` (the graph's tracks, in its order) plus its neighbours' rows, weighted, made unit
    length: the searched vectors."""
    rows = np.searchsorted(graph.ids, np.maximum(graph.neighbours, 0))
    w = weights(graph.scores) * (graph.neighbours >= 0)
    out = np.array(vectors, dtype=np.float32, copy=True)
    for j in range(graph.others):  # one column of neighbours at a time: no (n, others, dim) temporary
        out += w[:, j:j + 1] * vectors[rows[:, j]]
    return unit_rows(out)


def expanded_query(query: np.ndarray, ids: np.ndarray, vectors: np.ndarray, others: int,
                   exclude: int | None = None) -> np.ndarray:
    """A unit query plus its ``others`` nearest library ``vectors`` (rows of sorted ``ids``; track ``exclude``, the
    same audio under another name, left out), weighted as :func:`smoothed` weights: a library track's query gives
    its own smoothed vector."""
    q = np.asarray(query, dtype=np.float32).reshape(1, -1)
    if not len(ids):
        return unit_rows(q)[0]
    skip = None if exclude is None else np.array([exclude], np.int64)
    found, scores = _nearest(q, vectors, ids, others, exclude=skip)
    w = weights(scores[0]) * (found[0] >= 0)
    rows = np.searchsorted(ids, np.maximum(found[0], 0))
    return unit_rows(q[0] + w @ vectors[rows])
