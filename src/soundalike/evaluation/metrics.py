"""Ranking metrics for playlist continuation, and the beyond-accuracy metrics of Kaminskas & Bridge (2016).

Accuracy metrics score one ranked list ``ranked`` (best first) against the set ``relevant`` of held-out items, with
binary relevance ``rel_i = 1`` if the item at rank ``i`` (1-based) is relevant; ``R = |relevant|``:

* precision@k      ``= (1/k) sum_{i<=k} rel_i``  (a list shorter than ``k`` still divides by ``k``);
* recall@k         ``= (1/R) sum_{i<=k} rel_i``;
* hit rate@k       ``= 1 if sum_{i<=k} rel_i > 0 else 0``;
* AP@k             ``= (1/min(R, k)) sum_{i<=k} P@i * rel_i`` — normalised by ``min(R, k)`` so a perfect top-k
  scores 1 even when ``R > k`` (the "AP@k" of Kaggle/MPD-style evaluations; trec_eval's ``map_cut_k`` divides
  by ``R`` instead, so the two agree when ``R <= k``); MAP@k is its mean over lists;
* nDCG@k           ``= DCG@k / IDCG@k``, ``DCG@k = sum_{i<=k} rel_i / log2(i + 1)``, ``IDCG@k`` the DCG of an
  ideal list (``min(R, k)`` relevant items first) — Järvelin & Kekäläinen (2002), binary gains;
* R-precision      ``= (1/R) sum_{i<=R} rel_i`` — precision at rank ``R`` (RecSys Challenge 2018 / MPD).

Any list with ``R = 0`` scores 0 on every accuracy metric.

Beyond accuracy (Kaminskas & Bridge 2016, *ACM TiiS* 7(1), §3.3 and §3.4), over all recommendation lists ``L_u``:

* catalogue coverage ``= |union_u L_u ∩ I| / |I|``: the fraction of the catalogue ``I`` (every candidate item)
  recommended at least once;
* novelty ``= mean_u (1/|L_u|) sum_{i in L_u} -log2 pop(i)`` with ``pop(i) = |{playlists containing i}| / |P|``:
  the mean self-information of recommended items (seed 000 §5.3: popularity = occurrences in the playlists).
  An item in no playlist is counted as in one (``pop = 1/|P|``, the largest novelty ``log2 |P|``), so novelty stays
  finite for tracks nobody has listed — the usual case for content-based (cold-start) recommendation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TypeAlias

import numpy as np

ItemList: TypeAlias = Sequence[int] | np.ndarray
"""A ranked or recommended list of item ids."""


def _hits(ranked: ItemList, relevant: Collection[int], k: int | None) -> np.ndarray:
    """1/0 per rank of the first ``k`` items (all when ``k`` is None)."""
    if k is not None and k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    items = np.asarray(ranked)[: k if k is not None else None]
    if not len(relevant) or not items.size:
        return np.zeros(items.size, dtype=np.float64)
    return np.isin(items, np.fromiter(relevant, dtype=items.dtype, count=len(relevant))).astype(np.float64)


def hit_list(ranked: ItemList, relevant: Collection[int]) -> np.ndarray:
    """1/0 per rank: whether each item of ``ranked`` is relevant (compute once, then :func:`metrics_from_hits`)."""
    return _hits(ranked, relevant, None)


def metrics_from_hits(hits: np.ndarray, n_relevant: int, k: int) -> dict[str, float]:
    """precision, recall, hit_rate, map (AP@k), ndcg at ``k`` and r_precision of one list, from its 1/0 ``hits``.

    The one implementation of every accuracy formula of the module doc (the per-list functions, the continuation
    protocol and same-label retrieval all call it); ``hits`` should reach rank ``max(k, n_relevant)``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    names = ("precision", "recall", "hit_rate", "map", "ndcg", "r_precision")
    if n_relevant <= 0:
        return dict.fromkeys(names, 0.0)
    h = np.asarray(hits, dtype=np.float64)
    top = h[:k]
    found = float(top.sum())
    precisions = np.cumsum(top) / np.arange(1, top.size + 1)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    return {"precision": found / k, "recall": found / n_relevant, "hit_rate": float(found > 0),
            "map": float((precisions * top).sum() / min(n_relevant, k)),
            "ndcg": float((top * discounts[: top.size]).sum() / discounts[: min(n_relevant, k)].sum()),
            "r_precision": float(h[:n_relevant].sum() / n_relevant)}


