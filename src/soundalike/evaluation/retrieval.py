"""Same-label retrieval (same album, same artist, same style): precision@k and MAP@k per query, averaged (the
formulas of :func:`soundalike.evaluation.metrics.metrics_from_hits`).

Every track is a query; the other tracks are ranked by cosine similarity; a hit shares the query's label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .metrics import metrics_from_hits


@dataclass
class RetrievalScores:
    """Mean precision@k and MAP@k over queries, with per-label means."""

    k: int
    precision_at_k: float
    map_at_k: float
    queries: int
    per_label: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready scores."""
        return {"k": self.k, f"precision_at_{self.k}": round(self.precision_at_k, 4),
                f"map_at_{self.k}": round(self.map_at_k, 4), "queries": self.queries,
                "precision_per_label": {k: round(v, 4) for k, v in self.per_label.items()}}


def label_retrieval(unit_vectors: np.ndarray, labels: Sequence[str], k: int = 10) -> RetrievalScores:
    """Leave-one-out retrieval of same-label tracks by cosine similarity of unit-length ``unit_vectors``.

    Queries whose label no other track shares are skipped (nothing to find).
    """
    x = np.asarray(unit_vectors, dtype=np.float32)
    lab = np.asarray(labels)
    n = len(lab)
    if x.shape[0] != n:
        raise ValueError(f"{x.shape[0]} vectors but {n} labels")
    precisions: list[float] = []
    aps: list[float] = []
    by_label: dict[str, list[float]] = {}
    for start in range(0, n, 1024):
        sims = x[start:start + 1024] @ x.T
        for row, i in enumerate(range(start, min(start + 1024, n))):
            relevant = int((lab == lab[i]).sum()) - 1
            if relevant <= 0:
                continue
            s = sims[row].copy()
            s[i] = -np.inf
            top = np.argpartition(-s, min(k, n - 1) - 1)[: min(k, n - 1)]
            top = top[np.argsort(-s[top], kind="stable")]
            scores = metrics_from_hits((lab[top] == lab[i]).astype(np.float64), relevant, k)
            p = scores["precision"]
            precisions.append(p)
            aps.append(scores["map"])
            by_label.setdefault(str(lab[i]), []).append(p)
    return RetrievalScores(
        k=k,
        precision_at_k=float(np.mean(precisions)) if precisions else 0.0,
        map_at_k=float(np.mean(aps)) if aps else 0.0,
        queries=len(precisions),
        per_label={key: float(np.mean(v)) for key, v in sorted(by_label.items())},
    )
