"""A compact index (8-bit codes) re-scores its candidates with the stored float vectors: the codes alone miss a fifth
of the exact top 10 of tightly clustered tracks, the re-ranked answer (nearly) none; decoded in one batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from soundalike.audio.analysis import Tags
from soundalike.audio.descriptors import DESCRIPTOR_DIM
from soundalike.library.catalog import DESCRIPTOR_MODEL, Library, NewTrack
from soundalike.recommend import continue_playlist, path_between, similar
from soundalike.recommend.paths import _slerp
from soundalike.recommend.scoring import score_method
from soundalike.search.index import VectorIndex


def tight_clusters(lib: Library, n: int = 3000, seed: int = 0) -> None:
    """``n`` tracks in 30 clusters whose members differ by little: their cosines to a query lie close together."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((30, DESCRIPTOR_DIM)) * 3
    lib.add_tracks([NewTrack(path=f"/m/{i}.flac", audio_hash=f"h{i}", duration=60.0,
                             tags=Tags(artist=f"A{i}", title=f"T{i}"),
                             vectors={DESCRIPTOR_MODEL: centres[i % 30] + 0.3 * rng.standard_normal(DESCRIPTOR_DIM)})
                    for i in range(n)])


def test_a_compact_index_reranks_with_the_stored_vectors(tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        tight_clusters(lib)
        index = VectorIndex.from_library(lib, DESCRIPTOR_MODEL, ann=True, codec="sq8")
        calibration = index.ann.params.calibration  # nprobe chosen for the re-ranked answer, as searches give it
        assert index.compact and calibration["reranked"] == 40 and calibration["recall"] >= 0.97
        index.ann.params.nprobe = index.ann.params.nlist  # every cell: only the codes stand between it and exact
        ids, floats = index.exact_vectors(lib, index.ids)
        assert np.array_equal(ids, index.ids)
        coded = reranked = 0
        for row in range(0, len(ids), 60):
            tid, q = int(ids[row]), floats[row]
            scores = floats @ q
            scores[row] = -np.inf
            truth = set(ids[np.argsort(-scores, kind="stable")[:10]].tolist())
            got_codes, _ = index.search(q, 10, exclude={tid})
            got, got_scores = index.search(q, 10, exclude={tid}, lib=lib)
            coded += len(truth & set(got_codes.tolist()))
            reranked += len(truth & set(got.tolist()))
            np.testing.assert_allclose(got_scores, floats[np.searchsorted(ids, got)] @ q, atol=1e-5)  # exact scores
            assert list(got_scores) == sorted(got_scores, reverse=True)
        assert coded < 450 and reranked >= 498  # 50 queries: the codes alone miss a fifth, re-ranked nearly none


def test_similar_on_a_compact_index_answers_the_exact_neighbours(tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        tight_clusters(lib, 1200, seed=1)
        compact = VectorIndex.from_library(lib, DESCRIPTOR_MODEL, ann=True, codec="sq8")
        compact.ann.params.nprobe = compact.ann.params.nlist
        ids, floats = compact.exact_vectors(lib, compact.ids)
        for tid in (1, 2, 500):
            q, results = similar(lib, str(tid), 10, index=compact)
            np.testing.assert_allclose(q.vector, floats[np.searchsorted(ids, tid)], atol=1e-6)  # not the codes
            scores = floats @ q.vector
            scores[np.searchsorted(ids, tid)] = -np.inf
            want = ids[np.argsort(-scores, kind="stable")[:10]].tolist()
            assert [r.track.id for r in results] == want


def test_continue_on_a_compact_index_answers_the_exact_continuation(tmp_path: Path) -> None:
    """Candidates ranked by their codes, the best re-scored from the stored floats: with every cell scanned, the
    answer and its scores are those of exact scoring, for a playlist of one cluster and one across clusters."""
    with Library.open(tmp_path / "lib") as lib:
        tight_clusters(lib, 1200, seed=3)
        compact = VectorIndex.from_library(lib, DESCRIPTOR_MODEL, ann=True, codec="sq8")
        compact.ann.params.nprobe = compact.ann.params.nlist
        ids, floats = compact.exact_vectors(lib, compact.ids)
        for playlist in ([1, 31, 61, 91, 121], [1, 2, 3, 4]):  # tracks i, i + 30, ... share a cluster
            for score in ("max", "mean", "topk"):
                pq, results = continue_playlist(lib, playlist, 10, score=score, index=compact)
                seeds = np.vstack([q.vector for q in pq.queries])
                np.testing.assert_allclose(seeds, floats[np.searchsorted(ids, playlist)], atol=1e-6)  # not codes
                scores = score_method(score)(seeds, floats)
                scores[np.searchsorted(ids, playlist)] = -np.inf
                want = ids[np.argsort(-scores, kind="stable")[:10]]
                assert [r.track.id for r in results] == want.tolist(), (playlist, score)
                np.testing.assert_allclose([r.score for r in results], scores[np.searchsorted(ids, want)],
                                           atol=1e-5)


def test_a_path_on_a_compact_index_takes_the_exact_nearest_unused_track_at_each_waypoint(tmp_path: Path) -> None:
    """Every waypoint searched in one batch, the candidates re-scored from the stored floats in one read: each step
    is the unused track nearest its waypoint by the exact vectors."""
    with Library.open(tmp_path / "lib") as lib:
        tight_clusters(lib, 1200, seed=4)
        compact = VectorIndex.from_library(lib, DESCRIPTOR_MODEL, ann=True, codec="sq8")
        compact.ann.params.nprobe = compact.ann.params.nlist
        ids, floats = compact.exact_vectors(lib, compact.ids)
        a, b, steps = path_between(lib, "1", "2", 12, index=compact)
        used = {1, 2}
        for i, step in enumerate(steps[1:-1], start=1):
            scores = floats @ _slerp(a.vector, b.vector, i / 11)
            scores[np.searchsorted(ids, sorted(used))] = -np.inf
            best = int(ids[int(np.argmax(scores))])
            assert step.track.id == best and abs(step.score - scores.max()) < 1e-5
            used.add(best)
        assert [s.track.id for s in steps][::11] == [1, 2] and len(used) == 12


def test_vectors_are_decoded_in_one_batch_as_one_by_one(tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        tight_clusters(lib, 1200, seed=2)
        compact = VectorIndex.from_library(lib, DESCRIPTOR_MODEL, ann=True, codec="sq8")
        pick = compact.ids[::7][::-1]
        batch = compact.vectors_of(pick)
        single = np.vstack([compact.ann.reconstruct([int(t)]) for t in pick])
        np.testing.assert_array_equal(batch, single)
        assert compact.has([int(pick[0]), 10**9]).tolist() == [True, False]
        assert compact.ann.reconstruct([]).shape == (0, compact.embedding.dim)
