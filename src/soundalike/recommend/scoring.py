"""Playlist-continuation score functions: how well each candidate track fits a playlist, from cosine similarities.

Seed 000 (``seeds/000_3532270fc1c4aeaf.txt``, §4.3, eq. 1, after Messina et al. 2019) scores a library item ``i``
for a playlist with tracks ``T_p`` from the cosine similarities ``sim(V_i, V_j)``, ``j in T_p``:

* ``max``   — ``max_j sim(V_i, V_j)`` (the nearest playlist track);
* ``mean``  — ``sum_j sim(V_i, V_j) / |T_p|`` (the average; equal to the cosine with the playlist's mean vector);
* ``topk``  — the mean of the ``min(K, |T_p|)`` largest similarities (seed 000's "top_k3": K = 3);
* ``cluster`` — §5.4: cluster the playlist and score against its largest cluster only, so that outliers do not
  pull the recommendations; see :class:`ClusterScore` for the algorithm and its parameters.

All inputs are unit-length rows, so a cosine similarity is an inner product: every method needs one matrix product
``candidates @ playlist.T`` (n, p) per playlist and a reduction over its columns. :meth:`ScoreMethod.from_similarities`
takes that matrix directly, so an evaluation computes it once and applies every method to it.

Methods are found by name in :data:`SCORES` (``score_method("topk", k=5)``; ``"topk5"`` is the same).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

DEFAULT_TOP_K = 3
"""K of the ``topk`` score: seed 000's "top_k3"."""


class ScoreError(ValueError):
    """An unknown score method, a bad parameter, or inputs of the wrong shape."""