def _metric(name: str, ranked: ItemList, relevant: Collection[int], k: int) -> float:
    return metrics_from_hits(_hits(ranked, relevant, max(k, len(relevant))), len(relevant), k)[name]


def precision_at_k(ranked: ItemList, relevant: Collection[int], k: int) -> float:
    """Precision@k: relevant items among the first ``k``, divided by ``k``."""
    return _metric("precision", ranked, relevant, k)


def recall_at_k(ranked: ItemList, relevant: Collection[int], k: int) -> float:
    """Recall@k: relevant items among the first ``k``, divided by ``|relevant|``."""
    return _metric("recall", ranked, relevant, k)


def hit_rate_at_k(ranked: ItemList, relevant: Collection[int], k: int) -> float:
    """Hit rate@k: 1 if any of the first ``k`` items is relevant, else 0."""
    return _metric("hit_rate", ranked, relevant, k)


def average_precision_at_k(ranked: ItemList, relevant: Collection[int], k: int) -> float:
    """AP@k: the sum of precision@i at each relevant rank ``i <= k``, divided by ``min(|relevant|, k)``."""
    return _metric("map", ranked, relevant, k)


def ndcg_at_k(ranked: ItemList, relevant: Collection[int], k: int) -> float:
    """nDCG@k with binary relevance and a ``log2(rank + 1)`` discount, divided by the ideal list's DCG."""
    return _metric("ndcg", ranked, relevant, k)


def r_precision(ranked: ItemList, relevant: Collection[int]) -> float:
    """R-precision: precision at rank ``R = |relevant|`` (``ranked`` should hold at least ``R`` items)."""
    return _metric("r_precision", ranked, relevant, max(len(relevant), 1))


def mean_average_precision(rankings: Iterable[ItemList], relevants: Iterable[Collection[int]], k: int) -> float:
    """MAP@k: the mean of :func:`average_precision_at_k` over paired rankings and relevant sets (0 when empty)."""
    aps = [average_precision_at_k(r, rel, k) for r, rel in zip(rankings, relevants, strict=True)]
    return float(np.mean(aps)) if aps else 0.0


def catalogue_coverage(lists: Iterable[ItemList], catalogue: int | Collection[int]) -> float:
    """Catalogue coverage: distinct recommended items (in the catalogue) over the catalogue size."""
    recommended: set[int] = set()
    for items in lists:
        recommended.update(int(i) for i in np.asarray(items).ravel())
    if isinstance(catalogue, int):
        size = catalogue
    else:
        size = len(catalogue)
        recommended &= {int(i) for i in catalogue}
    if size <= 0:
        raise ValueError("the catalogue is empty")
    return len(recommended) / size


def item_popularity(playlists: Iterable[Iterable[int]]) -> tuple[dict[int, float], int]:
    """``({item: fraction of playlists containing it}, number of playlists)``; an item counts once per playlist."""
    counts: Counter[int] = Counter()
    n = 0
    for playlist in playlists:
        n += 1
        counts.update({int(i) for i in playlist})
    return ({item: c / n for item, c in counts.items()} if n else {}), n


def novelty(lists: Iterable[ItemList], popularity: Mapping[int, float], n_playlists: int) -> float:
    """Mean self-information ``-log2 pop(i)`` per list, averaged over lists; unseen items get ``pop = 1/n_playlists``.

    ``popularity`` is the fraction of playlists containing each item (:func:`item_popularity`).
    """
    if n_playlists < 1:
        raise ValueError("novelty needs the popularity of items over at least one playlist")
    floor = 1.0 / n_playlists
    per_list = []
    for items in lists:
        arr = np.asarray(items).ravel()
        if not arr.size:
            continue
        pops = np.array([max(popularity.get(int(i), 0.0), floor) for i in arr], dtype=np.float64)
        per_list.append(float(-np.log2(pops).mean()))
    return float(np.mean(per_list)) if per_list else 0.0
