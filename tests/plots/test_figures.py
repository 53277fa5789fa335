"""Figures saved as PNG: library and segment maps, loss curves, reconstructions, filters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from soundalike.plots.figures import filters_image, library_map, loss_curve, reconstruction, segment_map


def _png(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def test_every_figure_is_a_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((30, 8))
    labels = ["a"] * 10 + ["b"] * 10 + ["c"] * 10
    for method in ("pca", "tsne"):
        library_map(vectors, labels, tmp_path / f"map-{method}.png", method=method)
        assert _png(tmp_path / f"map-{method}.png")[0] > 500
    assert _png(segment_map([rng.standard_normal((6, 8)) for _ in range(3)], ["x", "y", "z"], tmp_path / "s.png"))
    assert _png(loss_curve({"train_loss": [3, 2, 1], "val_loss": [3.5, 2.5, 2]}, tmp_path / "loss.png"))
    patches = rng.random((2, 16, 20))
    assert _png(reconstruction(patches, patches * 0.9, tmp_path / "rec.png"))
    width, _ = _png(filters_image(rng.standard_normal((8, 16, 4)), tmp_path / "filters.png"))
    assert width >= 600
