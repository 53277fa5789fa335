"""Stollery (seed 002 §3.2): phase-1 autoencoder, phase-2 triplets (sampler, freezing), checkpoints, embedding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import fit_steps, synth_library, track_set
from soundalike.audio.features import log_mel
from soundalike.library.catalog import Library
from soundalike.models import ModelError, build, load_checkpoint, save_checkpoint
from soundalike.models.base import TrackSet
from soundalike.models.embedding import embed_library
from soundalike.models.stollery import Stollery, duplicate_groups
from soundalike.models.training import last_checkpoint_path, train


@pytest.fixture(scope="module")
def lib_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_library(tmp_path_factory.mktemp("stollery"), ["techno", "ambient", "chiptune"], seed=5,
                         presets=("stollery",))


def model(**kw: object) -> Stollery:
    m = build("stollery", **kw)
    assert isinstance(m, Stollery)
    return m


def random_specs(n: int, frames: int = 700, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(-40, 10, (60, frames)).astype(np.float32) for _ in range(n)]


def test_default_model_follows_the_thesis() -> None:
    m = model()
    cfg = m.cfg
    assert (cfg.lr, cfg.batch_size, cfg.encoding_dim, cfg.embedding_dim, cfg.margin) == (1e-3, 64, 128, 128, 1.0)
    assert (cfg.phase1_epochs, cfg.phase2_epochs, cfg.epochs) == (10, 10, 20)
    assert [layer.out_features for layer in m.encoder if isinstance(layer, torch.nn.Linear)] == [128, 128]
    assert m.encoder[0].in_features == 60 * 200 and m.decoder[-2].out_features == 60 * 200
    assert isinstance(m.decoder[-1], torch.nn.Sigmoid) and isinstance(model(output_activation="relu").decoder[-1],
                                                                      torch.nn.ReLU)
    assert (m.projection.in_features, m.projection.out_features) == (128, 128)
    spec = log_mel(np.zeros(30 * 22050, np.float32), m.preset)  # 30 s: 1500 (+1 centred) frames of 40 ms x 60
    assert spec.shape == (60, 1501)
    segs = m.segments(spec)
    assert segs.shape == (14, 60, 200)  # 4 s segments overlapping by 2 s (§3.3.1: 14 points per track)
    x = m.prepare(torch.from_numpy(segs))
    with torch.no_grad():
        assert m.encode(x).shape == (14, 128) and m.reconstruct(x).shape == (14, 60, 200)
        m.set_phase(2)
        assert m.encode(x).shape == (14, 128)
    pooled, seq = m.embed_track(np.random.default_rng(0).normal(-40, 10, (60, 1501)).astype(np.float32))
    assert seq.shape == (14, 128) and pooled.shape == (128,)
    np.testing.assert_allclose(pooled, seq.mean(axis=0), rtol=1e-5, atol=1e-5)


def test_epochs_are_the_sum_of_phases_or_split_proportionally() -> None:
    assert model(phase1_epochs=2, phase2_epochs=3).cfg.epochs == 5
    split = model(epochs=4).cfg
    assert (split.phase1_epochs, split.phase2_epochs, split.epochs) == (2, 2, 4)
    only = model(epochs=1).cfg
    assert (only.phase1_epochs, only.phase2_epochs) == (1, 0)
    with pytest.raises(ModelError, match="not both 0"):
        model(phase1_epochs=0, phase2_epochs=0)


def test_phase1_loss_falls_and_recreation_accuracy_rises(lib_dir: Path) -> None:
    with Library.open(lib_dir / "lib") as lib:
        tracks = track_set(lib, "stollery")
    m = model()
    batch = m.sample_batch(tracks, np.random.default_rng(0), 16)
    assert set(batch) == {"x"} and batch["x"].shape == (16, 60, 200)
    before = m.loss(batch)[1]["recreation_accuracy"]
    first, last, extra = fit_steps(m, batch, 50)
    assert last < 0.5 * first
    assert 0 < before < extra["recreation_accuracy"] <= 1


def test_begin_epoch_switches_phase_once_and_freezes_phase1() -> None:
    m = model(phase1_epochs=2, phase2_epochs=1)
    assert [m.begin_epoch(e) for e in range(3)] == [False, False, True]
    assert m.current_phase == 2 and int(m.get_buffer("phase")) == 2
    assert not any(p.requires_grad for p in [*m.encoder.parameters(), *m.decoder.parameters()])
    assert all(p.requires_grad for p in m.projection.parameters())
    assert m.begin_epoch(3) is False  # further epochs stay in phase 2


def test_triplets_use_adjacent_segments_and_other_tracks() -> None:
    m = model()
    m.set_phase(2)
    specs = random_specs(4)  # 700 frames -> 6 segments each
    tracks = TrackSet([10, 11, 12, 13], specs)
    rows = m.sample_triplets(tracks, np.random.default_rng(0), 500)
    assert (rows[:, 0] == rows[:, 2]).all()  # positive: the same track...
    assert (np.abs(rows[:, 1] - rows[:, 3]) == 1).all()  # ...the adjacent segment
    assert (rows[:, 2] != rows[:, 4]).all()  # negative: another track
    assert rows[:, [1, 3, 5]].min() >= 0 and rows[:, [1, 3, 5]].max() <= 5
    assert len(set(rows[:, 4].tolist())) == 4 and len(set(rows[:, 1].tolist())) == 6
    # The batch holds exactly those segments, scaled.
    batch = m.sample_batch(tracks, np.random.default_rng(1), 8)
    rows = m.sample_triplets(tracks, np.random.default_rng(1), 8)
    for key, col in (("anchor", 0), ("positive", 2), ("negative", 4)):
        expected = [m.prepare(torch.from_numpy(m.segments(specs[t])[s])) for t, s in rows[:, col:col + 2]]
        torch.testing.assert_close(batch[key], torch.stack(expected))


def test_negatives_are_never_copies_of_the_anchor() -> None:
    specs = random_specs(4)
    copy = specs[0] + 6.0 + np.random.default_rng(9).normal(0, 0.3, specs[0].shape).astype(np.float32)  # louder
    shorter = specs[1][:, :690].copy()  # a re-encode a few frames shorter
    inputs = [*specs, copy, shorter, specs[2].copy()]
    groups = duplicate_groups(inputs)
    assert groups[4] == groups[0] and groups[5] == groups[1] and groups[6] == groups[2]
    assert len(set(groups[:4].tolist())) == 4
    m = model()
    m.set_phase(2)
    rows = m.sample_triplets(TrackSet(list(range(7)), inputs), np.random.default_rng(0), 1000)
    assert all(groups[a] != groups[n] for a, n in rows[:, [0, 4]])
    with pytest.raises(ModelError, match="at least two different tracks"):
        m.sample_triplets(TrackSet([0, 1], [specs[0], specs[0].copy()]), np.random.default_rng(0), 4)
    with pytest.raises(ModelError, match="at least two segments"):
        m.sample_triplets(TrackSet([0, 1], random_specs(2, frames=250)), np.random.default_rng(0), 4)


def test_a_one_track_set_draws_negatives_from_the_training_tracks() -> None:
    m = model()
    m.set_phase(2)
    train_set = TrackSet([1, 2, 3], random_specs(3, seed=1))
    m.setup_training(None, train_set, TrackSet([], []), {})
    val = TrackSet([7], random_specs(1, seed=2))
    rows = m.sample_triplets(val, np.random.default_rng(0), 50)
    assert (rows[:, 0] == 0).all() and (rows[:, 4] >= 1).all()


def test_phase2_trains_only_the_projection(lib_dir: Path) -> None:
    with Library.open(lib_dir / "lib") as lib:
        tracks = track_set(lib, "stollery")
    m = model(lr=3e-3)
    m.begin_epoch(m.cfg.phase1_epochs)
    frozen = {k: v.clone() for k, v in m.state_dict().items() if not k.startswith("projection")}
    batch = m.sample_batch(tracks, np.random.default_rng(0), 16)
    assert set(batch) == {"anchor", "positive", "negative", "x"} and batch["anchor"].shape == (16, 60, 200)
    first, last, extra = fit_steps(m, batch, 30)
    assert last < 0.5 * first and extra["triplet_accuracy"] > 0.8
    for k, v in m.state_dict().items():
        if k in frozen:
            assert torch.equal(v, frozen[k]), k


def test_checkpoint_round_trip_keeps_the_phase(tmp_path: Path) -> None:
    m = model().eval()
    x = m.prepare(torch.rand(3, 60, 200) * -80)
    m.set_phase(2)
    save_checkpoint(m, tmp_path / "s.pt")
    again, payload = load_checkpoint(tmp_path / "s.pt")
    assert isinstance(again, Stollery) and again.current_phase == 2
    assert not any(p.requires_grad for p in again.encoder.parameters())
    with torch.no_grad():
        np.testing.assert_array_equal(m.encode(x).numpy(), again.encode(x).numpy())
        assert not torch.allclose(again.encode(x), again.encode_phase1(x))  # the projection is applied


def test_train_both_phases_resume_at_the_boundary_and_embed(lib_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.pt"
    with Library.open(lib_dir / "lib") as lib:
        first = train(lib, "stollery", out, epochs=1, batch_size=8, plots=False)  # phase 1 only
        state = torch.load(last_checkpoint_path(out), weights_only=True)
        assert state["config"]["phase2_epochs"] == 0 and int(state["state_dict"]["phase"]) == 1
        assert state["data"]["segments"] == 27  # 3 segments per 8 s track
        # Resume exactly at the phase boundary: phase 2 starts (new optimiser layout must still load).
        resumed = train(lib, "stollery", out, epochs=2, batch_size=8, plots=False, resume=True)
        assert resumed.epochs_run == 1 and len(resumed.history["train_loss"]) == 2
        assert resumed.history["train_loss"][0] == first.history["train_loss"][0]
        trained, _ = load_checkpoint(last_checkpoint_path(out))
        assert isinstance(trained, Stollery) and trained.current_phase == 2
        model_id, count = embed_library(lib, last_checkpoint_path(out))
        assert count == 9
        for track in lib.tracks():
            segs = lib.segments(track.id, model_id)
            assert segs is not None and segs.shape == (3, 128)
        ids, vectors = lib.vectors(model_id)
        assert vectors.shape == (9, 128) and np.isfinite(vectors).all()
        x = trained.prepare(torch.from_numpy(trained.segments(lib.spectrogram(int(ids[0]), "stollery"))))
        with torch.no_grad():
            np.testing.assert_allclose(vectors[0], trained.encode(x).mean(0).numpy(), rtol=1e-5, atol=1e-5)
