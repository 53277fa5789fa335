"""Seed 000's figure 4: score methods per embedding, one panel per metric."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from soundalike.evaluation.charts import plot_score_comparison


def test_score_comparison_chart_is_written_and_refuses_nothing_to_plot(tmp_path: Path) -> None:
    data = {m: {"onehot": {"max": 1.0, "mean": 0.9}, "noise": {"max": 0.1, "mean": 0.12}} for m in ("map", "ndcg")}
    png = plot_score_comparison(data, tmp_path / "fig4.png", title="test")
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width > 400 and image.height > 200
    many = {m: {f"embedding-{i}": {"max": i / 10, "mean": i / 11} for i in range(9)} for m in ("map", "ndcg")}
    assert plot_score_comparison(many, tmp_path / "many.png").exists()  # 9 embeddings stay legible (wider figure)
    with pytest.raises(ValueError, match="no embedding"):
        plot_score_comparison({"map": {}, "ndcg": {}}, tmp_path / "empty.png")
