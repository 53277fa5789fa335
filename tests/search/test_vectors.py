"""The one L2 normalisation and the one z-scoring."""

from __future__ import annotations

import numpy as np

from soundalike.search.vectors import standardise, unit_rows


def test_unit_rows_on_any_leading_shape_keeps_zero_rows() -> None:
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(unit_rows(x), [[0.6, 0.8], [0.0, 0.0]])
    batch = np.random.default_rng(0).standard_normal((3, 5, 7))
    out = unit_rows(batch, np.float64)
    assert out.dtype == np.float64 and out.shape == batch.shape
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0)
    np.testing.assert_allclose(unit_rows(np.array([2.0, 0.0])), [1.0, 0.0])  # one vector
    assert unit_rows(x).dtype == np.float32 and unit_rows(x).flags.c_contiguous


def test_standardise_floors_the_spread_of_constant_columns() -> None:
    x = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    z, mean, std = standardise(x)
    np.testing.assert_allclose(mean, [3.0, 5.0])
    np.testing.assert_allclose(std, [np.sqrt(8 / 3), 1e-6], rtol=1e-6)
    np.testing.assert_allclose(z[:, 0].mean(), 0.0, atol=1e-7)
    assert np.all(z[:, 1] == 0) and z.dtype == np.float32
