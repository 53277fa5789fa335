"""Charts of evaluation results (matplotlib, Agg backend, PNG). Imported on demand, so evaluation needs no display."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .protocol import METRIC_LABELS, ContinuationReport


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_score_comparison(data: ContinuationReport | Mapping[str, Mapping[str, Mapping[str, float]]],
                          out: str | os.PathLike[str], *, n: int | None = None,
                          metrics: Sequence[str] = ("map", "ndcg"), title: str | None = None) -> Path:
    """Seed 000's figure 4: one panel per metric, bars per score method, one colour per embedding; PNG path back.

    ``data`` is a report (its :meth:`~ContinuationReport.score_comparison` at ``n``, default the smallest N) or
    ``{metric: {embedding: {score method: value}}}``.
    """
    if isinstance(data, ContinuationReport):
        n = data.top_n[0] if n is None else n
        values = {m: data.score_comparison(n=n, metric=m) for m in metrics}
    else:
        values = {m: {s: dict(v) for s, v in data[m].items()} for m in metrics}
    systems = list(dict.fromkeys(s for m in metrics for s in values[m]))
    methods = list(dict.fromkeys(sc for m in metrics for s in values[m].values() for sc in s))
    if not systems or not methods:
        raise ValueError("no embedding x score-method results to plot")
    plt = _pyplot()
    crowded = len(systems) > 4  # many bars per group: labels turned upright so they do not overlap
    wide = 4.2 + (0.35 * (len(systems) - 4) if crowded else 0)
    fig, axes = plt.subplots(1, len(metrics), figsize=(wide * len(metrics) + 1, 3.8 + crowded * 0.6), dpi=110,
                             squeeze=False)
    width = 0.8 / len(systems)
    x = np.arange(len(methods))
    cmap = plt.get_cmap("tab10")
    for ax, metric in zip(axes[0], metrics, strict=True):
        for i, system in enumerate(systems):
            heights = [values[metric].get(system, {}).get(sc, np.nan) for sc in methods]
            bars = ax.bar(x + (i - (len(systems) - 1) / 2) * width, heights, width, label=system, color=cmap(i % 10))
            ax.bar_label(bars, fmt="%.2f" if crowded else "%.3f", fontsize=6 if crowded else 7, padding=1,
                         rotation=90 if crowded else 0)
        ax.set_xticks(x, methods)
        ax.set_title(f"{METRIC_LABELS.get(metric, metric)}" + (f"@{n}" if n is not None else ""))
        ax.set_xlabel("score method")
        ax.margins(y=0.25 if crowded else 0.15)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, frameon=False, loc="lower center", ncol=min(len(systems), 4))
    fig.suptitle(title or "Score methods" + (f", top@{n}" if n is not None else ""))
    rows = -(-len(systems) // 4)
    fig.tight_layout(rect=(0, 0.05 + 0.045 * rows, 1, 1))
    path = Path(out)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
