"""The contrastive (InfoNCE) encoder: pairs, augmentations, loss, shapes."""

from __future__ import annotations

import numpy as np
import torch

from helpers import fit_steps
from soundalike.models import build
from soundalike.models.base import TrackSet


def tracks(n: int = 6, frames: int = 400) -> TrackSet:
    rng = np.random.default_rng(0)
    # Each track has its own spectral shape, so excerpts of one track resemble each other.
    shapes = [rng.normal(-50, 15, (128, 1)) for _ in range(n)]
    return TrackSet(list(range(n)), [(s + rng.normal(0, 3, (128, frames))).astype(np.float32) for s in shapes])


def test_batch_holds_two_views_of_distinct_tracks() -> None:
    model = build("contrastive")
    batch = model.sample_batch(tracks(), np.random.default_rng(1), 4)
    assert batch["a"].shape == batch["b"].shape == (4, 128, 128)
    assert float(batch["a"].min()) >= 0 and float(batch["a"].max()) <= 1
    assert not torch.equal(batch["a"], batch["b"])  # independent crops and augmentations
    assert model.sample_batch(tracks(3), np.random.default_rng(1), 8)["a"].shape[0] == 3  # never repeats a track


def test_loss_falls_and_pairs_are_found() -> None:
    model = build("contrastive", channels=(8, 16, 16, 32), embedding_dim=32, lr=3e-3)
    data = tracks()
    batch = model.sample_batch(data, np.random.default_rng(2), 6)
    first, last, info = fit_steps(model, batch, 30)
    assert last < first - 0.3 and info["pair_accuracy"] > 0.5


def test_embedding_shapes_and_pooling() -> None:
    model = build("contrastive").eval()
    pooled, seq = model.embed_track(tracks(1, 1292).inputs[0])
    assert seq.shape == (1 + (1292 - 128) // 64, 256) and pooled.shape == (256,)
    np.testing.assert_allclose(pooled, seq.mean(axis=0), rtol=1e-5, atol=1e-5)
