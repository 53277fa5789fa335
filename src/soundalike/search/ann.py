"""Nearest-neighbour search for large libraries: a faiss index on disk, updated as tracks come and go.

Vectors are unit length, so inner product = cosine similarity. Two kinds, chosen by library size
(:func:`choose_kind`, threshold :data:`EXACT_MAX_TRACKS`):

- ``flat`` — exact search (``IndexIDMap2(IndexFlatIP)``): below the threshold a full scan is already fast and
  needs no training.
- ``ivf`` — inverted file (``IndexIVFFlat``; ``IndexIVFScalarQuantizer`` 8-bit with ``codec="sq8"``: a byte a
  dimension; or PCA + random rotation + ``IndexIVFPQ`` with ``codec="pq"``: :data:`PQ_BYTES` bytes a vector,
  for 10 M+ tracks):
  spherical k-means splits the library into ``nlist ≈ 4·√n`` cells; a query scans the ``nprobe`` nearest cells.
  :func:`choose_codec` picks the codec by the memory the vectors would take (``flat`` while they fit in
  :data:`FLAT_MAX_BYTES`, ``sq8`` while a byte a dimension fits in :data:`SQ8_MAX_BYTES`, ``pq`` beyond).
  ``nprobe`` is calibrated at build time to reach ``target_recall`` (recall@10 against exact search, measured
  leave-one-out on a sample of the library's own vectors).

Why IVF and not HNSW (measured by ``benchmarks/query.py``, see docs/architecture.md): at recall@10 >= 0.97 on
clustered vectors IVF was as fast as HNSW or faster (1M: 0.998 at 0.7 ms), it builds 2.6× faster on 2 cores,
and — decisive for a library that changes — it removes vectors for real (``remove_ids``), where faiss HNSW
cannot remove at all and Spotify's voyager (also HNSW) only marks them deleted. Adding tracks assigns them to
the existing cells, no retraining; :attr:`AnnIndex.stale` says when the cells no longer fit the library (it grew
or shrank 2× from the vectors they were trained on, or crossed the exact/ANN threshold) and the index should be
rebuilt.

File format (one file, replaced atomically by :meth:`AnnIndex.save`): the magic line ``SOUNDALIKE-ANN\\n``, a
little-endian uint64 header length, a JSON header (format version, kind, dimension, count, parameters), then
the faiss index as ``faiss.write_index`` writes it.
"""

from __future__ import annotations

import json
import os
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import faiss
import numpy as np

from .coarse import CoarseFilter
from .vectors import unit_rows

_search_threads: int | None = None  # faiss (OpenMP) threads of every search, in any thread; None: faiss's default
_applied = threading.local()  # the thread count this thread last gave OpenMP

#: Libraries up to this many tracks are searched exactly (``flat``); larger ones with ``ivf``. An exact scan of
#: 20k 256-d vectors takes ~1–2 ms on one core, well inside interactive latency; beyond it IVF wins.
EXACT_MAX_TRACKS = 20_000
#: An index — its IVF cells and the z-scoring statistics frozen with it (:mod:`soundalike.search.index`) — is
#: rebuilt when the library has grown or shrunk by this factor since it was built (:func:`outgrown`).
STALE_GROWTH = 2.0
#: Default recall@10 that ``nprobe`` is calibrated to at build time.
TARGET_RECALL = 0.97

#: Codec limits of :func:`choose_codec`: float32 vectors up to this size stay exact inside the cells ...
FLAT_MAX_BYTES = 1 << 30
#: ... 8-bit scalar quantization (one byte a dimension) up to this size; product quantization beyond.
SQ8_MAX_BYTES = 4 << 30
#: Bytes a vector with ``codec="pq"`` (PCA with a random rotation to :data:`PQ_DIM` dimensions, then this many
#: 8-bit codes).
PQ_BYTES = 64
PQ_DIM = 512
#: Calibration stops doubling ``nprobe`` (from this many cells on) once a doubling gains less than this recall:
#: quantized codes (sq8, pq) cap the recall below a target that more cells cannot reach, only slow down.
PLATEAU_FROM = 16
PLATEAU_GAIN = 0.005
#: IVF cells are trained on at most this many vectors (k-means on 1 M 1882-d vectors would take an hour here).
MAX_TRAIN = 100_000
#: Training vectors an IVF cell gets (a little above faiss's own minimum of 39 for meaningful k-means).
TRAIN_PER_CELL = 40
#: ``sq8`` codes are stored for vectors padded with zeros to a multiple of this many dimensions: faiss compares
#: 8-bit codes with SIMD only then (a 1882-d search took 6x longer than a 1888-d one, measured here; the zeros
#: change no inner product).
SQ8_ALIGN = 16

