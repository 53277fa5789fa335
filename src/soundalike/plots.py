"""Plots people would rather see than read. Kept apart so the core never imports matplotlib."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np


def library_map(unit_vectors: np.ndarray, labels: Sequence[str], out: str | os.PathLike[str], *,
                title: str = "Library map", method: str = "pca", seed: int = 0) -> None:
    """A 2-D map (PCA or t-SNE) of track vectors, one colour per label, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.asarray(unit_vectors, dtype=np.float64)
    if method == "tsne":
        from sklearn.manifold import TSNE

        xy = TSNE(n_components=2, perplexity=min(30.0, max(2.0, (len(x) - 1) / 3)), random_state=seed,
                  init="pca").fit_transform(x)
    else:
        from sklearn.decomposition import PCA

        xy = PCA(n_components=2, random_state=seed).fit_transform(x)
    names = sorted(set(labels))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(8, 6.5), dpi=110)
    lab = np.asarray(labels)
    for i, name in enumerate(names):
        m = lab == name
        ax.scatter(xy[m, 0], xy[m, 1], s=28, color=cmap(i % cmap.N), label=name, alpha=0.85, edgecolors="none")
    ax.set_title(title)
    ax.set_xlabel(f"{method.upper()} 1")
    ax.set_ylabel(f"{method.upper()} 2")
    ax.legend(fontsize=8, loc="best", frameon=False, ncol=2 if len(names) > 8 else 1)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
