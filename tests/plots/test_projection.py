"""2-D projections: one PCA and one t-SNE set-up for the server's map and the figures."""

from __future__ import annotations

import numpy as np

from soundalike.plots.projection import pca_2d, tsne_2d


def test_pca_is_deterministic_and_handles_tiny_inputs() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 8)) @ np.diag([5, 3, 1, 1, 1, 1, 1, 1])
    xy = pca_2d(x)
    assert xy.shape == (50, 2) and np.var(xy[:, 0]) > np.var(xy[:, 1])
    np.testing.assert_array_equal(pca_2d(x), xy)  # no flips between runs
    np.testing.assert_allclose(np.abs(pca_2d(x * 1.0)), np.abs(xy))
    assert pca_2d(np.zeros((0, 4))).shape == (0, 2) and not pca_2d(np.ones((1, 4))).any()
    one_column = pca_2d(rng.standard_normal((6, 1)))
    assert one_column.shape == (6, 2) and not one_column[:, 1].any()


def test_tsne_separates_clusters_and_falls_back_to_pca_below_five_rows() -> None:
    rng = np.random.default_rng(1)
    x = np.vstack([rng.normal(0, 0.1, (15, 6)), rng.normal(3, 0.1, (15, 6))])
    xy = tsne_2d(x, seed=0)
    a, b = xy[:15].mean(axis=0), xy[15:].mean(axis=0)
    spread = max(xy[:15].std(axis=0).max(), xy[15:].std(axis=0).max())
    assert np.linalg.norm(a - b) > 3 * spread
    np.testing.assert_array_equal(tsne_2d(x[:4]), pca_2d(x[:4]))
