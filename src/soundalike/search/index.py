"""Vector search over pooled track vectors: exact (faiss ``IndexFlatIP``) or, for large libraries, approximate.

Stored vectors become search vectors by the z-scoring of :mod:`soundalike.search.space`. One rule serves exact
and approximate search alike: the statistics are **frozen with the index** — fitted when it is built, saved in
``LIBRARY/indexes/<key>.stats.json`` and reused on every open, so a track's search vector (and every score)
stays put while other tracks come and go — and **refreshed on rebuild**, which happens when the library has
:func:`~soundalike.search.ann.outgrown` what the index was built on (grown or shrunk 2×) or crossed
:data:`~soundalike.search.ann.EXACT_MAX_TRACKS`, where exact search gives way to an IVF index
(:mod:`soundalike.search.ann`, persisted beside the statistics and brought up to date on every open: tracks added
to the library are added to it, removed ones removed).

A key marked ``~nnK`` searches vectors smoothed over each track's K nearest tracks
(:mod:`soundalike.search.neighbours`), with the neighbour graph kept in ``<key>.graph.npz`` beside the statistics
and brought up to date on every open; outside queries are expanded the same way (:meth:`VectorIndex.expand`).
Only exact indexes smooth: a library above ``EXACT_MAX_TRACKS`` searches the plain vectors of the key.

A library whose float32 search vectors would not fit :data:`~soundalike.search.ann.FLAT_MAX_BYTES` (a million
tracks of the 1882-d default: 7.5 GB) is indexed **in parts**: statistics fitted on a seeded sample of
:data:`STATS_SAMPLE` tracks, IVF cells (4·√n, at most as many as 40 a cell of a
:data:`PARTS_MAX_TRAIN` sample) trained on a sample, the library read, transformed and added
:data:`CHUNK` tracks at a time, and ``nprobe`` calibrated against exact search done in the same pass. Such an
index is *compact*: it keeps no float32 copy of the vectors — a track's vector is decoded from the ANN index
(:meth:`VectorIndex.vector_of`), so the server holds a byte a dimension (``sq8``) or less (``pq``). Its searches
re-score their best candidates with the search vectors kept in float16 in a file beside it (the re-rank store,
:mod:`soundalike.search.refine`; read a row a candidate, never held in memory), written with the index and brought
up to date with it; without the store (a read-only library that has none) they are read from the catalogue.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from pathlib import Path

import numpy as np

from soundalike.audio import descriptors
from soundalike.library.catalog import DESCRIPTOR_MODEL, INDEX_DIR, Library

from .ann import (
    TRAIN_PER_CELL,
    AnnError,
    AnnIndex,
    Codec,
    choose_codec,
    choose_kind,
    exact_search,
    outgrown,
    trainable_nlist,
    write_atomically,
)
from .neighbours import NeighbourGraph, compute_graph, expanded_query, smoothed, updated_graph
from .refine import RefineStore, fingerprint
from .space import Embedding, common_ids, fit_embedding, load_raw, model_parts, read_raw, split_neighbours

log = logging.getLogger(__name__)

#: Tracks read, transformed and added at a time when a large library is indexed in parts.
CHUNK = 10_000
#: Tracks the re-rank store's fill writes between saves of its map: a fill cut short (a kill while the store of an
#: existing index is written, ~2 minutes at a million tracks) resumes from the last save, not from the start.
REFINE_SAVE_EVERY = 100_000
#: Tracks the statistics of a library indexed in parts are fitted on.
STATS_SAMPLE = 50_000
#: Most vectors the IVF cells of a library indexed in parts are trained on, at 40 a cell: 4096 cells from a million
#: tracks. With 2048 a search there scanned 7,985 vectors at a calibrated ``nprobe`` of 2 (re-ranked recall@10
#: 0.989), with 4096 1,127 at 1 (0.992); the build took 273 instead of 155 s (benchmarks/results/scale-build*.json).
PARTS_MAX_TRAIN = TRAIN_PER_CELL * 4096
#: Library vectors used as queries to calibrate ``nprobe`` of an index built in parts.
CALIBRATION_QUERIES = 200
#: A compact index's search re-scores this many candidates per wanted result (of the first :data:`RERANK_TOP`) with
#: the exact vectors: its 8-bit codes alone capped recall@10 at 0.966 on a million tracks, re-ranked 0.981
#: (benchmarks/results/scale-ann.json).
RERANK = 4
#: Results whose order the re-rank makes exact; results a caller asks for beyond these (room for its filters) are
#: re-scored too, without more candidates.
RERANK_TOP = 10


def index_paths(lib: Library, model: str) -> tuple[Path, Path]:
    """Where the persisted ANN index of ``model`` and its frozen statistics live in the library folder."""
    safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", model)
    folder = Path(lib.root) / INDEX_DIR
    return folder / f"{safe}.ann", folder / f"{safe}.stats.json"


def graph_path(lib: Library, model: str) -> Path:
    """Where the neighbour graph of a smoothed key (``~nnK``) lives: beside its statistics."""
    index_path, _ = index_paths(lib, model)
    return index_path.with_suffix(".graph.npz")


def _smoothed(path: Path, embedding: Embedding, ids: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``vectors`` (rows of sorted ``ids``) smoothed over their ``embedding.neighbours`` nearest tracks, with the
    saved graph at ``path`` brought up to date (or computed and saved: a read-only library computes it each time)."""
    stats, others = fingerprint(embedding.to_json()), embedding.neighbours - 1
    graph = NeighbourGraph.load(path, stats, others)
    if graph is None:
        if len(ids) > 5000:
            log.warning("finding the %d nearest tracks of each of %d tracks (kept beside the index)", others,
                        len(ids))
        graph, changed = compute_graph(ids, vectors, others, stats), True
    else:
        graph, changed = updated_graph(graph, ids, vectors)
    if changed:
        with contextlib.suppress(OSError):  # a read-only library still answers (computing it on every open)
            path.parent.mkdir(parents=True, exist_ok=True)
            graph.save(path)
    return smoothed(vectors, graph)


