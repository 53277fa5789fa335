"""Clothier (seed 003 §III): 1-D conv autoencoder shapes, loss falls, checkpoints, training and embedding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import fit_steps, synth_library, track_set
from soundalike.audio.features import segment_count
from soundalike.library.catalog import Library
from soundalike.models import ModelError, build, load_checkpoint, save_checkpoint
from soundalike.models.base import TrackSet
from soundalike.models.embedding import embed_library
from soundalike.models.training import train

TINY = {"conv_filters": (8, 8, 16, 16), "dense_units": 32}


@pytest.fixture(scope="module")
def lib_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_library(tmp_path_factory.mktemp("clothier"), ["techno", "ambient", "chiptune"], seed=3,
                         presets=("clothier",))


def test_default_model_follows_the_paper() -> None:
    model = build("clothier")
    cfg = model.config
    assert cfg.lr == 0.0002 and cfg.embedding_dim == 256 and cfg.epochs == 50
    assert model.preset.n_mels == 128 and model.preset.segment_frames == 256 and model.preset.segment_hop == 256
    convs = [b.conv for b in model.convs]  # type: ignore[attr-defined]
    assert [c.out_channels for c in convs] == [256, 256, 512, 512]  # + the final version's extra block
    assert convs[0].in_channels == 128 and all(c.kernel_size == (2,) for c in convs)  # bins are channels
    dense = [m for m in model.to_code if isinstance(m, torch.nn.Linear)]  # type: ignore[attr-defined]
    assert [m.out_features for m in dense] == [2048, 2048, 2048, 256] and dense[0].in_features == 512 * 16
    segs = model.segments(np.zeros((128, 1292), np.float32))  # a 30 s preview: back-to-back 256-frame segments
    assert segs.shape == (5, 128, 256)
    x = model.prepare(torch.from_numpy(segs[:2]) - 80 * torch.rand(2, 128, 256))
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    with torch.no_grad():
        assert model.encode(x).shape == (2, 256)
        assert model.reconstruct(x).shape == (2, 128, 256)


def test_config_sets_depth_and_width() -> None:
    text = build("clothier", conv_filters=(8, 8, 16), dense_units=16)  # the 3-block version of the text
    x = torch.rand(3, 128, 256)
    with torch.no_grad():
        assert text.encode(x).shape == (3, 256) and text.reconstruct(x).shape == (3, 128, 256)
    assert text.to_code[0].in_features == 16 * 32  # type: ignore[index]
    with pytest.raises(ModelError, match="do not divide 256 frames"):
        build("clothier", conv_filters=(4,) * 9)


def test_loss_falls_on_real_spectrograms(lib_dir: Path) -> None:
    with Library.open(lib_dir / "lib") as lib:
        tracks = track_set(lib, "clothier")
    model = build("clothier", **TINY, lr=3e-3)
    batch = model.sample_batch(tracks, np.random.default_rng(0), 8)
    assert batch["x"].shape == (8, 128, 256)
    first, last, _ = fit_steps(model, batch, 40)
    assert last < 0.5 * first


def test_sampler_takes_back_to_back_segments() -> None:
    model = build("clothier", **TINY)
    spec = np.random.default_rng(1).normal(-40, 10, (128, 800)).astype(np.float32)  # 3 whole segments
    x = model.sample_batch(TrackSet([1], [spec]), np.random.default_rng(0), 12)["x"]
    grid = model.prepare(torch.from_numpy(model.segments(spec)))
    assert all(any(torch.equal(row, g) for g in grid) for row in x)
    assert model.batches_per_epoch(64) == 10  # without setup_training: 5 segments (30 s) per track, batch 32


def test_checkpoint_round_trip_gives_identical_embeddings(tmp_path: Path) -> None:
    model = build("clothier", **TINY).eval()
    x = model.prepare(torch.rand(3, 128, 256) * -80)
    save_checkpoint(model, tmp_path / "c.pt")
    again, payload = load_checkpoint(tmp_path / "c.pt")
    assert payload["model_id"].startswith("clothier-") and payload["config"]["conv_filters"] == (8, 8, 16, 16)
    with torch.no_grad():
        np.testing.assert_array_equal(model.encode(x).numpy(), again.encode(x).numpy())


def test_train_and_embed_the_library(lib_dir: Path, tmp_path: Path) -> None:
    with Library.open(lib_dir / "lib") as lib:
        result = train(lib, "clothier", tmp_path / "c.pt", epochs=2, batch_size=4, plots=False, **TINY)
        assert len(result.history["train_loss"]) == 2
        model, payload = load_checkpoint(result.checkpoint)
        assert payload["data"]["segments"] == 9  # one whole 256-frame segment per 8 s track
        model_id, count = embed_library(lib, result.checkpoint)
        assert count == 9 and model_id == result.model_id
        for track in lib.tracks():
            segs = lib.segments(track.id, model_id)
            n_frames = lib.spectrogram(track.id, "clothier").shape[1]
            assert segs is not None and segs.shape == (segment_count(n_frames, 256, 256), 256)
        ids, vectors = lib.vectors(model_id)
        assert vectors.shape == (9, 256) and np.isfinite(vectors).all()
