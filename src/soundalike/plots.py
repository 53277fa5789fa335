"""Plots people would rather see than read. Kept apart so the core never imports matplotlib."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

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


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def loss_curve(history: dict[str, list[float]], out: str | os.PathLike[str], *, title: str = "Training") -> Path:
    """Training and validation loss per epoch, saved as PNG; returns the path."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=110)
    for key, style in (("train_loss", "-o"), ("val_loss", "-s")):
        values = np.asarray(history.get(key, []), dtype=float)
        if values.size and np.isfinite(values).any():
            ax.plot(np.arange(1, values.size + 1), values, style, ms=3, label=key.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return Path(out)


def reconstruction(inputs: np.ndarray, outputs: np.ndarray, out: str | os.PathLike[str], *,
                   title: str = "Input vs reconstruction") -> Path:
    """Spectrogram patches ``(n, n_mels, frames)`` beside their reconstructions (as seed 003 fig. 2), PNG."""
    plt = _pyplot()
    n = len(inputs)
    fig, axes = plt.subplots(n, 2, figsize=(8, 2.6 * n), dpi=100, squeeze=False)
    for i in range(n):
        for j, (img, label) in enumerate(((inputs[i], "input"), (outputs[i], "reconstruction"))):
            ax = axes[i][j]
            ax.imshow(img, origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=1)
            ax.set_title(f"{label} {i + 1}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return Path(out)