def _read_stats(path: Path, model: str, dims: list[int]) -> Embedding | None:
    try:
        embedding = Embedding.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing, unreadable or from another version: fitted again
    if embedding.model != model or [p.dim for p in embedding.parts] != dims:
        return None
    if DESCRIPTOR_MODEL in model_parts(model) and embedding.descriptor_version != descriptors.DESCRIPTOR_VERSION:
        return None  # fitted on descriptors another version computed
    if embedding.neighbours != split_neighbours(model)[1]:
        return None
    return embedding


def _write_stats(path: Path, embedding: Embedding) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda f: f.write(json.dumps(embedding.to_json()).encode()))


def _updated_ann(index_path: Path, embedding: Embedding, ids: np.ndarray, vectors: np.ndarray, fresh: bool
                 ) -> tuple[AnnIndex, bool]:
    """The IVF index of ``vectors``: the saved one brought up to date (unless ``fresh`` statistics were fitted), else
    a new one; and whether it differs from the saved file."""
    index: AnnIndex | None = None
    if not fresh and index_path.exists():
        try:
            index = AnnIndex.load(index_path, dim=embedding.dim)
        except AnnError:
            index = None  # unreadable or from another version: built again below
    if index is None:
        return AnnIndex.build(ids, vectors, kind="ivf"), True
    new = ~np.isin(ids, index.ids)
    changed = bool(new.any())
    if changed:
        index.add(ids[new], vectors[new])
    changed = index.remove(np.setdiff1d(index.ids, ids, assume_unique=True)) > 0 or changed
    return index, changed


def _save(stats_path: Path, embedding: Embedding, index_path: Path, index: AnnIndex | None) -> None:
    try:
        _write_stats(stats_path, embedding)
        if index is not None:
            index.save(index_path)
    except OSError:
        pass  # a read-only library still answers; the statistics are fitted again next time


def _refine_store(stem: Path, embedding: Embedding, fresh: bool) -> RefineStore | None:
    """The re-rank store at ``stem`` for ``embedding``'s statistics: the saved one, or (``fresh``, or none usable) a
    new empty one; None where none can be written (a read-only library)."""
    stats = fingerprint(embedding.to_json())
    store = None if fresh else RefineStore.open(stem, embedding.dim, stats)
    if store is not None and store.dead <= len(store):
        return store
    try:
        return RefineStore.create(stem, embedding.dim, stats)
    except OSError as e:
        log.warning("%s: no re-rank store (%s); re-ranks read the catalogue", stem, e.strerror or e)
        return None


