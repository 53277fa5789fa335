"""Distances between tracks: pooled vectors and sequences of segment embeddings (seed 002 §3.3.1, §4.2).

A track is a sequence of segment vectors ``(n_segments, d)``. Between two *points* the ground metric is the
cosine distance ``1 - cos`` (default) or the Euclidean distance (seed 002's choice). Between two *sequences*:

- ``mean`` — mean-to-mean: the ground distance between the two sequences' mean vectors (002 §3.3.1 method 1).
- ``minpoint`` — minimum point-to-point, **asymmetric** as 002 §3.3.1 method 2 defines it: for every point of
  the *query* (the "input" line) the distance to the closest point of the *candidate* (the "target" line),
  averaged over the query's points. ``d(query, candidate) != d(candidate, query)`` in general.
- ``frechet`` — discrete Fréchet distance (Eiter & Mannila 1994): the shortest "leash" over all monotone
  couplings of the two sequences; order matters, the result is one of the ground distances (a max, not a mean).
- ``dtw`` — dynamic time warping (proposed in 002 §4.2) with the symmetric step pattern of Sakoe & Chiba
  (a diagonal step costs ``2·d``, a horizontal or vertical one ``d``), divided by ``m + n``: every warping path's
  weights then sum to one, so the result is a weighted *mean* ground distance along the best path — in the same
  units as ``mean`` and ``minpoint``, 0 for identical sequences, symmetric, and comparable across track lengths.

Every batched function takes one query and many candidates of different lengths: candidates are padded to
one array and the ground distances of all pairs come from one matrix product; Fréchet and DTW then run their
dynamic programme one anti-diagonal at a time across all candidates at once (no Python loop per pair).
The ``reference_*`` functions are plain per-pair Python loops (how seed 002 computed them): they are the
ground truth of the tests and the baseline of ``benchmarks/query.py``.

All arithmetic is float64. Standardising segment vectors (e.g. z-scoring with library statistics) is the
caller's business: these are pure functions of the arrays they are given.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from .vectors import unit_rows

Metric = Literal["cosine", "euclidean"]
METRICS: tuple[str, ...] = ("cosine", "euclidean")

#: Upper bound of the working memory (ground distances and their copies) for one chunk of candidates.
CHUNK_BYTES = 64 * 2**20


class DistanceError(ValueError):
    """Bad input to a distance function: unknown method or metric, empty sequence, mismatched dimensions."""


# --- points -------------------------------------------------------------------------------------------------------

def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise DistanceError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")


def cosine(query: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Cosine distances ``1 - cos`` in ``[0, 2]`` from one pooled vector ``(d,)`` to each row of ``(n, d)``."""
    q = _as_point(query)
    v = _as_matrix(vectors, query_dim=q.shape[0])
    return np.clip(1.0 - unit_rows(v, np.float64) @ unit_rows(q, np.float64), 0.0, 2.0)


