"""Same-label retrieval: precision@k and MAP@k by the metrics module's formulas."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.evaluation import metrics as M
from soundalike.evaluation.retrieval import label_retrieval


def test_hand_checked_retrieval_and_the_shared_ap_formula() -> None:
    # Four tracks on a circle: 0 and 1 close, 2 and 3 close; the labels pair 0 with 3 and 1 with 2.
    angles = np.deg2rad([0, 10, 90, 100])
    x = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    labels = ["x", "y", "y", "x"]
    scores = label_retrieval(x, labels, k=2)
    per_query = []
    for i in range(4):
        order = [j for j in np.argsort(-(x @ x[i]), kind="stable") if j != i][:2]
        hits = np.array([labels[j] == labels[i] for j in order], dtype=float)
        per_query.append(M.metrics_from_hits(hits, 1, 2))
    assert scores.queries == 4
    assert scores.precision_at_k == pytest.approx(np.mean([q["precision"] for q in per_query]))
    assert scores.map_at_k == pytest.approx(np.mean([q["map"] for q in per_query]))
    assert set(scores.per_label) == {"x", "y"}


def test_queries_without_a_partner_are_skipped_and_shapes_checked() -> None:
    x = np.eye(3, dtype=np.float32)
    assert label_retrieval(x, ["a", "b", "c"]).queries == 0
    with pytest.raises(ValueError, match="3 vectors but 2 labels"):
        label_retrieval(x, ["a", "b"])