def _append_refine(store: RefineStore | None, ids: np.ndarray, vectors: np.ndarray) -> RefineStore | None:
    """``store`` with the rows of ``ids`` appended; None once it cannot be written (re-ranks read the catalogue)."""
    if store is not None:
        try:
            store.append(ids, vectors)
        except OSError as e:
            log.warning("%s: no re-rank store (%s); re-ranks read the catalogue", store.stem, e.strerror or e)
            return None
    return store


def _fill_refine(lib: Library, model: str, embedding: Embedding, ids: np.ndarray, store: RefineStore | None
                 ) -> RefineStore | None:
    """Bring ``store`` to exactly the tracks ``ids`` (rows of missing ones added :data:`CHUNK` at a time, gone ones
    dropped) and save it; None if it cannot be written."""
    if store is None:
        return None
    missing = ids[~store.has(ids)]
    gone = np.setdiff1d(store.row_ids[store.row_ids >= 0], ids)
    if not len(missing) and not len(gone) and not store.dirty:
        return store
    if len(missing) > CHUNK:
        log.warning("writing the re-rank store of %s: %d tracks", embedding.model, len(missing))
    try:
        unsaved = 0
        for start in range(0, len(missing), CHUNK):
            part = missing[start:start + CHUNK]
            store.append(part, embedding.transform(read_raw(lib, model, part)))
            unsaved += len(part)
            if unsaved >= REFINE_SAVE_EVERY:
                store.save()
                unsaved = 0
        store.remove(gone)
        store.save()
    except OSError as e:  # StoreReplaced too: another process rewrote it; the next open reads theirs
        log.warning("%s: re-rank store not updated (%s); re-ranks read the catalogue", store.stem,
                    e.strerror or e)
        return None
    return store


def _build_in_parts(lib: Library, model: str, embedding: Embedding, ids: np.ndarray, rng: np.random.Generator,
                    codec: Codec, store: RefineStore | None = None) -> AnnIndex:
    """Train IVF cells on a seeded sample of the library's search vectors, add the library in parts (and to the
    re-rank ``store``), calibrate ``nprobe`` on library vectors whose exact neighbours are found in the same
    pass."""
    # The usual cells (4·√n), as many as a training sample of at most PARTS_MAX_TRAIN vectors holds at 40 a cell: at
    # a million tracks 4096. A quarter of the usual (1024) made cells of 11 to 18,500 tracks, and a search
    # scanned 23,000 vectors (six times the mean cell's share): see docs/scaling.md.
    nlist = trainable_nlist(len(ids), PARTS_MAX_TRAIN)
    train_ids = np.sort(rng.choice(ids, min(len(ids), TRAIN_PER_CELL * nlist), replace=False))
    train = np.empty((len(train_ids), embedding.dim), np.float32)  # filled in parts: one copy in memory
    for start in range(0, len(train_ids), CHUNK):
        train[start:start + CHUNK] = embedding.transform(read_raw(lib, model, train_ids[start:start + CHUNK]))
    ann = AnnIndex.trained(train, nlist=nlist, codec=codec)
    del train
    query_ids = ids[np.sort(rng.choice(len(ids), min(CALIBRATION_QUERIES, len(ids)), replace=False))]
    queries = embedding.transform(read_raw(lib, model, query_ids))
    k = 11
    best_ids = np.full((len(query_ids), k), -1, np.int64)
    best = np.full((len(query_ids), k), -np.inf, np.float32)
    for start in range(0, len(ids), CHUNK):  # one pass: add each part, and find the queries' exact neighbours
        part = ids[start:start + CHUNK]
        vectors = embedding.transform(read_raw(lib, model, part))
        ann.add(part, vectors)
        store = _append_refine(store, part, vectors)
        found, scores = exact_search(part, vectors, queries, k)
        all_ids, all_scores = np.hstack([best_ids, found]), np.hstack([best, scores])
        order = np.argsort(-all_scores, axis=1, kind="stable")[:, :k]
        best_ids, best = np.take_along_axis(all_ids, order, axis=1), np.take_along_axis(all_scores, order, axis=1)
    ann.params.trained_on = len(ids)

    def exact_order(found: np.ndarray) -> np.ndarray:
        """Each row of candidate ids in the order of their exact cosine to its query (as a search re-ranks)."""
        known = np.unique(found[found >= 0])
        vectors = embedding.transform(read_raw(lib, model, known))
        out = np.full_like(found, -1)
        for row, (cands, query) in enumerate(zip(found, queries, strict=True)):
            cands = cands[cands >= 0]
            scores = vectors[np.searchsorted(known, cands)] @ query
            out[row, :len(cands)] = cands[np.argsort(-scores, kind="stable")]
        return out

    # Calibrated as a compact index answers: its candidates re-ranked by the exact vectors (VectorIndex.search).
    ann.calibrate_queries(queries, query_ids, best_ids, rerank=exact_order, candidates=RERANK * min(k, RERANK_TOP))
    return ann


