"""Figures people would rather see than read, saved as PNG: library and segment maps, training curves,
reconstructions, filters."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .projection import pca_2d, tsne_2d


def library_map(unit_vectors: np.ndarray, labels: Sequence[str], out: str | os.PathLike[str], *,
                title: str = "Library map", method: str = "pca", seed: int = 0) -> None:
    """A 2-D map (PCA or t-SNE) of track vectors, one colour per label, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.asarray(unit_vectors, dtype=np.float64)
    xy = tsne_2d(x, seed) if method == "tsne" else pca_2d(x, seed)
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


def filters_image(filters: np.ndarray, out: str | os.PathLike[str], *, title: str = "First-layer filters",
                  max_filters: int = 64) -> Path:
    """First-layer filters ``(n, height, width)`` side by side, as seed 004 §6: negative red, positive blue, zero
    white; frequency (or kernel height) increases upwards. Each filter is scaled to its own largest magnitude."""
    plt = _pyplot()
    f = np.asarray(filters, dtype=np.float32)[:max_filters]
    n, h, w = f.shape
    scale = np.abs(f).reshape(n, -1).max(axis=1)[:, None, None] + 1e-12
    gap = np.full((h, 1), np.nan, dtype=np.float32)
    strip = np.hstack([part for i in range(n) for part in ((f[i] / scale[i]), gap)][:-1])
    fig_w = min(18.0, max(6.0, 0.12 * strip.shape[1] + 1))
    fig, ax = plt.subplots(figsize=(fig_w, 3.2 if h > 8 else 2.0), dpi=110)
    cmap = plt.get_cmap("RdBu").with_extremes(bad="#5a0000")  # dark red separators, as in the seed's figure
    ax.imshow(strip, origin="lower", aspect="auto", cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks([(w + 1) * i + (w - 1) / 2 for i in range(n)], [str(i) for i in range(n)], fontsize=6)
    ax.set_ylabel("mel bin" if h > 8 else "kernel row")
    ax.set_xlabel("filter (each: time →)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return Path(out)


def segment_map(sequences: Sequence[np.ndarray], labels: Sequence[str], out: str | os.PathLike[str], *,
                title: str = "Segment embeddings (t-SNE)", seed: int = 0) -> Path:
    """Seed 000 fig. 2: a t-SNE of every segment embedding of a few tracks, one colour per track, a black star at
    each track's centre of mass (the mean of its segments' map positions)."""
    plt = _pyplot()
    seqs = [np.asarray(s, dtype=np.float64) for s in sequences]
    x = np.vstack(seqs)
    owner = np.concatenate([np.full(len(s), i) for i, s in enumerate(seqs)])
    xy = tsne_2d(x, seed)
    cmap = plt.get_cmap("tab10" if len(seqs) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(8, 6.5), dpi=110)
    for i, label in enumerate(labels):
        pts = xy[owner == i]
        ax.scatter(pts[:, 0], pts[:, 1], s=16, color=cmap(i % cmap.N), alpha=0.8, label=label, edgecolors="none")
        centre = pts.mean(axis=0)
        ax.scatter([centre[0]], [centre[1]], marker="*", s=180, color="black", edgecolors="white", linewidths=0.6)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, loc="best", frameon=False, ncol=2 if len(seqs) > 8 else 1)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return Path(out)