MAGIC = b"SOUNDALIKE-ANN\n"
FORMAT_VERSION = 1
_UNIT_TOLERANCE = 1e-3

Kind = Literal["flat", "ivf"]
Codec = Literal["flat", "sq8", "pq"]


def set_search_threads(n: int | None) -> None:
    """Every later search uses ``n`` faiss threads, in whatever thread it runs (None: faiss's default, all cores).

    ``faiss.omp_set_num_threads`` sets the calling thread's OpenMP threads only: a server that called it once kept
    the default in its request threads, whose searches then ran on every core and spun beside each other."""
    global _search_threads
    _search_threads = n


def _threads_here() -> None:
    """Apply :func:`set_search_threads` to the calling thread (once per thread and setting)."""
    if _search_threads is not None and getattr(_applied, "n", None) != _search_threads:
        faiss.omp_set_num_threads(_search_threads)
        _applied.n = _search_threads


class AnnError(Exception):
    """An index that cannot be built, used or read; messages name the file when there is one."""


@dataclass
class AnnParams:
    """How an index was built: stored in the file header."""

    kind: str
    dim: int
    nlist: int = 0
    nprobe: int = 0
    codec: str = "flat"
    seed: int = 0
    trained_on: int = 0
    calibration: dict[str, Any] = field(default_factory=dict)


def choose_kind(n_tracks: int) -> Kind:
    """``"flat"`` (exact) up to :data:`EXACT_MAX_TRACKS` tracks, ``"ivf"`` (approximate) beyond."""
    return "flat" if n_tracks <= EXACT_MAX_TRACKS else "ivf"


def choose_codec(n_tracks: int, dim: int) -> Codec:
    """How an IVF index stores ``n_tracks`` vectors of ``dim`` dimensions: ``flat`` (float32) while they take at most
    :data:`FLAT_MAX_BYTES`, ``sq8`` while a byte a dimension takes at most :data:`SQ8_MAX_BYTES`, else ``pq``."""
    if n_tracks * dim * 4 <= FLAT_MAX_BYTES:
        return "flat"
    return "sq8" if n_tracks * dim <= SQ8_MAX_BYTES else "pq"


def outgrown(built_on: int, n_tracks: int) -> bool:
    """Whether a library of ``n_tracks`` has grown or shrunk by :data:`STALE_GROWTH` since an index was built on
    ``built_on`` tracks: the one rebuild rule of exact and approximate search."""
    return n_tracks > STALE_GROWTH * max(built_on, 1) or n_tracks * STALE_GROWTH < built_on


def default_nlist(n_tracks: int) -> int:
    """IVF cell count for a library: the power of two nearest ``4·√n``, with >= 39 vectors per cell to train."""
    if n_tracks < 78:
        return 1
    target = 4.0 * np.sqrt(n_tracks)
    nlist = int(2 ** round(np.log2(target)))
    while nlist > 1 and n_tracks < 39 * nlist:  # faiss' own minimum for meaningful k-means
        nlist //= 2
    return nlist


def trainable_nlist(n_tracks: int, max_train: int = MAX_TRAIN) -> int:
    """:func:`default_nlist`, halved until a training sample of at most ``max_train`` vectors holds 40 a cell
    (a million tracks: 2048 cells, trained on 81,920 vectors)."""
    nlist = default_nlist(n_tracks)
    while nlist > 1 and TRAIN_PER_CELL * nlist > max_train:
        nlist //= 2
    return nlist


def _check_ids(ids: np.ndarray, n: int) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1 or len(arr) != n:
        raise AnnError(f"expected {n} ids (one per vector), got shape {arr.shape}")
    if len(arr) and not np.issubdtype(arr.dtype, np.integer):
        raise AnnError(f"ids must be integers, got {arr.dtype}")
    arr = arr.astype(np.int64)
    if len(np.unique(arr)) != len(arr):
        raise AnnError("ids must be unique")
    if len(arr) and arr.min() < 0:
        raise AnnError("ids must be >= 0 (faiss reserves -1 for 'no result')")
    return arr


