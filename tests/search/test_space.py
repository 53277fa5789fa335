"""The search space of an embedding: per-part z-scoring, unit length and weights; sequences; saved statistics."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.search.space import Embedding, SpaceError, fit_embedding, model_parts, sorted_common


def _fused() -> tuple[Embedding, np.ndarray]:
    rng = np.random.default_rng(1)
    raw = np.hstack([rng.normal(50, 10, (30, 4)), rng.normal(0, 1, (30, 3)) + 7])
    return fit_embedding("descriptor+learned-1", raw, [4, 3]), raw


def test_parts_count_equally_in_the_cosine() -> None:
    embedding, raw = _fused()
    assert model_parts(embedding.model) == ["descriptor", "learned-1"] and embedding.dim == 7
    v = embedding.transform(raw)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-6)
    cols = embedding.slices()
    for part in embedding.parts:  # each block is a unit vector scaled by sqrt(1/2)
        np.testing.assert_allclose(np.linalg.norm(v[:, cols[part.model]], axis=1), np.sqrt(0.5), rtol=1e-5)
    # the cosine of two tracks is the mean of their parts' cosines
    d = embedding.parts[0].transform(raw[:2, :4]) / np.sqrt(0.5)
    m = embedding.parts[1].transform(raw[:2, 4:]) / np.sqrt(0.5)
    assert float(v[0] @ v[1]) == pytest.approx(0.5 * float(d[0] @ d[1]) + 0.5 * float(m[0] @ m[1]), rel=1e-5)


def test_sequence_transforms_segments_like_the_pooled_part_and_repeats_the_rest() -> None:
    embedding, raw = _fused()
    v = embedding.transform(raw[:1])[0]
    segments = np.random.default_rng(2).normal(7, 1, (5, 3))
    seq = embedding.sequence(v, {"learned-1": segments})
    cols = embedding.slices()
    assert seq.shape == (5, 7)
    np.testing.assert_allclose(seq[:, cols["descriptor"]], np.tile(v[cols["descriptor"]], (5, 1)), rtol=1e-6)
    np.testing.assert_allclose(seq[:, cols["learned-1"]], embedding.parts[1].transform(segments), rtol=1e-6)
    with pytest.raises(SpaceError, match="no segment sequence"):
        embedding.sequence(v, {"learned-1": None})
    assert embedding.has_sequences() and not fit_embedding("descriptor", raw[:, :4], [4]).has_sequences()


def test_statistics_round_trip_and_bad_payloads() -> None:
    embedding, raw = _fused()
    again = Embedding.from_json(embedding.to_json())
    np.testing.assert_array_equal(again.transform(raw), embedding.transform(raw))
    assert (again.built_on, again.kind) == (30, "flat")
    broken = embedding.to_json()
    broken["parts"][0]["mean"] = [1.0]
    with pytest.raises(ValueError):
        Embedding.from_json(broken)
    with pytest.raises(SpaceError, match="dimension 7"):
        embedding.transform(raw[:, :5])


def test_sorted_common_is_intersect1d_for_sorted_unique_ids() -> None:
    rng = np.random.default_rng(5)
    for n, m in ((0, 5), (5, 0), (1, 1), (50, 80), (300, 40)):
        a = np.sort(rng.choice(500, n, replace=False)).astype(np.int64)
        b = np.sort(rng.choice(500, m, replace=False)).astype(np.int64)
        got = sorted_common(a, b)
        np.testing.assert_array_equal(got, np.intersect1d(a, b))
        assert got.dtype == np.int64
    assert sorted_common(np.array([1, 2, 3]), np.array([7, 8])).tolist() == []  # every value beyond b's last