def _check(playlist: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.atleast_2d(np.asarray(playlist, dtype=np.float32))
    c = np.atleast_2d(np.asarray(candidates, dtype=np.float32))
    if p.shape[0] == 0:
        raise ScoreError("the playlist has no tracks to score against")
    if p.shape[1] != c.shape[1]:
        raise ScoreError(f"playlist vectors have {p.shape[1]} dimensions, candidates {c.shape[1]}")
    return p, c


def _check_sims(sims: np.ndarray) -> np.ndarray:
    s = np.asarray(sims)
    if s.ndim != 2 or s.shape[1] == 0:
        raise ScoreError(f"similarities must be a (candidates, playlist tracks) matrix with >= 1 column, "
                         f"got shape {s.shape}")
    return s


@dataclass(frozen=True)
class ScoreMethod:
    """A named score function; ``method(playlist (p, d), candidates (n, d)) -> scores (n,)`` for unit rows."""

    name: str

    def from_similarities(self, sims: np.ndarray, playlist: np.ndarray) -> np.ndarray:
        """Scores ``(n,)`` from the cosines ``sims`` (n candidates, p playlist tracks) and the playlist vectors."""
        raise NotImplementedError

    def __call__(self, playlist: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Scores ``(n,)`` of unit-length ``candidates`` (n, d) for unit-length ``playlist`` track vectors (p, d)."""
        p, c = _check(playlist, candidates)
        return self.from_similarities(c @ p.T, p)

    def describe(self) -> str:
        """The method with its parameters, for reports (``topk(k=3)``)."""
        return self.name


@dataclass(frozen=True)
class MaxScore(ScoreMethod):
    """Eq. 1 (maximum): the similarity to the nearest playlist track."""

    name: str = "max"

    def from_similarities(self, sims: np.ndarray, playlist: np.ndarray) -> np.ndarray:
        """The row maxima of ``sims``."""
        return np.asarray(_check_sims(sims).max(axis=1), dtype=np.float32)


@dataclass(frozen=True)
class MeanScore(ScoreMethod):
    """Eq. 1 (average): the mean similarity to the playlist's tracks."""

    name: str = "mean"

    def from_similarities(self, sims: np.ndarray, playlist: np.ndarray) -> np.ndarray:
        """The row means of ``sims``."""
        return np.asarray(_check_sims(sims).mean(axis=1), dtype=np.float32)


@dataclass(frozen=True)
class TopKScore(ScoreMethod):
    """Eq. 1 (average top-K): the mean of the ``min(k, p)`` largest similarities to the playlist's tracks."""

    name: str = "topk"
    k: int = DEFAULT_TOP_K

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ScoreError(f"topk: k must be >= 1, got {self.k}")

    def from_similarities(self, sims: np.ndarray, playlist: np.ndarray) -> np.ndarray:
        """The mean of each row's ``min(k, p)`` largest entries."""
        s = _check_sims(sims)
        k = min(self.k, s.shape[1])
        if k == s.shape[1]:
            return np.asarray(s.mean(axis=1), dtype=np.float32)
        top = np.partition(s, s.shape[1] - k, axis=1)[:, s.shape[1] - k:]
        return np.asarray(top.mean(axis=1), dtype=np.float32)

    def describe(self) -> str:
        """``topk(k=K)``."""
        return f"topk(k={self.k})"


@dataclass(frozen=True)
class ClusterScore(ScoreMethod):
    """Seed 000 §5.4: score against the playlist's largest cluster only (``within``: ``max`` or ``mean``).

    Algorithm (deterministic, no random start): agglomerative clustering of the playlist's track vectors with
    average linkage on cosine distance (``scipy.cluster.hierarchy``); the dendrogram is cut into ``c`` clusters for
    each ``c`` in ``2..min(max_clusters, p - 1)`` and the cut with the highest mean silhouette (cosine) is kept — if
    that silhouette reaches ``min_silhouette`` (0.25: Kaufman & Rousseeuw's "no substantial structure" bound).
    Otherwise, and for playlists of fewer than ``min_tracks`` tracks, the whole playlist is one cluster (the score
    then equals plain ``within``). Ties for the largest cluster go to the one holding the earliest playlist track.
    """

    name: str = "cluster"
    within: Literal["max", "mean"] = "max"
    max_clusters: int = 5
    min_silhouette: float = 0.25
    min_tracks: int = 4

    def __post_init__(self) -> None:
        if self.within not in ("max", "mean"):
            raise ScoreError(f"cluster: within must be 'max' or 'mean', got {self.within!r}")
        if self.max_clusters < 2:
            raise ScoreError(f"cluster: max_clusters must be >= 2, got {self.max_clusters}")
        if self.min_tracks < 3:
            raise ScoreError(f"cluster: min_tracks must be >= 3 (a silhouette needs 2 clusters), got {self.min_tracks}")

    def largest_cluster(self, playlist: np.ndarray) -> np.ndarray:
        """Indices (ascending) of the playlist tracks in the largest cluster (all of them if there is no structure)."""
        p = np.atleast_2d(np.asarray(playlist, dtype=np.float64))
        n = p.shape[0]
        everything = np.arange(n)
        if n < self.min_tracks:
            return everything
        from scipy.cluster.hierarchy import cut_tree, linkage
        from scipy.spatial.distance import squareform
        from sklearn.metrics import silhouette_score

        dist = np.clip(1.0 - p @ p.T, 0.0, 2.0)
        np.fill_diagonal(dist, 0.0)
        dist = (dist + dist.T) / 2
        tree = linkage(squareform(dist, checks=False), method="average")
        best_labels, best_sil = None, -np.inf
        for c in range(2, min(self.max_clusters, n - 1) + 1):
            labels = cut_tree(tree, n_clusters=c).ravel()
            # scikit-learn's silhouette (a track alone in its cluster scores 0): 0.35 ms a call where a
            # hand-written one took 0.02 ms, but about 1 ms per playlist beside the 27 ms of its matrix product.
            sil = float(silhouette_score(dist, labels, metric="precomputed"))
            if sil > best_sil + 1e-12:
                best_labels, best_sil = labels, sil
        if best_labels is None or best_sil < self.min_silhouette:
            return everything
        names, first, counts = np.unique(best_labels, return_index=True, return_counts=True)
        order = np.lexsort((first, -counts))  # largest, then the earliest track
        return np.flatnonzero(best_labels == names[order[0]])

    def from_similarities(self, sims: np.ndarray, playlist: np.ndarray) -> np.ndarray:
        """``within`` (max or mean) over the columns of ``sims`` that belong to the largest cluster."""
        s = _check_sims(sims)
        if np.atleast_2d(playlist).shape[0] != s.shape[1]:
            raise ScoreError(f"{np.atleast_2d(playlist).shape[0]} playlist vectors but {s.shape[1]} similarity columns")
        cols = s[:, self.largest_cluster(playlist)]
        reduced = cols.max(axis=1) if self.within == "max" else cols.mean(axis=1)
        return np.asarray(reduced, dtype=np.float32)

    def describe(self) -> str:
        """``cluster(within=..., max_clusters=..., min_silhouette=...)``."""
        return f"cluster(within={self.within}, max_clusters={self.max_clusters}, min_silhouette={self.min_silhouette})"


SCORES: dict[str, Callable[..., ScoreMethod]] = {
    "max": MaxScore,
    "mean": MeanScore,
    "topk": TopKScore,
    "cluster": ClusterScore,
}
"""Score methods by name; each entry builds a :class:`ScoreMethod` from keyword parameters."""


def score_names() -> list[str]:
    """The registered score method names."""
    return list(SCORES)


def score_method(name: str, **params: object) -> ScoreMethod:
    """The score method ``name`` with parameters (``score_method("topk", k=5)``; ``"topk5"``/``"top_k5"`` also work)."""
    key = name.strip().lower()
    match = re.fullmatch(r"top_?k(\d+)", key)
    if match:
        key = "topk"
        params = {"k": int(match.group(1)), **params}
    if key not in SCORES:
        raise ScoreError(f"unknown score method {name!r}; choose from {', '.join(SCORES)} (or topkN)")
    try:
        return SCORES[key](**params)
    except TypeError as exc:
        raise ScoreError(f"{key}: bad parameters {params} ({exc})") from None


def playlist_scores(playlist: np.ndarray, candidates: np.ndarray, method: str | ScoreMethod = "max") -> np.ndarray:
    """Scores ``(n,)`` of unit-length ``candidates`` (n, d) for a playlist's unit-length track vectors (p, d)."""
    fn = method if isinstance(method, ScoreMethod) else score_method(method)
    return fn(playlist, candidates)
