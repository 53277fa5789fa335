"""Track distances: the batched versions equal seed 002's per-pair loops, plus hand-checked cases."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from soundalike.search import distances as D

METHODS = sorted(D.METHODS)


def _seq(n: int, d: int) -> st.SearchStrategy[np.ndarray]:
    # Values on a 0.1 grid: zero vectors, repeats, ties and exact duplicates all occur.
    return arrays(np.float64, (n, d), elements=st.integers(-30, 30).map(lambda v: v / 10))


@st.composite
def query_and_candidates(draw: st.DrawFn) -> tuple[np.ndarray, list[np.ndarray]]:
    d = draw(st.integers(1, 5))
    query = draw(_seq(draw(st.integers(1, 7)), d))
    lengths = draw(st.lists(st.integers(1, 9), min_size=1, max_size=6))
    return query, [draw(_seq(n, d)) for n in lengths]


@settings(max_examples=60, deadline=None)
@given(data=query_and_candidates(), method=st.sampled_from(METHODS), metric=st.sampled_from(D.METRICS))
def test_batched_equals_per_pair_reference(data: tuple[np.ndarray, list[np.ndarray]], method: str,
                                           metric: D.Metric) -> None:
    query, candidates = data
    if method == "mean" and metric == "cosine":
        # A mean that is zero up to rounding (-0.1 - 0.2 + 0.3) has no direction: float32 and float64 round it to
        # 0 or to residues of either sign, so its cosine is anything (found by this test). Zero points stay in the
        # other methods' cases.
        for seq in (query, *candidates):
            assume(float(np.linalg.norm(seq.mean(axis=0))) > 1e-6)
    got = D.sequence_distances(query, candidates, method, metric)
    want = D.reference_distances(query, candidates, method, metric)
    # cosine runs in float32 (1e-7 relative), Euclidean in float64
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-6)


@settings(max_examples=30, deadline=None)
@given(data=query_and_candidates(), metric=st.sampled_from(D.METRICS))
def test_orderings_between_methods(data: tuple[np.ndarray, list[np.ndarray]], metric: D.Metric) -> None:
    query, candidates = data
    fr = D.frechet(query, candidates, metric)
    # Every query point is coupled to some candidate point, so Fréchet >= max_i min_j d >= mean_i min_j d.
    assert np.all(fr >= D.min_point(query, candidates, metric) - 1e-6)
    # DTW is a weighted mean along one coupling, Fréchet the max along the best one.
    assert np.all(D.dtw(query, candidates, metric) <= fr + 1e-6)
    ends = np.array([max(D.reference_point(query[0], c[0], metric), D.reference_point(query[-1], c[-1], metric))
                     for c in candidates])
    assert np.all(fr >= ends - 1e-6)


@settings(max_examples=30, deadline=None)
@given(data=query_and_candidates(), metric=st.sampled_from(D.METRICS))
def test_frechet_and_dtw_are_symmetric(data: tuple[np.ndarray, list[np.ndarray]], metric: D.Metric) -> None:
    query, candidates = data
    for method in ("frechet", "dtw"):
        forward = D.sequence_distances(query, candidates, method, metric)
        backward = [D.sequence_distances(c, [query], method, metric)[0] for c in candidates]
        np.testing.assert_allclose(forward, backward, rtol=1e-5, atol=2e-6)


def test_identical_and_time_stretched_sequences_are_at_zero() -> None:
    rng = np.random.default_rng(0)
    p = rng.standard_normal((14, 32))
    stretched = np.repeat(p, 2, axis=0)                  # every segment twice: same path, slower
    for metric in D.METRICS:
        for method in METHODS:
            assert D.sequence_distances(p, [p], method, metric)[0] == pytest.approx(0.0, abs=1e-6)
        for method in ("frechet", "dtw", "minpoint"):
            assert D.sequence_distances(p, [stretched], method, metric)[0] == pytest.approx(0.0, abs=1e-6)


def test_hand_checked_euclidean_cases() -> None:
    line = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    above = line + [0.0, 1.0]
    for method in METHODS:                               # a parallel copy one unit away: 1 by every measure
        assert D.sequence_distances(line, [above], method, "euclidean")[0] == pytest.approx(1.0)
    backwards = above[::-1]
    # Reversed order: the mean and nearest points do not notice; Fréchet must hold both ends at sqrt(5).
    assert D.mean_to_mean(line, [backwards], "euclidean")[0] == pytest.approx(1.0)
    assert D.min_point(line, [backwards], "euclidean")[0] == pytest.approx(1.0)
    assert D.frechet(line, [backwards], "euclidean")[0] == pytest.approx(np.sqrt(5.0))
    # DTW (diagonal steps weigh 2, / (m+n)): start 2·√5, diagonal to the middle 2·1, then one sideways step √2
    # and one up to the far corner √5 beat the straight diagonal (2·√5 again).
    assert D.dtw(line, [backwards], "euclidean")[0] == pytest.approx((3 * np.sqrt(5.0) + 2.0 + np.sqrt(2.0)) / 6.0)


def test_mean_to_mean_blind_spot_of_seed_002() -> None:
    # 002 fig. 3.13/3.18: a straight input and a target in two sections either side of it share one mean.
    straight = np.array([[x, 0.0] for x in range(-3, 4)], dtype=float)
    split = np.array([[-3.0, 2.0], [-2.0, 2.0], [-1.0, 2.0], [3.0, -2.0], [2.0, -2.0], [1.0, -2.0]])
    assert D.mean_to_mean(straight, [split], "euclidean")[0] == pytest.approx(0.0)
    assert D.min_point(straight, [split], "euclidean")[0] > 1.0
    assert D.frechet(straight, [split], "euclidean")[0] > D.min_point(straight, [split], "euclidean")[0]


def test_min_point_is_asymmetric_query_to_candidate() -> None:
    near = np.array([[0.0, 0.0]])
    wide = np.array([[0.0, 0.0], [10.0, 0.0]])
    # every query point has a close candidate point ...
    assert D.min_point(near, [wide], "euclidean")[0] == pytest.approx(0.0)
    # ... but not the other way round: half of the points of `wide` are 10 away from `near`.
    assert D.min_point(wide, [near], "euclidean")[0] == pytest.approx(5.0)


def test_cosine_ground_metric_ignores_scale_and_handles_zero_vectors() -> None:
    p = np.array([[1.0, 0.0], [0.0, 2.0]])
    assert D.frechet(p, [3 * p])[0] == pytest.approx(0.0, abs=1e-7)
    assert D.pairwise(p, np.array([[-1.0, 0.0], [0.0, 0.0]]))[0].tolist() == pytest.approx([2.0, 1.0])
    assert D.cosine(np.array([1.0, 0.0]), np.array([[1.0, 0.0], [0.0, 5.0], [-2.0, 0.0]])).tolist() == \
        pytest.approx([0.0, 1.0, 2.0])
    assert D.euclidean(np.array([0.0, 0.0]), np.array([[3.0, 4.0]])).tolist() == pytest.approx([5.0])


def test_pooled_and_pairwise_match_references() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 8)), rng.standard_normal((6, 8))
    for metric in D.METRICS:
        want = [[D.reference_point(x, y, metric) for y in b] for x in a]
        np.testing.assert_allclose(D.pairwise(a, b, metric), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(D.cosine(a[0], b), [D.reference_point(a[0], y) for y in b], atol=1e-12)


def test_three_d_array_and_chunking_give_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    query = rng.standard_normal((5, 16))
    ragged = [rng.standard_normal((n, 16)) for n in rng.integers(1, 30, 40)]
    same = rng.standard_normal((7, 5, 16))
    for method in METHODS:
        whole = D.sequence_distances(query, ragged, method)
        np.testing.assert_allclose(D.sequence_distances(query, same, method),
                                   D.sequence_distances(query, list(same), method), rtol=1e-6)
        same_whole = D.sequence_distances(query, same, method)
        monkeypatch.setattr(D, "CHUNK_BYTES", 1)          # one candidate per chunk, sorted by length
        np.testing.assert_allclose(D.sequence_distances(query, ragged, method), whole, rtol=1e-6)
        np.testing.assert_allclose(D.sequence_distances(query, same, method), same_whole, rtol=1e-6)
        monkeypatch.undo()


def test_errors_name_the_problem() -> None:
    q = np.zeros((3, 4))
    with pytest.raises(D.DistanceError, match="unknown distance 'hausdorff'.*mean, minpoint, frechet, dtw"):
        D.sequence_distances(q, [q], "hausdorff")
    with pytest.raises(D.DistanceError, match="unknown metric 'manhattan'"):
        D.sequence_distances(q, [q], "frechet", "manhattan")  # type: ignore[arg-type]
    with pytest.raises(D.DistanceError, match="candidate 1: dimension 5"):
        D.sequence_distances(q, [q, np.zeros((2, 5))], "dtw")
    with pytest.raises(D.DistanceError, match="candidate 0: expected a non-empty sequence"):
        D.sequence_distances(q, [np.zeros((0, 4))], "dtw")
    with pytest.raises(D.DistanceError, match="query"):
        D.sequence_distances(np.zeros(4), [q], "mean")
    assert D.sequence_distances(q, [], "frechet").shape == (0,)


def test_rerank_of_200_candidates_is_fast() -> None:
    """The latency target (14-point 256-d sequences, 200 candidates, <= 20 ms) with a wide margin for CI noise."""
    rng = np.random.default_rng(3)
    query = rng.standard_normal((14, 256)).astype(np.float32)
    candidates = list(rng.standard_normal((200, 14, 256)).astype(np.float32))
    for method in ("frechet", "dtw"):
        D.sequence_distances(query, candidates, method)
        best = min(_timed(lambda m=method: D.sequence_distances(query, candidates, m)) for _ in range(5))
        assert best < 0.1, f"{method}: {best * 1e3:.1f} ms"


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