def euclidean(query: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Euclidean distances from one pooled vector ``(d,)`` to each row of ``(n, d)``."""
    q = _as_point(query)
    v = _as_matrix(vectors, query_dim=q.shape[0])
    return np.linalg.norm(v - q, axis=1)


def pairwise(a: np.ndarray, b: np.ndarray, metric: Metric = "cosine") -> np.ndarray:
    """Ground distances ``(m, n)`` between the points of two sequences ``(m, d)`` and ``(n, d)``."""
    _check_metric(metric)
    a2 = _as_sequence(a, "a")
    b2 = _as_sequence(b, "b", dim=a2.shape[1])
    return _ground(a2, b2[None], metric)[0].astype(np.float64)


def _ground(query: np.ndarray, padded: np.ndarray, metric: str) -> np.ndarray:
    """Ground distances ``(B, m, N)`` from every query point ``(m, d)`` to every point of padded ``(B, N, d)``.

    Computed in ``padded``'s dtype: float32 for cosine (exact to ~1e-7 for unit-scale cosines; stored segments
    are float16 anyway), float64 for Euclidean, whose expansion ``|a|² + |b|² - 2ab`` cancels for near points.
    """
    b, n, d = padded.shape
    flat = padded.reshape(b * n, d)
    q = query.astype(flat.dtype)
    if metric == "cosine":
        # Raw products first, then divide by the norms: (B·N, m) scalings instead of normalising (B·N, d) points.
        dist = flat @ q.T                                                  # one BLAS call
        fn = np.sqrt(np.einsum("ij,ij->i", flat, flat))
        qn = np.sqrt(np.einsum("ij,ij->i", q, q))
        dist *= (1.0 / np.where(fn > 0, fn, 1.0))[:, None]
        dist *= (1.0 / np.where(qn > 0, qn, 1.0))[None, :]
        np.subtract(1.0, dist, out=dist)
        np.clip(dist, 0.0, 2.0, out=dist)
    else:
        # Centred on the query's mean first so that the cancellation in the expansion stays small.
        centre = q.mean(axis=0)
        qc, fc = q - centre, flat - centre
        dist = fc @ qc.T
        dist *= -2.0
        dist += np.einsum("ij,ij->i", fc, fc)[:, None]
        dist += np.einsum("ij,ij->i", qc, qc)[None, :]
        np.sqrt(np.maximum(dist, 0.0, out=dist), out=dist)
    return dist.reshape(b, n, -1).transpose(0, 2, 1)


# --- input checks and padding -------------------------------------------------------------------------------------

def _as_point(x: np.ndarray) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise DistanceError(f"expected one vector (d,), got shape {arr.shape}")
    return arr


def _as_matrix(x: np.ndarray, query_dim: int) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != query_dim:
        raise DistanceError(f"expected vectors (n, {query_dim}), got shape {arr.shape}")
    return arr


def _as_sequence(x: np.ndarray, name: str, dim: int | None = None, dtype: type[np.floating] = np.float64) -> np.ndarray:
    arr: np.ndarray = np.asarray(x, dtype=dtype)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DistanceError(f"{name}: expected a non-empty sequence (n, d), got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise DistanceError(f"{name}: dimension {arr.shape[1]} does not match the query's {dim}")
    return arr


def _validated(sequences: Sequence[np.ndarray] | np.ndarray, dim: int | None,
               dtype: type[np.floating]) -> list[np.ndarray] | np.ndarray:
    """Candidates checked and converted: one ``(B, N, d)`` array as it is, else a list of ``(n_i, d)`` arrays."""
    if isinstance(sequences, np.ndarray) and sequences.ndim == 3:
        arr: np.ndarray = np.asarray(sequences, dtype=dtype)
        if arr.shape[1] == 0 or (dim is not None and arr.shape[2] != dim):
            raise DistanceError(f"candidates: expected (B, n >= 1, {dim}), got shape {arr.shape}")
        return arr
    seqs = [_as_sequence(s, f"candidate {i}", dim, dtype) for i, s in enumerate(sequences)]
    if seqs:
        d = seqs[0].shape[1]
        for i, s in enumerate(seqs):
            if s.shape[1] != d:
                raise DistanceError(f"candidate {i}: dimension {s.shape[1]} does not match candidate 0's {d}")
    return seqs


def _pad(seqs: list[np.ndarray] | np.ndarray, dtype: type[np.floating]) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(seqs, np.ndarray):
        return seqs, np.full(seqs.shape[0], seqs.shape[1], dtype=np.int64)
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    padded: np.ndarray = np.zeros((len(seqs), int(lengths.max()), seqs[0].shape[1]), dtype=dtype)
    for i, s in enumerate(seqs):  # a copy per candidate, not a distance computation
        padded[i, :len(s)] = s
    return padded, lengths


def pad_sequences(sequences: Sequence[np.ndarray] | np.ndarray, dim: int | None = None,
                  dtype: type[np.floating] = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """``(padded (B, N, d) with zero padding, lengths int64 (B,))`` of sequences of different lengths."""
    seqs = _validated(sequences, dim, dtype)
    if not len(seqs):
        return np.zeros((0, 1, dim or 1), dtype=dtype), np.zeros(0, dtype=np.int64)
    return _pad(seqs, dtype)


# --- batched sequence distances -----------------------------------------------------------------------------------

def _mean_to_mean(query: np.ndarray, padded: np.ndarray, lengths: np.ndarray, metric: str) -> np.ndarray:
    means = padded.sum(axis=1, dtype=np.float64) / lengths[:, None]        # zero padding adds nothing
    q = query.mean(axis=0)
    return cosine(q, means) if metric == "cosine" else euclidean(q, means)


def _min_point(query: np.ndarray, padded: np.ndarray, lengths: np.ndarray, metric: str) -> np.ndarray:
    ground = _ground(query, padded, metric)                                # (B, m, N)
    pad = np.arange(padded.shape[1])[None, :] >= lengths[:, None]          # (B, N) padded candidate points
    ground[np.broadcast_to(pad[:, None, :], ground.shape)] = np.inf
    return ground.min(axis=2).mean(axis=1, dtype=np.float64)


def _warp(query: np.ndarray, padded: np.ndarray, lengths: np.ndarray, metric: str, kind: str) -> np.ndarray:
    """Fréchet or DTW by dynamic programming over anti-diagonals, all candidates at once.

    Table ``P`` is ``(m+1) × (N+1)`` per candidate with an ``inf`` border (the start cell ``P[0, 0]`` is
    ``-inf`` for Fréchet, 0 for DTW). Cell ``(i, j)`` depends on ``(i-1, j-1)``, ``(i-1, j)`` and ``(i, j-1)``,
    i.e. only on the two previous anti-diagonals ``k = i + j``; a candidate of length ``n`` reads its answer at
    ``P[m, n]``, which padded cells (``j > n``) never feed, so padding needs no mask.
    """
    m, big_n, b = len(query), padded.shape[1], padded.shape[0]
    ground = np.ascontiguousarray(_ground(query, padded, metric).transpose(1, 2, 0))  # (m, N, B)
    inf, dtype = np.inf, ground.dtype
    prev2 = np.full((m + 1, b), inf, dtype)                                # diagonal k-2 (0 first), indexed by i
    prev1 = np.full((m + 1, b), inf, dtype)                                # diagonal k-1 (1 first: all border)
    prev2[0] = -inf if kind == "frechet" else 0.0                          # diagonal 0 holds only P[0, 0]
    out = np.full(b, np.nan)
    by_length = {int(n): np.flatnonzero(lengths == n) for n in np.unique(lengths)}
    for k in range(2, m + big_n + 1):
        lo, hi = max(1, k - big_n), min(m, k - 1)                           # rows i whose column j = k-i is in 1..N
        cur = np.full((m + 1, b), inf, dtype)
        rows = np.arange(lo, hi + 1)
        d = ground[rows - 1, k - rows - 1]                                  # (hi-lo+1, B) ground distances
        diag, up, left = prev2[lo - 1:hi], prev1[lo - 1:hi], prev1[lo:hi + 1]
        if kind == "frechet":
            cur[lo:hi + 1] = np.maximum(d, np.minimum(np.minimum(diag, up), left))
        else:
            cur[lo:hi + 1] = np.minimum(diag + 2.0 * d, np.minimum(up, left) + d)
        done = by_length.get(k - m)
        if done is not None:
            out[done] = cur[m, done]
        prev2, prev1 = prev1, cur
    if kind == "dtw":
        out /= m + lengths
    return out


def _frechet(query: np.ndarray, padded: np.ndarray, lengths: np.ndarray, metric: str) -> np.ndarray:
    return _warp(query, padded, lengths, metric, "frechet")


def _dtw(query: np.ndarray, padded: np.ndarray, lengths: np.ndarray, metric: str) -> np.ndarray:
    return _warp(query, padded, lengths, metric, "dtw")


_Batched = Callable[[np.ndarray, np.ndarray, np.ndarray, str], np.ndarray]

#: Sequence distances by name (the ``--distance`` choices of the command line).
METHODS: dict[str, _Batched] = {"mean": _mean_to_mean, "minpoint": _min_point, "frechet": _frechet, "dtw": _dtw}


def sequence_distances(query: np.ndarray, candidates: Sequence[np.ndarray] | np.ndarray, method: str,
                       metric: Metric = "cosine") -> np.ndarray:
    """Distances ``(len(candidates),)`` from a query sequence ``(m, d)`` to candidate sequences ``(n_i, d)``.

    ``method`` is one of :data:`METHODS`; candidates may differ in length (or be one ``(B, N, d)`` array).
    """
    if method not in METHODS:
        raise DistanceError(f"unknown distance {method!r}; choose one of {', '.join(METHODS)}")
    _check_metric(metric)
    q = _as_sequence(query, "query")
    # Cosine distances of float32 points are exact to ~1e-7, and the stored segments are float16 anyway; the
    # Euclidean expansion |a|² + |b|² - 2ab cancels badly for near points, so it stays float64.
    dtype = np.float32 if metric == "cosine" else np.float64
    seqs = _validated(candidates, q.shape[1], dtype)
    if not len(seqs):
        return np.zeros(0)
    fn = METHODS[method]
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    per = max(1, CHUNK_BYTES // (3 * np.dtype(dtype).itemsize * len(q) * int(lengths.max())))
    if method == "mean" or per >= len(lengths):
        return fn(q, *_pad(seqs, dtype), metric)
    # Sorted by length and padded chunk by chunk: bounded memory, little padding when lengths vary a lot.
    order = np.argsort(lengths, kind="stable")
    out = np.empty(len(lengths))
    for start in range(0, len(order), per):
        idx = order[start:start + per]
        chunk = seqs[idx] if isinstance(seqs, np.ndarray) else [seqs[i] for i in idx]
        out[idx] = fn(q, *_pad(chunk, dtype), metric)
    return out


def mean_to_mean(query: np.ndarray, candidates: Sequence[np.ndarray] | np.ndarray,
                 metric: Metric = "cosine") -> np.ndarray:
    """Ground distance between the query's mean vector and each candidate's mean vector (002 §3.3.1 (1))."""
    return sequence_distances(query, candidates, "mean", metric)


def min_point(query: np.ndarray, candidates: Sequence[np.ndarray] | np.ndarray,
              metric: Metric = "cosine") -> np.ndarray:
    """Mean over the *query's* points of the distance to the nearest *candidate* point (002 §3.3.1 (2)).

    Asymmetric: the query is 002's "input" line, each candidate its "target" line.
    """
    return sequence_distances(query, candidates, "minpoint", metric)


def frechet(query: np.ndarray, candidates: Sequence[np.ndarray] | np.ndarray,
            metric: Metric = "cosine") -> np.ndarray:
    """Discrete Fréchet distance (Eiter & Mannila 1994) from the query to each candidate; symmetric."""
    return sequence_distances(query, candidates, "frechet", metric)


def dtw(query: np.ndarray, candidates: Sequence[np.ndarray] | np.ndarray, metric: Metric = "cosine") -> np.ndarray:
    """Symmetric DTW (diagonal step weight 2) divided by ``m + n``: a mean ground distance along the best path."""
    return sequence_distances(query, candidates, "dtw", metric)


# --- per-pair references (plain Python, as seed 002 computed them) ------------------------------------------------

def reference_point(a: np.ndarray, b: np.ndarray, metric: Metric = "cosine") -> float:
    """Ground distance between two points, one pair at a time."""
    _check_metric(metric)
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if metric == "euclidean":
        return float(np.linalg.norm(a64 - b64))
    na, nb = float(np.linalg.norm(a64)), float(np.linalg.norm(b64))
    if na == 0.0 or nb == 0.0:
        return 1.0
    return min(2.0, max(0.0, 1.0 - float(a64 @ b64) / (na * nb)))


def reference_mean_to_mean(p: np.ndarray, q: np.ndarray, metric: Metric = "cosine") -> float:
    """Mean-to-mean distance of one pair, with Python loops."""
    means = []
    for seq in (p, q):
        total = np.zeros(len(seq[0]))
        for row in seq:
            total += row
        means.append(total / len(seq))
    return reference_point(means[0], means[1], metric)


def reference_min_point(p: np.ndarray, q: np.ndarray, metric: Metric = "cosine") -> float:
    """Minimum point-to-point distance of one pair (input ``p``, target ``q``), with Python loops."""
    return sum(min(reference_point(a, b, metric) for b in q) for a in p) / len(p)


def reference_frechet(p: np.ndarray, q: np.ndarray, metric: Metric = "cosine") -> float:
    """Discrete Fréchet distance of one pair: Eiter & Mannila's table filled cell by cell."""
    m, n = len(p), len(q)
    ca = [[0.0] * n for _ in range(m)]
    for i in range(m):
        for j in range(n):
            d = reference_point(p[i], q[j], metric)
            if i == 0 and j == 0:
                ca[i][j] = d
            elif i == 0:
                ca[i][j] = max(ca[0][j - 1], d)
            elif j == 0:
                ca[i][j] = max(ca[i - 1][0], d)
            else:
                ca[i][j] = max(min(ca[i - 1][j], ca[i - 1][j - 1], ca[i][j - 1]), d)
    return ca[m - 1][n - 1]


