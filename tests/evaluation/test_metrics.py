"""Ranking and beyond-accuracy metrics: hand-computed cases, and trec_eval (pytrec_eval) on random runs."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.evaluation import metrics as M

RANKED = [1, 2, 3, 4, 5]
RELEVANT = {1, 3, 6}  # hits at ranks 1 and 3; item 6 never recommended


def test_precision_recall_hit_rate() -> None:
    assert M.precision_at_k(RANKED, RELEVANT, 5) == pytest.approx(2 / 5)
    assert M.precision_at_k(RANKED, RELEVANT, 1) == pytest.approx(1.0)
    assert M.recall_at_k(RANKED, RELEVANT, 5) == pytest.approx(2 / 3)
    assert M.recall_at_k(RANKED, RELEVANT, 2) == pytest.approx(1 / 3)
    assert M.hit_rate_at_k(RANKED, RELEVANT, 5) == 1.0
    assert M.hit_rate_at_k([2, 4], RELEVANT, 2) == 0.0
    assert M.precision_at_k([1], {1}, 5) == pytest.approx(0.2)  # a short list still divides by k


def test_average_precision_normalised_by_min_relevant_k() -> None:
    # (P@1 + P@3) / min(3, 5) = (1 + 2/3) / 3
    assert M.average_precision_at_k(RANKED, RELEVANT, 5) == pytest.approx((1 + 2 / 3) / 3)
    assert M.average_precision_at_k(RANKED, RELEVANT, 2) == pytest.approx(1 / 2)  # P@1 / min(3, 2)
    assert M.average_precision_at_k([1, 2], {1, 2, 3}, 2) == pytest.approx(1.0)  # perfect top-2 of 3 relevant
    assert M.average_precision_at_k([1], {1}, 5) == pytest.approx(1.0)
    assert M.mean_average_precision([RANKED, [6]], [RELEVANT, {6}], 5) == pytest.approx(((1 + 2 / 3) / 3 + 1) / 2)


def test_ndcg_binary_log2() -> None:
    dcg = 1 / np.log2(2) + 1 / np.log2(4)  # hits at ranks 1 and 3
    idcg = 1 / np.log2(2) + 1 / np.log2(3) + 1 / np.log2(4)
    assert M.ndcg_at_k(RANKED, RELEVANT, 5) == pytest.approx(dcg / idcg)
    assert M.ndcg_at_k(RANKED, RELEVANT, 5) == pytest.approx(0.703918, abs=1e-6)
    assert M.ndcg_at_k([2, 1], {1}, 2) == pytest.approx(1 / np.log2(3))
    assert M.ndcg_at_k([1, 2], {1, 2, 3}, 2) == pytest.approx(1.0)  # ideal list capped at k


def test_r_precision() -> None:
    assert M.r_precision(RANKED, RELEVANT) == pytest.approx(2 / 3)  # 2 hits in the top 3
    assert M.r_precision([3, 1, 9], {1, 3}) == pytest.approx(1.0)
    assert M.r_precision([9, 1], {1, 3}) == pytest.approx(0.5)


def test_nothing_relevant_scores_zero() -> None:
    for fn in (M.precision_at_k, M.recall_at_k, M.hit_rate_at_k, M.average_precision_at_k, M.ndcg_at_k):
        assert fn(RANKED, set(), 5) == 0.0
    assert M.r_precision(RANKED, set()) == 0.0
    assert M.average_precision_at_k([], {1}, 3) == 0.0
    with pytest.raises(ValueError, match="k must be"):
        M.precision_at_k(RANKED, RELEVANT, 0)


def test_catalogue_coverage() -> None:
    lists = [[1, 2], [2, 3]]
    assert M.catalogue_coverage(lists, 10) == pytest.approx(0.3)
    assert M.catalogue_coverage(lists, {1, 2}) == pytest.approx(1.0)  # item 3 is not in the catalogue
    assert M.catalogue_coverage([np.array([4, 4])], 4) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="empty"):
        M.catalogue_coverage(lists, 0)


def test_popularity_and_novelty() -> None:
    pop, n = M.item_popularity([[1, 2], [1, 3], [1, 1]])  # an item counts once per playlist
    assert n == 3 and pop == pytest.approx({1: 1.0, 2: 1 / 3, 3: 1 / 3})
    # per list: mean of -log2 pop; then the mean over lists
    assert M.novelty([[1, 2]], pop, n) == pytest.approx((0 + np.log2(3)) / 2)
    assert M.novelty([[1], [2, 3]], pop, n) == pytest.approx((0 + np.log2(3)) / 2)
    assert M.novelty([[9]], pop, n) == pytest.approx(np.log2(3))  # unseen: as if in one playlist
    assert M.novelty([[]], pop, n) == 0.0
    with pytest.raises(ValueError, match="at least one playlist"):
        M.novelty([[1]], {}, 0)


def test_metrics_from_hits_match_the_per_list_functions() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        relevant = set(rng.choice(30, int(rng.integers(1, 12)), replace=False).tolist())
        ranked = rng.permutation(30)[: max(10, len(relevant))]
        hits = M.hit_list(ranked, relevant)
        for k in (1, 5, 10):
            got = M.metrics_from_hits(hits, len(relevant), k)
            assert got["precision"] == pytest.approx(M.precision_at_k(ranked, relevant, k))
            assert got["recall"] == pytest.approx(M.recall_at_k(ranked, relevant, k))
            assert got["hit_rate"] == M.hit_rate_at_k(ranked, relevant, k)
            assert got["map"] == pytest.approx(M.average_precision_at_k(ranked, relevant, k))
            assert got["ndcg"] == pytest.approx(M.ndcg_at_k(ranked, relevant, k))
            assert got["r_precision"] == pytest.approx(M.r_precision(ranked, relevant))
    assert set(M.metrics_from_hits(np.zeros(3), 0, 3).values()) == {0.0}


def test_accuracy_metrics_agree_with_trec_eval_on_random_runs() -> None:
    """Every accuracy metric against trec_eval's (pytrec_eval), on 300 random ranked lists; AP@k where the two
    definitions match (trec_eval's map_cut_k divides by R, ours by min(R, k): equal when R <= k)."""
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = np.random.default_rng(0)
    k = 10
    qrels, run, ours = {}, {}, {}
    for q in range(300):
        docs = rng.permutation(60)[: int(rng.integers(1, 40))]  # a ranked list, possibly shorter than k
        relevant = set(rng.choice(60, size=int(rng.integers(1, k + 1)), replace=False).tolist())
        qid = f"q{q}"
        qrels[qid] = {f"d{d}": 1 for d in relevant}
        run[qid] = {f"d{d}": float(len(docs) - rank) for rank, d in enumerate(docs)}  # distinct scores, best first
        ours[qid] = M.metrics_from_hits(M.hit_list(docs, relevant), len(relevant), k)
        assert ours[qid]["map"] == pytest.approx(M.average_precision_at_k(docs, relevant, k))
        assert ours[qid]["r_precision"] == pytest.approx(M.r_precision(docs, relevant))
    names = {"precision": f"P_{k}", "recall": f"recall_{k}", "ndcg": f"ndcg_cut_{k}", "map": f"map_cut_{k}",
             "r_precision": "Rprec", "hit_rate": f"success_{k}"}
    theirs = pytrec_eval.RelevanceEvaluator(qrels, set(names.values())).evaluate(run)
    for qid, values in ours.items():
        for ours_name, trec_name in names.items():
            assert values[ours_name] == pytest.approx(theirs[qid][trec_name], abs=1e-9), (qid, ours_name)