def _check_vectors(vectors: np.ndarray, dim: int | None = None) -> np.ndarray:
    x = np.ascontiguousarray(np.atleast_2d(np.asarray(vectors, dtype=np.float32)))
    if x.ndim != 2 or (dim is not None and x.shape[1] != dim):
        want = f"(n, {dim})" if dim is not None else "(n, d)"
        raise AnnError(f"expected vectors {want}, got shape {np.shape(vectors)}")
    if not np.isfinite(x).all():
        raise AnnError("vectors contain NaN or infinity")
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    bad = (np.abs(norms - 1.0) > _UNIT_TOLERANCE) & (norms > 0)
    if bad.any():
        raise AnnError(f"vectors must be unit length (inner product = cosine); {int(bad.sum())} are not "
                       f"(norms {float(norms[bad].min()):.3g}..{float(norms[bad].max()):.3g})")
    return x


def exact_search(ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-``k`` ``(ids (q, k), scores (q, k))`` by inner product: the ground truth for recall."""
    _threads_here()
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    kk = min(k, len(x))
    scores, rows = faiss.knn(q, x, kk, metric=faiss.METRIC_INNER_PRODUCT)
    found = np.where(rows >= 0, np.asarray(ids, dtype=np.int64)[np.maximum(rows, 0)], -1)
    return _pad(found, scores, k)


def _pad(ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if ids.shape[1] >= k:
        return ids[:, :k], scores[:, :k]
    extra = k - ids.shape[1]
    return (np.hstack([ids, np.full((len(ids), extra), -1, np.int64)]),
            np.hstack([scores, np.full((len(ids), extra), -np.inf, np.float32)]))


def overlap_at_k(found: np.ndarray, exact: np.ndarray, k: int | None = None) -> float:
    """Mean fraction of each row's exact top-``k`` ids (``-1`` padding ignored) that ``found`` also returned."""
    found, exact = np.atleast_2d(found), np.atleast_2d(exact)
    k = k or exact.shape[1]
    hits, total = 0, 0
    for f, e in zip(found[:, :k], exact[:, :k], strict=True):
        want = e[e >= 0]
        hits += len(np.intersect1d(f[f >= 0], want))
        total += len(want)
    return hits / total if total else 1.0


def recall_at_k(ann: AnnIndex, queries: np.ndarray, exact_ids: np.ndarray, k: int = 10,
                nprobe: int | None = None) -> float:
    """Recall@k of ``ann`` on ``queries`` against exact top-k ids ``(q, >=k)`` (e.g. from :func:`exact_search`)."""
    found, _ = ann.search(queries, k, nprobe=nprobe)
    return overlap_at_k(found, np.atleast_2d(exact_ids)[:, :k], k)


def _drop_self(found: np.ndarray, self_ids: np.ndarray, k: int) -> np.ndarray:
    """Each row without its own id (a library vector used as a query finds itself first), cut to ``k``."""
    keep = found != self_ids[:, None]
    order = np.argsort(~keep, axis=1, kind="stable")
    return np.take_along_axis(np.where(keep, found, -1), order, axis=1)[:, :k]


def _pad_columns(x: np.ndarray, extra: int) -> np.ndarray:
    """Rows ``x`` with ``extra`` zero columns appended (unchanged when there are none)."""
    if not extra:
        return x
    return np.ascontiguousarray(np.hstack([x, np.zeros((len(x), extra), np.float32)]))


def _aligned_dim(dim: int, codec: str) -> int:
    """The dimension faiss stores ``dim``-d vectors in for ``codec`` (``sq8``: padded to :data:`SQ8_ALIGN`)."""
    return -(-dim // SQ8_ALIGN) * SQ8_ALIGN if codec == "sq8" else dim


class AnnIndex:
    """Top-k cosine search over unit vectors keyed by track id, exact (``flat``) or approximate (``ivf``)."""

    def __init__(self, index: faiss.Index, params: AnnParams) -> None:
        self._index = index
        self.params = params
        self._pad = int(index.d) - params.dim  # zero columns faiss stores beyond the vectors' own (sq8)
        self._ids = self._stored_ids()
        self._coarse: CoarseFilter | None = None  # ranks the cells once :meth:`speed_up_cells` made it

    def speed_up_cells(self) -> bool:
        """From now on rank an IVF index's cells through a :class:`~.coarse.CoarseFilter`: the same answers for a
        fifth to a quarter of the CPU of each query's cell ranking, after ~1 s to set up at 1 M tracks (for a
        server, not a one-off command). False where it would not gain (flat, ``pq``, few cells)."""
        if self.params.kind != "ivf" or self.params.codec == "pq":
            return False
        ivf = faiss.extract_index_ivf(self._index)
        if not CoarseFilter.worthwhile(int(ivf.nlist), int(ivf.d)):
            return False
        if self._coarse is None:
            self._coarse = CoarseFilter(faiss.downcast_index(ivf.quantizer).reconstruct_n(0, ivf.nlist))
        return True

    def _padded(self, x: np.ndarray) -> np.ndarray:
        """Rows ``x (n, dim)`` as faiss stores them (zero columns appended for an aligned ``sq8`` index)."""
        return _pad_columns(x, self._pad)

    # --- building -----------------------------------------------------------------------------------------------
    @classmethod
    def build(cls, ids: np.ndarray, unit_vectors: np.ndarray, *, kind: Kind | Literal["auto"] = "auto",
              nlist: int | None = None, nprobe: int | None = None, codec: Codec = "flat",
              target_recall: float = TARGET_RECALL, seed: int = 0, train_size: int | None = None,
              niter: int = 10, dim: int | None = None) -> AnnIndex:
        """An index of ``unit_vectors (n, d)`` under ``ids``; ``kind="auto"`` picks by :func:`choose_kind`.

        IVF: ``nlist`` defaults to :func:`default_nlist`; ``nprobe`` (when not given) is the smallest power of
        two whose leave-one-out recall@10 on up to 200 library vectors reaches ``target_recall``.
        """
        x = _check_vectors(unit_vectors, dim)
        ids64 = _check_ids(ids, len(x))
        d = x.shape[1]
        if d == 0:
            raise AnnError("vectors have no columns; pass dim= for an empty index")
        chosen: str = choose_kind(len(x)) if kind == "auto" else kind
        if chosen == "flat":
            flat = faiss.IndexIDMap2(faiss.IndexFlatIP(d))
            if len(x):
                flat.add_with_ids(x, ids64)
            return cls(flat, AnnParams("flat", d, seed=seed, trained_on=len(x)))
        if chosen != "ivf":
            raise AnnError(f"unknown index kind {chosen!r}; choose auto, flat or ivf")
        if len(x) == 0:
            raise AnnError("an ivf index needs vectors to train on")
        nlist = nlist or default_nlist(len(x))
        rng = np.random.default_rng(seed)
        n_train = min(len(x), train_size or min(TRAIN_PER_CELL * nlist, MAX_TRAIN))
        sample = x if n_train == len(x) else x[np.sort(rng.choice(len(x), n_train, replace=False))]
        ann = cls.trained(sample, nlist=nlist, codec=codec, seed=seed, niter=niter, nprobe=nprobe or 1)
        ann.add(ids64, x)
        ann.params.trained_on = len(x)
        if nprobe is None:
            ann.calibrate(x, ids64, target_recall, seed=seed)
        return ann

    @classmethod
    def trained(cls, sample: np.ndarray, *, nlist: int, codec: Codec = "flat", seed: int = 0, niter: int = 10,
                nprobe: int = 1) -> AnnIndex:
        """An empty IVF index whose cells (and codec) are trained on the unit vectors ``sample``: add the library
        to it in parts (:meth:`add`), then :meth:`calibrate_queries` — a million vectors never sit in memory."""
        x = _check_vectors(sample)
        d = x.shape[1]
        stored = _aligned_dim(d, codec)
        x = _pad_columns(x, stored - d)
        if codec not in ("flat", "sq8", "pq"):
            raise AnnError(f"unknown codec {codec!r}; choose flat, sq8 or pq")
        if nlist > len(x):
            raise AnnError(f"nlist={nlist} is more than the {len(x)} vectors to train on")
        index: faiss.Index
        ivf: Any  # an IndexIVF subclass (faiss' stubs know only Index for downcast results)
        if codec == "pq":
            out = min(PQ_DIM, d - d % 8) if d >= 8 else d
            m = min(PQ_BYTES, max(1, out // 8))  # sub-vectors of 8 dimensions (or more), one byte each
            # PCA to `out` dimensions with a random rotation (balances the variance over the sub-quantizers; OPQ's
            # learned rotation took minutes to train even on 2,000 vectors here), then IVF-PQ.
            index = faiss.index_factory(d, f"PCAR{out},IVF{nlist},PQ{m}", faiss.METRIC_INNER_PRODUCT)
            ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
            ivf.do_polysemous_training = False  # the factory's default; minutes of training for no use here
        else:
            quantizer = faiss.IndexFlatIP(stored)
            if codec == "sq8":
                ivf = faiss.IndexIVFScalarQuantizer(quantizer, stored, nlist, faiss.ScalarQuantizer.QT_8bit,
                                                    faiss.METRIC_INNER_PRODUCT)
            else:
                ivf = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            index = ivf
        ivf.cp.spherical = True           # unit vectors: centroids on the sphere, assignment by cosine
        ivf.cp.seed = seed
        ivf.cp.niter = niter
        ivf.cp.max_points_per_centroid = 10**9  # we subsample ourselves (seeded), faiss must not again
        index.train(x)
        if codec != "flat":  # codes are not the vectors: keep a map id -> code to reconstruct a track's vector
            ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
        return cls(index, AnnParams("ivf", d, nlist=nlist, nprobe=nprobe, codec=codec, seed=seed))

    def calibrate(self, vectors: np.ndarray, ids: np.ndarray, target_recall: float = TARGET_RECALL, k: int = 10,
                  sample: int = 200, seed: int = 0) -> int:
        """Set ``nprobe`` to the smallest power of two reaching ``target_recall`` (leave-one-out recall@k)."""
        if self.params.kind != "ivf":
            return 0
        x = _check_vectors(vectors, self.params.dim)
        ids64 = np.asarray(ids, dtype=np.int64)
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(x), min(sample, len(x)), replace=False))
        truth, _ = exact_search(ids64, x, x[pick], k + 1)
        return self.calibrate_queries(x[pick], ids64[pick], truth, target_recall, k)

    def calibrate_queries(self, queries: np.ndarray, query_ids: np.ndarray, truth: np.ndarray,
                          target_recall: float = TARGET_RECALL, k: int = 10,
                          rerank: Callable[[np.ndarray], np.ndarray] | None = None, candidates: int = 0) -> int:
        """Set ``nprobe`` as :meth:`calibrate` does, from library vectors used as ``queries`` (their track ids
        ``query_ids``) and their exact top-``k + 1`` ids ``truth`` over the whole library (themselves included).
        ``rerank`` (found ids ``(q, c)`` to the same ids in exact order) calibrates the search as a compact index
        answers it: ``candidates`` found, then re-ranked by the exact vectors."""
        if self.params.kind != "ivf":
            return 0
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        qids = np.asarray(query_ids, dtype=np.int64)
        truth = _drop_self(np.atleast_2d(truth), qids, k)
        nprobe, recall = 1, 0.0
        before: tuple[int, float] | None = None
        while True:
            if rerank is None:
                found, _ = self.search(q, k + 1, nprobe=nprobe)
            else:
                found = rerank(self.search(q, max(k + 1, candidates), nprobe=nprobe)[0])
            recall = overlap_at_k(_drop_self(found, qids, k), truth, k)
            if recall >= target_recall or nprobe >= self.params.nlist:
                break
            if before is not None and nprobe >= PLATEAU_FROM and recall - before[1] < PLATEAU_GAIN:
                nprobe, recall = before  # quantized codes cap the recall: scanning more cells buys nothing
                break
            before = (nprobe, recall)
            nprobe = min(nprobe * 2, self.params.nlist)
        self.params.nprobe = nprobe
        self.params.calibration = {"target_recall": target_recall, "recall": round(recall, 4), "k": k,
                                   "queries": len(q), **({"reranked": candidates} if rerank is not None else {})}
        return nprobe

    # --- updates ------------------------------------------------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add (or replace, for ids already present) these tracks' unit vectors; IVF cells are kept as trained."""
        x = _check_vectors(vectors, self.params.dim)
        ids64 = _check_ids(ids, len(x))
        if not len(x):
            return
        present = ids64[np.isin(ids64, self._ids)]
        if len(present):
            self._index.remove_ids(self._selector(present))
        self._index.add_with_ids(self._padded(x), ids64)
        self._ids = np.union1d(self._ids, ids64)

    def remove(self, ids: np.ndarray) -> int:
        """Remove these track ids (unknown ones are ignored); returns how many were removed."""
        ids64 = np.unique(np.asarray(ids, dtype=np.int64).ravel())
        present = ids64[np.isin(ids64, self._ids)]
        if not len(present):
            return 0
        removed = int(self._index.remove_ids(self._selector(present)))
        self._ids = np.setdiff1d(self._ids, present, assume_unique=True)
        return removed

    def _selector(self, ids: np.ndarray) -> faiss.IDSelector:
        """An id selector for removal (a hashtable direct map accepts only an array selector)."""
        if self.params.codec != "flat" and self.params.kind == "ivf":
            sel = faiss.IDSelectorArray(ids)
            sel.ids_ref = ids  # type: ignore[attr-defined]  # faiss keeps a pointer: the array must outlive the selector
            return sel
        return faiss.IDSelectorBatch(ids)

    # --- queries ------------------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` ``(ids int64 (q, k), cosine scores float32 (q, k))``; missing results are ``-1`` / ``-inf``."""
        _threads_here()
        q = np.ascontiguousarray(np.atleast_2d(np.asarray(queries, dtype=np.float32)))
        if q.ndim != 2 or q.shape[1] != self.params.dim:
            raise AnnError(f"expected queries (q, {self.params.dim}), got shape {np.shape(queries)}")
        if k <= 0:
            raise AnnError(f"k must be positive, got {k}")
        q = self._padded(q)
        if len(self) == 0:
            return np.full((len(q), k), -1, np.int64), np.full((len(q), k), -np.inf, np.float32)
        if self.params.kind == "ivf":
            params = faiss.SearchParametersIVF()
            params.nprobe = int(nprobe or self.params.nprobe or 1)
            if self.params.codec == "pq":  # the PCA rotation wraps the IVF index
                outer = faiss.SearchParametersPreTransform()
                outer.index_params = params
                scores, found = self._index.search(q, k, params=outer)
            elif self._coarse is not None:  # the cells ranked here, then scanned by faiss
                cell_scores, cells = self._coarse.search(q, min(params.nprobe, self.params.nlist))
                scores = np.empty((len(q), k), np.float32)
                found = np.empty((len(q), k), np.int64)
                ivf: Any = faiss.extract_index_ivf(self._index)  # the C call: the wrapper takes no params
                ivf.search_preassigned_c(
                    len(q), faiss.swig_ptr(q), k, faiss.swig_ptr(cells), faiss.swig_ptr(cell_scores),
                    faiss.swig_ptr(scores), faiss.swig_ptr(found), False, params)
            else:
                scores, found = self._index.search(q, k, params=params)
        else:
            scores, found = self._index.search(q, k)
        scores = np.where(found >= 0, scores, -np.inf).astype(np.float32)
        return found.astype(np.int64), scores

    def cells(self, vectors: np.ndarray) -> np.ndarray:
        """The IVF cell nearest each of ``vectors (n, dim)`` (the first an ``nprobe = 1`` search scans); zeros for a
        ``flat`` index (one cell)."""
        return self.probed_cells(vectors, 1)[:, 0]

    def probed_cells(self, vectors: np.ndarray, nprobe: int | None = None) -> np.ndarray:
        """The IVF cells a search of each of ``vectors (n, dim)`` scans at ``nprobe`` (default: the served one;
        at most every cell), nearest first, ``(n, nprobe)``; one column of zeros for a ``flat`` index (one cell)."""
        _threads_here()
        q = self._padded(np.ascontiguousarray(np.atleast_2d(np.asarray(vectors, dtype=np.float32))))
        if self.params.kind != "ivf" or len(q) == 0:
            return np.zeros((len(q), 1), np.int64)
        if self.params.codec == "pq":  # the cells are over the PCA-rotated vectors
            outer: Any = faiss.downcast_index(self._index)
            for i in range(outer.chain.size()):
                q = np.ascontiguousarray(faiss.downcast_VectorTransform(outer.chain.at(i)).apply(q))
        probes = max(1, min(int(nprobe or self.params.nprobe or 1), self.params.nlist))  # as search caps it
        if self._coarse is not None:
            return self._coarse.search(q, probes)[1]
        _, cell = faiss.extract_index_ivf(self._index).quantizer.search(q, probes)
        return cell.astype(np.int64)

    def cell_sizes(self) -> np.ndarray:
        """Vectors in each IVF cell (one cell holding every vector for a ``flat`` index)."""
        if self.params.kind != "ivf":
            return np.array([len(self)], np.int64)
        lists = faiss.extract_index_ivf(self._index).invlists
        assert lists is not None
        return np.array([lists.list_size(i) for i in range(lists.nlist)], np.int64)

    def reconstruct(self, ids: np.ndarray | list[int]) -> np.ndarray:
        """The stored vectors ``(n, d)`` of indexed track ``ids``, scaled back to unit length: exact for ``flat``
        codecs, decoded from the codes for ``sq8`` (cosine error ~1e-5) and ``pq`` (coarser)."""
        wanted = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).ravel())
        if not len(wanted):
            return np.zeros((0, self.params.dim), dtype=np.float32)
        out = np.asarray(self._index.reconstruct_batch(wanted), dtype=np.float32).reshape(len(wanted), -1)
        out = out[:, :self.params.dim]
        return out if self.params.codec == "flat" else unit_rows(out)

    def decoded(self, chunk: int = 65536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every indexed ``(ids, unit vectors)`` in parts of about ``chunk`` (decoded list by list for ``sq8``;
        through :meth:`reconstruct` otherwise): a pass over the library without holding it in float32."""
        if self.params.kind != "ivf" or self.params.codec != "sq8":
            ids = self._ids
            for start in range(0, len(ids), chunk):
                yield ids[start:start + chunk], self.reconstruct(ids[start:start + chunk])
            return
        ids_buf: list[np.ndarray] = []
        vec_buf: list[np.ndarray] = []
        held = 0
        for ids, raw in self._sq8_lists():
            ids_buf.append(ids)
            vec_buf.append(unit_rows(raw[:, :self.params.dim]))
            held += len(ids)
            if held >= chunk:
                yield np.concatenate(ids_buf), np.vstack(vec_buf)
                ids_buf, vec_buf, held = [], [], 0
        if ids_buf:
            yield np.concatenate(ids_buf), np.vstack(vec_buf)

    def projected(self, matrix: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every indexed ``(ids, unit vectors @ matrix)`` in parts (``matrix``: ``(dim, m)``), for the few columns a
        map needs from a pass over the library. For ``sq8`` an IVF list at a time, each row's norm dividing its
        product: no unit copy and no chunk of the decoded vectors is made (a million: 3.3 s, where decoding, stacking,
        normalising and centring them took about 13)."""
        if self.params.kind != "ivf" or self.params.codec != "sq8":
            for ids, vectors in self.decoded():
                yield ids, vectors @ matrix
            return
        dim = self.params.dim
        padded = np.zeros((self._index.d, matrix.shape[1]), np.float32)
        padded[:dim] = matrix  # the product skips the stored padding's columns without slicing the rows
        for ids, raw in self._sq8_lists():
            norms = np.sqrt(np.einsum("ij,ij->i", raw[:, :dim], raw[:, :dim]))
            yield ids, (raw @ padded) / np.where(norms > 0, norms, 1.0)[:, None]

    def _sq8_lists(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Each non-empty IVF list of an ``sq8`` index: ``(ids, decoded vectors at the stored, padded dimension)``,
        not yet unit length."""
        ivf: Any = faiss.downcast_index(faiss.extract_index_ivf(self._index))  # a loaded one is a plain IndexIVF
        lists = ivf.invlists
        assert lists is not None
        for i in range(ivf.nlist):
            size = lists.list_size(i)
            if not size:
                continue
            ids = faiss.rev_swig_ptr(lists.get_ids(i), size).copy().astype(np.int64)
            codes = faiss.rev_swig_ptr(lists.get_codes(i), size * ivf.code_size).copy().reshape(size, -1)
            decoded = ivf.sq.decode(codes)
            if ivf.by_residual:  # codes hold the offset from the cell's centroid
                decoded += ivf.quantizer.reconstruct(i)
            yield ids, decoded

    def memory_bytes(self) -> int:
        """Bytes the index's data take in memory: codes and ids of every vector, the cell centroids and any
        rotation (counted, not serialised: an IVF-Flat copy of a million vectors would double memory)."""
        if self.params.kind != "ivf":
            return len(self) * (self.params.dim * 4 + 8)
        ivf = faiss.extract_index_ivf(self._index)
        stored = int(self.cell_sizes().sum()) * (ivf.code_size + 8)
        extra = self.params.dim * ivf.d * 4 if self.params.codec == "pq" else 0  # the PCA rotation
        return int(stored + ivf.nlist * ivf.d * 4 + extra)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def __contains__(self, track_id: object) -> bool:
        if not isinstance(track_id, int | np.integer):
            return False
        i = int(np.searchsorted(self._ids, track_id))
        return i < len(self._ids) and int(self._ids[i]) == int(track_id)

    @property
    def ids(self) -> np.ndarray:
        """The indexed track ids, sorted."""
        return self._ids.copy()

    @property
    def kind(self) -> str:
        """``"flat"`` (exact) or ``"ivf"`` (approximate)."""
        return self.params.kind

    @property
    def stale(self) -> bool:
        """True when a rebuild would serve better: the size crossed the exact/ANN threshold, or it has
        :func:`outgrown` the vectors it was built on."""
        return choose_kind(len(self)) != self.params.kind or outgrown(self.params.trained_on, len(self))

    def _stored_ids(self) -> np.ndarray:
        index = faiss.downcast_index(self._index)
        if isinstance(index, faiss.IndexIDMap2 | faiss.IndexIDMap):
            return np.sort(faiss.vector_to_array(index.id_map).astype(np.int64))
        ivf = faiss.extract_index_ivf(index)
        lists = ivf.invlists
        assert lists is not None
        parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                 for i in range(ivf.nlist) if lists.list_size(i)]
        return np.sort(np.concatenate(parts).astype(np.int64)) if parts else np.zeros(0, np.int64)

    # --- persistence --------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the index to ``path`` atomically (temporary file in the same folder, fsync, rename)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        header = dict(asdict(self.params), format=FORMAT_VERSION, ntotal=len(self), faiss=faiss.__version__)
        blob = json.dumps(header, sort_keys=True).encode()

        def write(f: BinaryIO) -> None:
            f.write(MAGIC + struct.pack("<Q", len(blob)) + blob)
            writer = faiss.PyCallbackIOWriter(f.write)  # type: ignore[attr-defined]
            faiss.write_index(self._index, writer)
            del writer  # flushes faiss' buffer into f

        write_atomically(target, write)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int | None = None) -> AnnIndex:
        """Read an index written by :meth:`save`; ``dim`` (if given) must match. Errors name the file."""
        source = Path(path)
        try:
            f = open(source, "rb")  # noqa: SIM115 - closed below, after faiss read through it
        except OSError as e:
            raise AnnError(f"{source}: cannot open ANN index ({e.strerror or e})") from e
        with f:
            header = _read_header(f, source)
            try:
                reader = faiss.PyCallbackIOReader(f.read)  # type: ignore[attr-defined]
                index = faiss.read_index(reader)
                del reader
            except RuntimeError as e:
                raise AnnError(f"{source}: corrupt ANN index (faiss could not read it: "
                               f"{str(e).splitlines()[-1][:200]})") from e
            if f.read(1):
                raise AnnError(f"{source}: corrupt ANN index (unexpected bytes after the faiss index)")
        try:
            params = AnnParams(**{k: header[k] for k in AnnParams.__dataclass_fields__ if k in header})
        except TypeError as e:
            raise AnnError(f"{source}: corrupt ANN index header ({e})") from e
        stored = (params.dim, _aligned_dim(params.dim, params.codec))  # an older sq8 index is not padded
        if index.d not in stored or index.ntotal != header.get("ntotal"):
            raise AnnError(f"{source}: header says {header.get('ntotal')} vectors of dimension {params.dim}, "
                           f"the index holds {index.ntotal} of dimension {index.d}")
        if dim is not None and dim != params.dim:
            raise AnnError(f"{source}: index has dimension {params.dim}, expected {dim} (built with another model?)")
        return cls(index, params)


def _read_header(f: BinaryIO, source: Path) -> dict[str, Any]:
    magic = f.read(len(MAGIC))
    if magic != MAGIC:
        raise AnnError(f"{source}: not a soundalike ANN index (bad magic bytes)")
    raw = f.read(8)
    if len(raw) != 8:
        raise AnnError(f"{source}: corrupt ANN index (truncated header)")
    (size,) = struct.unpack("<Q", raw)
    blob = f.read(size) if size < 2**20 else b""
    try:
        header = json.loads(blob)
    except ValueError as e:
        raise AnnError(f"{source}: corrupt ANN index header ({e})") from e
    if not isinstance(header, dict):
        raise AnnError(f"{source}: corrupt ANN index header (not an object)")
    if header.get("format") != FORMAT_VERSION:
        raise AnnError(f"{source}: ANN index format {header.get('format')!r}, this version reads "
                       f"{FORMAT_VERSION}: rebuild the index")
    return header


def write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` through ``write`` into a temporary file in its folder, fsync it, rename it over ``path`` and
    fsync the folder: a crash leaves the old file or the new one, never a part (the index folder's files)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
