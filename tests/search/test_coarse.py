"""The coarse filter ranks IVF cells exactly as faiss's flat quantizer does, and an index searched through it
answers as before."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from soundalike.search import ann, coarse

from .test_ann import clustered


def _centroids(n: int, d: int, seed: int) -> np.ndarray:
    c = clustered(n, d=d, seed=seed)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


@pytest.mark.parametrize("nprobe", [1, 4, 16])
def test_cells_equal_the_flat_quantizer(nprobe: int) -> None:
    cents = _centroids(512, 192, seed=1)
    flat = faiss.IndexFlatIP(192)
    flat.add(cents)
    rng = np.random.default_rng(2)
    near = cents[rng.integers(0, 512, 100)] + 0.1 * rng.standard_normal((100, 192)).astype(np.float32)
    far = rng.standard_normal((100, 192)).astype(np.float32)  # queries unlike any centroid: many cells in doubt
    queries = np.vstack([near, far])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    want_scores, want_cells = flat.search(queries, nprobe)
    scores, cells = coarse.CoarseFilter(cents).search(queries, nprobe)
    assert np.array_equal(cells, want_cells)
    assert np.allclose(scores, want_scores, atol=1e-5)


def test_more_cells_than_exist_are_every_cell() -> None:
    cents = _centroids(40, 96, seed=3)
    scores, cells = coarse.CoarseFilter(cents).search(cents[:2], 100)
    assert cells.shape == (2, 40) and sorted(cells[0].tolist()) == list(range(40))
    assert cells[0, 0] == 0 and cells[1, 0] == 1 and np.all(np.diff(scores, axis=1) <= 0)


def test_an_index_searched_through_it_answers_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(coarse, "MIN_WORK", 0)  # a small index, so that the filter is used
    x = clustered(6000, d=128, seed=5)
    ids = np.arange(6000, dtype=np.int64) * 2 + 7
    index = ann.AnnIndex.build(ids, x, kind="ivf", nlist=64, nprobe=2, codec="sq8", seed=0)
    queries = x[::60] + 0.05 * np.random.default_rng(6).standard_normal((100, 128)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    before = index.search(queries, 12)
    cells_before = index.probed_cells(queries, 3)
    assert index.speed_up_cells() and index._coarse is not None
    after = index.search(queries, 12)
    assert np.array_equal(after[0], before[0]) and np.allclose(after[1], before[1], atol=1e-5)
    assert np.array_equal(index.probed_cells(queries, 3), cells_before)
    assert np.array_equal(index.search(queries, 12, nprobe=8)[0], ann.AnnIndex.build(
        ids, x, kind="ivf", nlist=64, nprobe=2, codec="sq8", seed=0).search(queries, 12, nprobe=8)[0])


def test_not_used_where_it_cannot_gain() -> None:
    x = clustered(500, d=32, seed=7)
    ids = np.arange(500, dtype=np.int64)
    assert not ann.AnnIndex.build(ids, x, kind="flat").speed_up_cells()
    assert not ann.AnnIndex.build(ids, x, kind="ivf", nlist=8, nprobe=2, codec="sq8").speed_up_cells()
    assert not coarse.CoarseFilter.worthwhile(4096, 48) and coarse.CoarseFilter.worthwhile(4096, 1888)