class VectorIndex:
    """Top-k cosine search over track vectors, returning track ids: exact, or through a persisted ANN index."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray | None, embedding: Embedding,
                 ann: AnnIndex | None = None, refine: RefineStore | None = None, base: np.ndarray | None = None
                 ) -> None:
        """An index of unit search ``vectors`` (rows of ``embedding``'s space) under track ``ids``: searched
        through ``ann`` when given (built over the same vectors and ids), else exactly. ``vectors=None`` makes a
        compact index: vectors are decoded from ``ann`` when asked for, and re-ranks read ``refine`` (else the
        catalogue). ``base``: the vectors before neighbourhood smoothing (sorted ``ids``), when ``vectors`` are
        smoothed (:mod:`soundalike.search.neighbours`): outside queries are expanded against them."""
        self.ids = np.asarray(ids, dtype=np.int64)
        self.embedding = embedding
        self.refine = refine
        self._base = base
        if vectors is None:
            if ann is None:
                raise ValueError("a compact index (vectors=None) needs its ANN index")
            self._vectors: np.ndarray | None = None
        else:
            self._vectors = vectors if len(self.ids) else np.zeros((0, max(embedding.dim, 1)), np.float32)
        self.ann = ann if ann is not None else AnnIndex.build(self.ids, self.vectors, kind="flat")
        self._order = np.argsort(self.ids, kind="stable")
        self._sorted = self.ids[self._order]

    @property
    def smoothed(self) -> bool:
        """Whether the searched vectors are smoothed over the library's neighbourhood (a ``~nnK`` key searched
        exactly; an approximate index of a larger library searches the plain vectors)."""
        return self._base is not None

    def expand(self, query: np.ndarray, exclude: int | None = None) -> np.ndarray:
        """An outside query's search vector in this index: expanded over its nearest tracks when the index is
        smoothed (track ``exclude``, the same audio under another name, left out), else ``query`` itself."""
        if self._base is None:
            return np.asarray(query, dtype=np.float32)
        return expanded_query(query, self.ids, self._base, self.embedding.neighbours - 1, exclude)

    @property
    def compact(self) -> bool:
        """Whether the vectors live only in the ANN index (a library too large for a float32 copy)."""
        return self._vectors is None

    @property
    def vectors(self) -> np.ndarray:
        """Every search vector ``(n, dim)`` in the order of :attr:`ids` (decoded from the ANN index for a compact
        index: n × dim float32, so not for a million tracks)."""
        if self._vectors is None:
            return self.ann.reconstruct(self.ids)
        return self._vectors

    def _rows(self, track_ids: np.ndarray | list[int]) -> np.ndarray:
        """Rows of ``track_ids`` in :attr:`ids` (-1 where absent)."""
        want = np.asarray(track_ids, dtype=np.int64).ravel()
        if not len(self._sorted):
            return np.full(len(want), -1, np.int64)
        pos = np.minimum(np.searchsorted(self._sorted, want), len(self._sorted) - 1)
        return np.where(self._sorted[pos] == want, self._order[pos], -1)

    @classmethod
    def from_library(cls, lib: Library, model: str = DESCRIPTOR_MODEL, *, ann: bool | None = None,
                     codec: Codec | None = None) -> VectorIndex:
        """The index of every track the library has embedded with ``model`` (every part of a fused key), with the
        statistics frozen for it (module doc). ``ann`` forces (True) or forbids (False) the approximate index,
        which by default serves libraries above :data:`soundalike.search.ann.EXACT_MAX_TRACKS` tracks; ``codec``
        forces how an approximate one stores vectors (default :func:`~soundalike.search.ann.choose_codec`;
        ``sq8`` and ``pq`` make a compact index, built in parts)."""
        ids, dims = common_ids(lib, model)
        kind = "ivf" if (ann if ann is not None else choose_kind(len(ids)) == "ivf") else "flat"
        index_path, stats_path = index_paths(lib, model)
        codec = codec or choose_codec(len(ids), sum(dims))
        if kind == "ivf" and codec != "flat":
            return cls._in_parts(lib, model, ids, dims, index_path, stats_path, codec)
        ids, raw, dims = load_raw(lib, model)
        embedding = _read_stats(stats_path, model, dims)
        fresh = embedding is None or embedding.kind != kind or outgrown(embedding.built_on, len(ids))
        if fresh or embedding is None:
            embedding = fit_embedding(model, raw, dims, kind)
        vectors = embedding.transform(raw)
        base = None
        if embedding.neighbours and kind == "flat":  # smoothed over the neighbourhood (approximate indexes: not)
            base, vectors = vectors, _smoothed(graph_path(lib, model), embedding, ids, vectors)
        index, changed = (None, fresh) if kind == "flat" else _updated_ann(index_path, embedding, ids, vectors, fresh)
        result = cls(ids, vectors, embedding, ann=index, base=base)
        if changed:
            _save(stats_path, embedding, index_path, index)
        return result

    @classmethod
    def _in_parts(cls, lib: Library, model: str, ids: np.ndarray, dims: list[int], index_path: Path,
                  stats_path: Path, codec: Codec) -> VectorIndex:
        """A compact IVF index of a large library, read :data:`CHUNK` tracks at a time (module doc)."""
        embedding = _read_stats(stats_path, model, dims)
        fresh = embedding is None or embedding.kind != "ivf" or outgrown(embedding.built_on, len(ids))
        rng = np.random.default_rng(0)

        def sample_raw() -> np.ndarray:
            """Raw vectors of a seeded sample of :data:`STATS_SAMPLE` tracks (drawn once per build)."""
            return read_raw(lib, model, np.sort(rng.choice(ids, min(STATS_SAMPLE, len(ids)), replace=False)))

        if fresh or embedding is None:
            embedding = fit_embedding(model, sample_raw(), dims, "ivf")
            embedding.built_on = len(ids)
        index: AnnIndex | None = None
        if not fresh and index_path.exists():
            try:
                index = AnnIndex.load(index_path, dim=embedding.dim)
            except AnnError:
                index = None
        if index is not None and index.params.codec != codec:
            index = None  # asked for another codec: built again
        store = _refine_store(index_path.with_suffix(""), embedding, fresh=index is None)
        if index is not None:
            changed = False
            new = ids[~np.isin(ids, index.ids)]
            for start in range(0, len(new), CHUNK):
                part = new[start:start + CHUNK]
                vectors = embedding.transform(read_raw(lib, model, part))
                index.add(part, vectors)
                store = _append_refine(store, part, vectors)  # read once for both
                changed = True
            # both sorted and duplicate-free: without assume_unique, numpy's unique passes took 1.1 s at 1 M
            changed = index.remove(np.setdiff1d(index.ids, ids, assume_unique=True)) > 0 or changed
        else:
            index = _build_in_parts(lib, model, embedding, ids, rng, codec, store)
            changed = True
        if changed:
            _save(stats_path, embedding, index_path, index)
        store = _fill_refine(lib, model, embedding, ids, store)
        return cls(ids, None, embedding, ann=index, refine=store)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, track_id: object) -> bool:
        return isinstance(track_id, int | np.integer) and int(self._rows([int(track_id)])[0]) >= 0

    def vector_of(self, track_id: int) -> np.ndarray:
        """The search vector of an indexed track."""
        return self.vectors_of([track_id])[0]

    def vectors_of(self, track_ids: np.ndarray | list[int]) -> np.ndarray:
        """The search vectors ``(n, dim)`` of indexed tracks, in the given order (``KeyError`` for another)."""
        rows = self._rows(track_ids)
        if (rows < 0).any():
            missing = np.asarray(track_ids, dtype=np.int64).ravel()[rows < 0][0]
            raise KeyError(f"track {missing} is not in the index")
        if self._vectors is None:
            return self.ann.reconstruct(np.asarray(track_ids, dtype=np.int64))
        return self._vectors[rows] if len(rows) else self._vectors[:0]

    def has(self, track_ids: np.ndarray | list[int]) -> np.ndarray:
        """Whether each of ``track_ids`` is indexed (a boolean array, in the given order)."""
        return self._rows(track_ids) >= 0

    def exact_vectors(self, lib: Library, track_ids: np.ndarray | list[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, search vectors)`` of ``track_ids``, in the given order, from the re-rank store (float16) or else
        from the catalogue's stored floats (tracks it no longer holds are left out): what a compact index only
        approximates."""
        want = np.asarray(track_ids, dtype=np.int64).ravel()
        if self.refine is not None:
            known, stored = self.refine.read(want)
            if np.isin(want, known).all():
                return want, stored[np.searchsorted(known, want)]
        return self._catalogue_vectors(lib, want)

    def _catalogue_vectors(self, lib: Library, want: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`exact_vectors` from the catalogue's stored floats."""
        common = np.unique(want)
        blocks: list[np.ndarray] = []
        read = lib.vectors_of([part.model for part in self.embedding.parts], common)
        for part, (found, mat) in zip(self.embedding.parts, read, strict=True):
            keep = np.isin(common, found)
            common = common[keep]
            blocks = [b[keep] for b in blocks]
            blocks.append(mat[np.searchsorted(found, common)] if len(common) else np.zeros((0, part.dim), np.float32))
        order = want[np.isin(want, common)]
        if not len(order):
            return order, np.zeros((0, self.embedding.dim), np.float32)
        raw = np.hstack(blocks)[np.searchsorted(common, order)]
        return order, self.embedding.transform(raw)

    def search(self, query: np.ndarray, k: int, exclude: set[int] | None = None, lib: Library | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` ``(track_ids, cosine scores)`` for one unit-length search vector, skipping ``exclude``. With
        ``lib``, a compact index re-scores :data:`RERANK` candidates per wanted result (of the first
        :data:`RERANK_TOP`) with the exact vectors read from the catalogue (:meth:`exact_vectors`) and ranks by those
        scores."""
        exclude = exclude or set()
        ids, scores = self.search_batch(query, k + len(exclude), lib)
        keep = np.array([int(t) not in exclude for t in ids[0]], dtype=bool)
        return ids[0][keep][:k], scores[0][keep][:k]

    def search_batch(self, queries: np.ndarray, k: int, lib: Library | None = None
                     ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Top-``k`` ``(track_ids, cosine scores)`` of each unit-length query row, best first, in one search; with
        ``lib``, a compact index re-ranks as :meth:`search` does, reading every row's candidates in one read."""
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        want = min(len(self.ids), k)
        if want <= 0 or not len(q):
            return [np.zeros(0, np.int64)] * len(q), [np.zeros(0, np.float32)] * len(q)
        rerank = lib is not None and self.compact
        fetch = min(len(self.ids), max(want, RERANK * min(want, RERANK_TOP))) if rerank else want
        found, coarse = self.ann.search(q, fetch)
        if not rerank or lib is None:
            return [row[row >= 0][:want] for row in found], [s[row >= 0][:want] for row, s in zip(found, coarse,
                                                                                                  strict=True)]
        known, vectors = self.exact_vectors(lib, np.unique(found[found >= 0]))
        ids, scores = [], []
        for row, target in zip(found, q, strict=True):
            cand = row[np.isin(row, known)]
            exact = vectors[np.searchsorted(known, cand)] @ target if len(cand) else np.zeros(0, np.float32)
            order = np.argsort(-exact, kind="stable")[:want]
            ids.append(cand[order].astype(np.int64))
            scores.append(exact[order].astype(np.float32))
        return ids, scores

    def sequences(self, lib: Library, track_ids: list[int]) -> tuple[list[int], list[np.ndarray]]:
        """Segment sequences in the search space (:meth:`Embedding.sequence`) of those indexed tracks that have
        their learned parts' segments stored; returns ``(ids kept, sequences)``."""
        learned = [p.model for p in self.embedding.parts if p.model != DESCRIPTOR_MODEL]
        kept, seqs = [], []
        for tid in track_ids:
            if int(tid) not in self:
                continue
            segments = {m: lib.segments(int(tid), m) for m in learned}
            if any(s is None or not len(s) for s in segments.values()):
                continue
            kept.append(int(tid))
            seqs.append(self.embedding.sequence(self.vector_of(tid), segments))
        return kept, seqs
