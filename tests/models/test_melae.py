"""MelAE (seed 000 appendix table 6): shapes, and the loss falls on real spectrograms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from helpers import fit_steps, track_set
from soundalike.library.catalog import Library
from soundalike.models import build


def small(name: str = "melae", **kw: object):  # type: ignore[no-untyped-def]
    return build(name, batch_size=8, **kw)


def test_melae_shapes_follow_table_6() -> None:
    model = build("melae")
    assert model.config.lr == 0.0008 and model.config.embedding_dim == 256 and model.config.epochs == 5
    patches = model.segments(np.zeros((128, 1296), np.float32))
    assert patches.shape == (14, 128, 128)  # 000 §4.2.1
    x = model.prepare(torch.from_numpy(patches))
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    code = model.encode(x)
    assert code.shape == (14, 256)
    assert model.reconstruct(x).shape == (14, 128, 128)
    assert model.encoder_convs[-1].kernel_size == 2 and model.to_code.in_features == 16 * 16 * 16
    pooled, seq = model.embed_track(np.random.default_rng(0).normal(-40, 10, (128, 1296)).astype(np.float32))
    assert pooled.shape == (256,) and seq.shape == (14, 256)
    np.testing.assert_allclose(pooled, seq.mean(axis=0), rtol=1e-5, atol=1e-5)


def test_melae_loss_falls_on_real_spectrograms(lib_dir: Path) -> None:
    with Library.open(lib_dir / "lib") as lib:
        tracks = track_set(lib)
    model = small()
    first, last, _ = fit_steps(model, model.sample_batch(tracks, np.random.default_rng(0), 8), 25)
    assert last < first - 0.01
