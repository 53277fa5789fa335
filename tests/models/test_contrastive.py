"""The contrastive (InfoNCE) encoder: pairs, augmentations, loss, shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import fit_steps
from soundalike.models import build, load_checkpoint
from soundalike.models.base import TrackSet, db_to_unit


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


def _plain(**aug: float) -> torch.nn.Module:
    """A contrastive model with only the given augmentations (gain, noise and masking off)."""
    return build("contrastive", gain_db=0.0, noise=0.0, freq_mask=0, **aug)


def test_pitch_shift_moves_the_bands_by_a_few_bins() -> None:
    spec = torch.full((12, 128, 16), -60.0)
    spec[:, 64] = 0.0  # one bright band
    out = _plain(pitch_shift=3)._augment(spec, np.random.default_rng(0))
    bright = {int(x[:, 0].argmax()) for x in out}
    assert bright <= set(range(61, 68)) and len(bright) > 1
    assert all(int((x[:, 0] > 0.5).sum()) == 1 for x in out)  # moved, not smeared


def test_time_stretch_resamples_a_longer_or_shorter_crop() -> None:
    spec = np.tile(np.arange(2000, dtype=np.float32), (128, 1))  # frame t holds t
    model = _plain(time_stretch=0.25)
    slopes = [float(np.diff(model._crop(spec, np.random.default_rng(i))[0]).mean()) for i in range(20)]
    assert all(0.8 - 1e-3 <= s <= 1.25 + 1e-3 for s in slopes) and max(slopes) - min(slopes) > 0.1
    assert model._crop(spec, np.random.default_rng(0)).shape == (128, 128)


def test_eq_tilt_adds_a_slope_across_bands_and_mixing_only_adds_energy() -> None:
    flat = torch.full((6, 128, 16), -30.0)
    tilted = _plain(eq_tilt_db=12.0)._augment(flat.clone(), np.random.default_rng(0)) * 80.0
    steps = tilted[:, 1:, 0] - tilted[:, :-1, 0]
    assert torch.allclose(steps, steps[:, :1].expand_as(steps), atol=1e-3)  # linear in the band
    assert float(steps.abs().max()) * 127 <= 12.0 + 1e-3 and float(steps.abs().max()) > 0
    rng = np.random.default_rng(1)
    loud, quiet = torch.full((1, 128, 16), -20.0), torch.full((1, 128, 16), -90.0)
    batch = torch.cat([quiet, loud])
    out = _plain(mix=1.0)._augment(batch.clone(), rng)
    assert float(out[0].mean()) > float(db_to_unit(quiet).mean()) - 1e-6  # the quiet excerpt got the loud one in


def test_max_segments_embeds_evenly_spread_segments_under_its_own_id(tmp_path: Path) -> None:
    from soundalike.models import load_checkpoint, save_checkpoint

    model = build("contrastive", channels=(4, 8), embedding_dim=16, projection_dim=8)
    spec = np.random.default_rng(0).normal(-40, 10, (128, 128 + 64 * 40)).astype(np.float32)  # 41 segments
    assert len(model.segments(spec)) == 41
    save_checkpoint(model, tmp_path / "all.pt", epoch=0, history={}, metrics={}, data={})
    model.config.max_segments = 8  # type: ignore[attr-defined]
    segs = model.segments(spec)
    assert len(segs) == 8 and np.array_equal(segs[0], spec[:, :128]) and np.array_equal(segs[-1], spec[:, -128:])
    save_checkpoint(model, tmp_path / "s8.pt", epoch=0, history={}, metrics={}, data={})
    ids = [load_checkpoint(tmp_path / name)[1]["model_id"] for name in ("all.pt", "s8.pt")]
    assert ids[1] == ids[0] + "-s8"  # the same weights, embedding differently: a model id of their own
    pooled, seq = load_checkpoint(tmp_path / "s8.pt")[0].embed_track(spec)
    assert seq.shape == (8, 16) and pooled.shape == (16,)


def test_max_pool2_equals_torch_max_pool_on_odd_and_even_sizes() -> None:
    from soundalike.models.contrastive import max_pool2

    x = torch.from_numpy(np.random.default_rng(3).normal(0, 1, (2, 3, 9, 12)).astype(np.float32))
    for view in (x, x[:, :, :8, :11]):
        assert torch.equal(max_pool2(view), torch.nn.functional.max_pool2d(view, 2))


def test_eval_embedding_with_fused_batch_norm_equals_the_module_stack() -> None:
    """The eval path (batch norm folded into each convolution, ReLU after the pool) gives what the training
    modules give, within float rounding."""
    model = build("contrastive").eval()
    with torch.no_grad():  # give the batch norms statistics and scales of both signs, as a trained model has
        for block in model.convs:
            bn = block[1]
            n = bn.num_features
            bn.running_mean.copy_(torch.linspace(-0.5, 0.5, n))
            bn.running_var.copy_(torch.linspace(0.2, 3.0, n))
            bn.weight.copy_(torch.linspace(-1.5, 2.0, n))
            bn.bias.copy_(torch.linspace(0.3, -0.3, n))
    x = model.prepare(torch.from_numpy(model.segments(tracks(1, 600).inputs[0])))
    model.use_bfloat16(False)  # float32 here; bfloat16 (CPUs with AMX) is the next test's
    with torch.no_grad():
        fused = model.encode(x)
        model.train()
        for block in model.convs:  # batch norm from running statistics, as in eval
            block[1].eval()
        plain = model.encode(x)
    np.testing.assert_allclose(fused.numpy(), plain.numpy(), rtol=1e-5, atol=1e-5)


def test_bfloat16_convolutions_embed_within_a_small_angle_of_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    """CPUs with AMX run the eval-mode conv blocks in bfloat16 (channels last after the first, the 2x2 max on the
    bits as int16): the shipped model's embeddings stay within cosine 0.9999 of float32 (measured: 0.99999); a
    kernel that sums wrongly, or is missing, keeps float32."""
    from soundalike.models import contrastive, precision
    from soundalike.models.pretrained import default_checkpoints

    model, _ = load_checkpoint(default_checkpoints()[-1])
    assert isinstance(model, contrastive.Contrastive)
    x = model.prepare(torch.from_numpy(model.segments(tracks(2, 600).inputs[1])))
    with torch.inference_mode():
        model.use_bfloat16(False)
        exact = model.encode(x)
        model.use_bfloat16(True)
        fast = model.encode(x)
    assert not torch.equal(exact, fast)  # the bfloat16 path ran
    assert float(torch.nn.functional.cosine_similarity(exact, fast).min()) > 0.9999
    monkeypatch.setenv(precision.PRECISION_ENV, "int8")  # the CPU's choice (here: what the environment says)
    assert model.use_bfloat16() is False
    monkeypatch.setenv(precision.PRECISION_ENV, "bfloat16")  # a CPU with AMX ...
    assert model.use_bfloat16() is True
    original = contrastive.fused_block

    def wrong(block: torch.nn.Module, h: torch.Tensor) -> torch.Tensor:
        out = original(block, h)
        return out * 1.2 if out.dtype == torch.bfloat16 else out

    monkeypatch.setattr(contrastive, "fused_block", wrong)  # ... whose bfloat16 kernel sums wrongly
    assert model.use_bfloat16() is False
