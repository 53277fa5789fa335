"""The project's one L2 normalisation and one z-scoring: pure functions of arrays (used by search, sequence
distances, evaluation and the maps alike)."""

from __future__ import annotations

import numpy as np


def unit_rows(x: np.ndarray, dtype: type[np.floating] = np.float32) -> np.ndarray:
    """Rows (the last axis) scaled to unit length, as a contiguous ``dtype`` array; zero rows stay zero."""
    arr = np.ascontiguousarray(x, dtype=dtype)
    norms = np.sqrt(np.einsum("...i,...i->...", arr, arr))[..., None]
    return arr / np.where(norms > 0, norms, 1.0)


def standardise(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Z-score columns; returns ``(standardised, mean, std)`` as float32 (std floored at 1e-6)."""
    x = np.asarray(vectors, dtype=np.float64)
    mean = x.mean(axis=0)
    std = np.maximum(x.std(axis=0), 1e-6)
    return ((x - mean) / std).astype(np.float32), mean.astype(np.float32), std.astype(np.float32)
