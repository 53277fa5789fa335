"""The playlist-continuation protocol on synthetic vectors: perfect vs random embeddings, baselines, determinism,
shared catalogue, report shapes (JSON, Markdown table 3, figure-4 data and chart), bad parameters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from soundalike.evaluation import EvalPlaylist, EvaluationError, PlaylistSet, evaluate_continuation
from soundalike.evaluation.protocol import METRICS, top_rows
from soundalike.recommend.scoring import score_method

N_ALBUMS, ALBUM = 30, 10


def _albums() -> tuple[list[EvalPlaylist], np.ndarray, np.ndarray]:
    """30 'albums' of 10 tracks (ids 1000..1299), each a playlist; a one-hot-of-album embedding."""
    ids = np.arange(1000, 1000 + N_ALBUMS * ALBUM)
    album = (ids - 1000) // ALBUM
    playlists = [EvalPlaylist(f"album{a}", tuple(int(t) for t in ids[album == a])) for a in range(N_ALBUMS)]
    return playlists, ids, np.eye(N_ALBUMS, dtype=np.float32)[album]


def test_a_perfect_embedding_scores_one_and_beats_the_baselines() -> None:
    playlists, ids, onehot = _albums()
    rng = np.random.default_rng(0)
    noisy = onehot + 0.05 * rng.standard_normal(onehot.shape).astype(np.float32)  # still album-perfect
    report = evaluate_continuation(playlists, {"onehot": (ids, onehot), "noisy": (ids, noisy)}, seed=0)
    for name in ("onehot", "noisy"):
        for score in ("max", "mean", "topk", "cluster"):
            at5, at10 = report.result(name, score, 5), report.result(name, score, 10)
            assert at5["map"] == pytest.approx(1.0) and at5["ndcg"] == pytest.approx(1.0)
            assert at5["precision"] == pytest.approx(1.0) and at5["recall"] == pytest.approx(1.0)
            assert at5["r_precision"] == pytest.approx(1.0) and at5["hit_rate"] == 1.0
            # 5 held-out tracks: at N=10 half the list is a hit, AP is normalised by min(5, 10)
            assert at10["map"] == pytest.approx(1.0) and at10["precision"] == pytest.approx(0.5)
            assert at5.playlists == N_ALBUMS
    for baseline in ("most_popular", "random"):
        assert report.result(baseline, None, 5)["map"] < 0.1
    # coverage by hand: every playlist's top-5 is its own 5 held-out tracks -> 150 of 300 tracks
    assert report.result("onehot", "max", 5)["coverage"] == pytest.approx(150 / 300)
    # novelty by hand: each track is in exactly 1 of 30 playlists
    assert report.result("onehot", "max", 5)["novelty"] == pytest.approx(np.log2(30))


def test_a_random_embedding_scores_near_chance() -> None:
    rng = np.random.default_rng(42)
    ids = np.arange(600)
    vectors = rng.standard_normal((600, 16)).astype(np.float32)
    playlists = [EvalPlaylist(f"p{i}", tuple(int(t) for t in rng.choice(600, 20, replace=False)))
                 for i in range(200)]
    report = evaluate_continuation(playlists, {"noise": (ids, vectors)}, scores=("max", "mean"), top_n=(10,),
                                   seed=1)
    chance = 10 / (600 - 10)  # 10 held-out tracks among 590 candidates
    for system, score in (("noise", "max"), ("noise", "mean"), ("random", None)):
        r = report.result(system, score, 10)
        assert r["precision"] == pytest.approx(chance, abs=0.01), (system, r["precision"])
        assert r["recall"] == pytest.approx(chance, abs=0.01)
        assert r["map"] < 0.05
    assert report.result("random", None, 10)["coverage"] > 0.9  # 2000 random picks from 600 tracks


def test_most_popular_counts_seed_parts_only_unless_asked() -> None:
    # three playlists whose held-out halves all contain track 100, which no seed part holds
    playlists = [EvalPlaylist(f"p{i}", (10 * i + 1, 10 * i + 2, 100, 10 * i + 3)) for i in range(3)]
    catalogue = list(range(1, 40)) + [100]
    kw = {"catalogue": catalogue, "split": "ordered", "top_n": (1,), "min_length": 4, "baselines": ["most_popular"]}
    seeds_only = evaluate_continuation(playlists, {}, **kw)  # type: ignore[arg-type]
    everything = evaluate_continuation(playlists, {}, popularity="all", **kw)  # type: ignore[arg-type]
    assert seeds_only.result("most_popular", None, 1)["hit_rate"] == 0.0
    assert everything.result("most_popular", None, 1)["hit_rate"] == 1.0  # the held-out track counts for itself
    assert everything.result("most_popular", None, 1)["coverage"] == pytest.approx(1 / 40)
    assert everything.result("most_popular", None, 1)["novelty"] == pytest.approx(0.0)  # in all 3 playlists


def test_results_are_deterministic_for_a_seed() -> None:
    playlists, ids, onehot = _albums()
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((ids.size, 8)).astype(np.float32)
    run = lambda s: evaluate_continuation(playlists, {"v": (ids, vectors)}, seed=s).to_dict()  # noqa: E731
    first = run(7)
    assert json.loads(json.dumps(first)) == run(7)
    other = run(8)
    assert other["results"] != first["results"]  # other splits and another random baseline


def test_the_catalogue_is_the_tracks_every_embedding_has() -> None:
    playlists, ids, onehot = _albums()
    partial = (ids[:-3], onehot[:-3])  # the last album's last 3 tracks have no vector here
    messages: list[tuple[int, int]] = []
    report = evaluate_continuation(PlaylistSet(playlists, "test", "given", 10, False),
                                   {"full": (ids, onehot), "partial": partial}, scores=("max",),
                                   on_progress=lambda done, total: messages.append((done, total)))
    assert report.catalogue == ids.size - 3
    assert report.result("full", "max", 5).playlists == N_ALBUMS - 1
    dropped = report.playlists.dropped
    assert [(d.name, d.tracks) for d in dropped] == [("album29", 7)]
    assert dropped[0].reason == "fewer than 10 tracks with a vector in every embedding"
    assert "3 playlist entries left out, keeping only tracks with a vector in every embedding" in \
        report.playlists.report()
    assert messages[-1] == (N_ALBUMS - 1, N_ALBUMS - 1)
    shorter = evaluate_continuation(playlists, {"full": (ids, onehot), "partial": partial}, scores=("max",),
                                    min_length=7)
    assert shorter.result("full", "max", 5).playlists == N_ALBUMS


def test_report_shapes_table_and_chart(tmp_path: Path) -> None:
    playlists, ids, onehot = _albums()
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((ids.size, 8)).astype(np.float32)
    report = evaluate_continuation(playlists, {"onehot": (ids, onehot), "noise": (ids, noise)},
                                   scores=("max", "mean", "topk5", score_method("cluster", within="mean")))
    data = report.to_dict()
    json.dumps(data)
    assert data["settings"]["scores"] == ["max", "mean", "topk5", "cluster(within=mean, max_clusters=5, "
                                          "min_silhouette=0.25)"]
    assert data["score_methods"]["topk5"] == "topk(k=5)"
    assert data["catalogue"] == ids.size and data["playlists"]["playlists"] == N_ALBUMS
    assert len(data["results"]) == (2 * 4 + 2) * 2 and set(METRICS) <= set(data["results"][0])
    assert data["best_score"]["onehot"] == "max"  # ties go to the first method listed
    assert set(data["score_comparison"]["map"]) == {"onehot", "noise"}
    assert set(report.score_comparison(n=10, metric="ndcg")["noise"]) == {"max", "mean", "topk5",
                                                                          "cluster(within=mean, max_clusters=5, "
                                                                          "min_silhouette=0.25)"}
    table = report.to_markdown().splitlines()
    assert table[0] == "| Model | MAP | nDCG | R-prec | Precision | Recall | Coverage | Novelty |"
    labels = [line.split("|")[1].strip() for line in table[2:]]
    assert labels[:4] == ["most_popular@5", "random@5", "onehot@5 (max)", f"noise@5 ({report.best_score('noise')})"]
    assert len(labels) == 8 and labels[4] == "most_popular@10"
    assert "**1.000**" in table[4]  # onehot's MAP@5 is the best of its group
    assert len(report.to_markdown(best_only=False).splitlines()) == 2 + 2 * (2 + 2 * 4)


def test_top_rows_breaks_ties_by_the_lowest_index() -> None:
    s = np.array([0.5, 0.9, 0.5, 0.9, 0.1, 0.5])
    assert top_rows(s, 3).tolist() == [1, 3, 0]
    assert top_rows(s, 4).tolist() == [1, 3, 0, 2]
    assert top_rows(s, 10).tolist() == [1, 3, 0, 2, 5, 4]
    assert top_rows(np.array([-np.inf, 1.0]), 2).tolist() == [1, 0]


def test_bad_parameters_are_clear_errors() -> None:
    playlists, ids, onehot = _albums()
    emb = {"e": (ids, onehot)}
    cases = [
        ({"top_n": (0, 5)}, "top_n"),
        ({"holdout_fraction": 1.0}, "holdout_fraction"),
        ({"scores": ("median",)}, "unknown score method"),
        ({"scores": ("max", "max")}, "given twice"),
        ({"scores": ()}, "no score method"),
        ({"baselines": ("oracle",)}, "unknown baseline"),
        ({"popularity": "future"}, "popularity"),
        ({"split": "shuffled"}, "split mode"),
        ({"min_length": 11}, "no playlist has at least 11 tracks"),
        ({"min_length": 1}, "min_length"),
    ]
    for kwargs, message in cases:
        with pytest.raises(EvaluationError, match=message):
            evaluate_continuation(playlists, emb, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(EvaluationError, match="nothing to evaluate"):
        evaluate_continuation(playlists, {})
    with pytest.raises(EvaluationError, match="clash with baselines"):
        evaluate_continuation(playlists, {"random": (ids, onehot)})
    with pytest.raises(EvaluationError, match="300 ids but vectors of shape"):
        evaluate_continuation(playlists, {"e": (ids, onehot[:-1])})
    with pytest.raises(EvaluationError, match="not unique"):
        evaluate_continuation(playlists, {"e": (np.zeros(300, np.int64), onehot)})
    with pytest.raises(EvaluationError, match="NaN"):
        evaluate_continuation(playlists, {"e": (ids, onehot * np.nan)})
    with pytest.raises(EvaluationError, match="share no track"):
        evaluate_continuation(playlists, {"e": (ids, onehot), "f": (ids + 10_000, onehot)})


def test_given_playlists_with_repeated_tracks_count_them_once() -> None:
    playlists, ids, onehot = _albums()
    doubled = [EvalPlaylist(p.name, p.tracks + p.tracks[:3]) for p in playlists]
    report = evaluate_continuation(doubled, {"onehot": (ids, onehot)}, scores=("max",), top_n=(5,))
    assert report.result("onehot", "max", 5)["map"] == pytest.approx(1.0)
    assert f"{3 * N_ALBUMS} repeated playlist entries counted once" in report.playlists.report()
