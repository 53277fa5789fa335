"""Playlist-continuation score functions (seed 000 eq. 1 and the cluster score): hand-checked values."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.recommend.scoring import (
    SCORES,
    ClusterScore,
    ScoreError,
    TopKScore,
    playlist_scores,
    score_method,
    score_names,
)


def _unit(x: list[list[float]]) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


PLAYLIST = np.array([[1.0, 0.0], [0.0, 1.0]])
CANDIDATES = np.array([[1.0, 0.0], [0.6, 0.8], [-1.0, 0.0]])  # cosines: (1, 0), (0.6, 0.8), (-1, 0)


def test_max_mean_topk_by_hand() -> None:
    np.testing.assert_allclose(playlist_scores(PLAYLIST, CANDIDATES, "max"), [1.0, 0.8, 0.0], atol=1e-6)
    np.testing.assert_allclose(playlist_scores(PLAYLIST, CANDIDATES, "mean"), [0.5, 0.7, -0.5], atol=1e-6)
    np.testing.assert_allclose(score_method("topk", k=1)(PLAYLIST, CANDIDATES), [1.0, 0.8, 0.0], atol=1e-6)
    # K larger than the playlist: min(K, |T_p|) = 2 tracks, i.e. the mean
    np.testing.assert_allclose(score_method("topk")(PLAYLIST, CANDIDATES), [0.5, 0.7, -0.5], atol=1e-6)


def test_topk_averages_the_k_largest() -> None:
    playlist = np.eye(3)
    candidate = np.array([[0.6, 0.8, 0.0]])  # cosines 0.6, 0.8, 0
    assert score_method("topk", k=1)(playlist, candidate)[0] == pytest.approx(0.8)
    assert score_method("topk", k=2)(playlist, candidate)[0] == pytest.approx(0.7)
    assert score_method("topk", k=3)(playlist, candidate)[0] == pytest.approx(1.4 / 3)
    assert TopKScore().k == 3  # seed 000's "top_k3"


def test_every_method_matches_a_loop_over_tracks() -> None:
    rng = np.random.default_rng(0)
    playlist = _unit(rng.standard_normal((7, 5)).tolist())
    candidates = _unit(rng.standard_normal((40, 5)).tolist())
    sims = np.array([[float(c @ p) for p in playlist] for c in candidates])
    expect = {"max": sims.max(axis=1), "mean": sims.mean(axis=1),
              "topk": np.sort(sims, axis=1)[:, -3:].mean(axis=1)}
    for name, want in expect.items():
        np.testing.assert_allclose(playlist_scores(playlist, candidates, name), want, atol=1e-5)
        np.testing.assert_allclose(score_method(name).from_similarities(sims, playlist), want, atol=1e-5)
    cluster = ClusterScore()
    members = cluster.largest_cluster(playlist)
    np.testing.assert_allclose(cluster(playlist, candidates), sims[:, members].max(axis=1), atol=1e-5)


def test_cluster_ignores_an_outlier() -> None:
    d = 0.05
    playlist = _unit([[1, d, 0], [1, -d, 0], [1, 0, d], [1, 0, -d], [0, 1, 0]])  # four alike, one outlier
    candidates = np.eye(3)[:2]  # e1 (like the four), e2 (the outlier itself)
    method = score_method("cluster")
    assert method.largest_cluster(playlist).tolist() == [0, 1, 2, 3]  # type: ignore[attr-defined]
    scores = method(playlist, candidates)
    assert scores[0] == pytest.approx(1 / np.sqrt(1 + d * d), abs=1e-6)
    assert scores[1] == pytest.approx(d / np.sqrt(1 + d * d), abs=1e-6)  # not 1.0, as plain max would give
    assert playlist_scores(playlist, candidates, "max")[1] == pytest.approx(1.0)
    mean = score_method("cluster", within="mean")(playlist, candidates)
    assert mean[1] == pytest.approx(0.0, abs=1e-6)  # the mean over the four: +d, -d, 0, 0
    assert mean[0] == pytest.approx(1 / np.sqrt(1 + d * d), abs=1e-6)


def test_cluster_without_structure_uses_the_whole_playlist() -> None:
    method = ClusterScore()
    assert method.largest_cluster(np.eye(4)).tolist() == [0, 1, 2, 3]  # equidistant: silhouette 0
    assert method.largest_cluster(np.ones((5, 3)) / np.sqrt(3)).tolist() == [0, 1, 2, 3, 4]  # identical tracks
    assert method.largest_cluster(_unit([[1, 0], [0, 1], [1, 1]])).tolist() == [0, 1, 2]  # < min_tracks
    rng = np.random.default_rng(1)
    candidates = _unit(rng.standard_normal((9, 4)).tolist())
    np.testing.assert_allclose(method(np.eye(4), candidates), playlist_scores(np.eye(4), candidates, "max"))


def test_cluster_ties_go_to_the_earliest_track_and_are_deterministic() -> None:
    d = 0.05
    playlist = _unit([[0, 1, d], [1, 0, d], [0, 1, -d], [1, 0, -d]])  # two pairs of equal size
    method = ClusterScore()
    assert method.largest_cluster(playlist).tolist() == [0, 2]
    assert method.largest_cluster(playlist[[1, 0, 3, 2]]).tolist() == [0, 2]
    rng = np.random.default_rng(2)
    big = _unit(rng.standard_normal((30, 8)).tolist())
    assert method.largest_cluster(big).tolist() == method.largest_cluster(big.copy()).tolist()


def test_registry_names_and_errors() -> None:
    assert score_names() == ["max", "mean", "topk", "cluster"] == list(SCORES)
    assert score_method("topk5").k == 5  # type: ignore[attr-defined]
    assert score_method("top_k3").k == 3  # type: ignore[attr-defined]
    assert score_method("cluster").describe().startswith("cluster(within=max")
    with pytest.raises(ScoreError, match="unknown score method 'median'"):
        score_method("median")
    with pytest.raises(ScoreError, match="k must be >= 1"):
        score_method("topk", k=0)
    with pytest.raises(ScoreError, match="bad parameters"):
        score_method("max", k=2)
    with pytest.raises(ScoreError, match="within"):
        score_method("cluster", within="median")
    with pytest.raises(ScoreError, match="no tracks"):
        playlist_scores(np.zeros((0, 2)), CANDIDATES)
    with pytest.raises(ScoreError, match="dimensions"):
        playlist_scores(np.eye(3), CANDIDATES)