def reference_dtw(p: np.ndarray, q: np.ndarray, metric: Metric = "cosine") -> float:
    """Symmetric DTW of one pair (diagonal weight 2, divided by ``m + n``), cell by cell."""
    m, n = len(p), len(q)
    g = [[math.inf] * (n + 1) for _ in range(m + 1)]
    g[0][0] = 0.0
    for i in range(1, m + 1):
        for j in range(1, n + 1):
            d = reference_point(p[i - 1], q[j - 1], metric)
            g[i][j] = min(g[i - 1][j - 1] + 2.0 * d, g[i - 1][j] + d, g[i][j - 1] + d)
    return g[m][n] / (m + n)


#: The per-pair references by method name, for tests and benchmarks.
REFERENCES: dict[str, Callable[[np.ndarray, np.ndarray, Metric], float]] = {
    "mean": reference_mean_to_mean, "minpoint": reference_min_point,
    "frechet": reference_frechet, "dtw": reference_dtw,
}


def reference_distances(query: np.ndarray, candidates: Sequence[np.ndarray], method: str,
                        metric: Metric = "cosine") -> np.ndarray:
    """:func:`sequence_distances` computed one pair at a time with the references (slow; for tests and baselines)."""
    if method not in REFERENCES:
        raise DistanceError(f"unknown distance {method!r}; choose one of {', '.join(REFERENCES)}")
    return np.array([REFERENCES[method](query, c, metric) for c in candidates], dtype=np.float64)
