"""The training loop: best checkpoint kept, plots written, a run cut short resumes with its split, and a kill
between two saves never lets a worse model replace the best."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import synth_library
from soundalike import synth
from soundalike.library.catalog import Library
from soundalike.library.scan import scan
from soundalike.models import build, training
from soundalike.models.training import last_checkpoint_path, train


def test_train_keeps_best_checkpoint_plots_and_resumes(lib_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "melae.pt"
    with Library.open(lib_dir / "lib") as lib:
        first = train(lib, "melae", out, epochs=2, batch_size=8)
        assert first.epochs_run == 2 and len(first.history["train_loss"]) == 2
        assert out.exists() and last_checkpoint_path(out).exists()
        assert {p.name for p in first.plots} == {"melae.loss.png", "melae.reconstruction.png"}
        state = torch.load(last_checkpoint_path(out), weights_only=True)
        assert state["epoch"] == 2 and state["step"] == 2 * build("melae", batch_size=8).batches_per_epoch(
            state["data"]["train_tracks"])
        resumed = train(lib, "melae", out, epochs=3, batch_size=8, resume=True)
        assert resumed.epochs_run == 1 and len(resumed.history["train_loss"]) == 3
        assert len(resumed.history["epoch_seconds"]) == 3 and min(resumed.history["epoch_seconds"]) > 0
        assert resumed.history["train_loss"][:2] == first.history["train_loss"]
        later = torch.load(last_checkpoint_path(out), weights_only=True)
        assert later["epoch"] == 3 and later["step"] == state["step"] * 3 // 2
        # A straight 3-epoch run with the same seed ends exactly where the resumed one did.
        straight = train(lib, "melae", tmp_path / "straight.pt", epochs=3, batch_size=8, plots=False)
        assert straight.history["train_loss"] == pytest.approx(resumed.history["train_loss"], rel=1e-5)


def test_a_resumed_run_keeps_its_split_when_the_library_grows(tmp_path: Path) -> None:
    root = synth_library(tmp_path, ["techno", "ambient", "jazz"], tracks_per_style=4, duration=6.0, seed=8)
    out = tmp_path / "melae.pt"
    with Library.open(root / "lib") as lib:
        train(lib, "melae", out, epochs=1, batch_size=8, plots=False)
        split = torch.load(last_checkpoint_path(out), weights_only=True)["split"]
        assert len(split["val"]) >= 1 and not set(split["val"]) & set(split["train"])
        synth.make_library(root / "more", styles=["folk"], tracks_per_style=4, duration=6.0, seed=9)
        scan(lib, [root / "more"], isolate=False)  # 4 new tracks: a fresh split would move tracks across sides
        resumed = train(lib, "melae", out, epochs=2, batch_size=8, resume=True, plots=False)
        again = torch.load(last_checkpoint_path(out), weights_only=True)
        assert again["split"] == split and resumed.epochs_run == 1
        assert again["data"]["train_tracks"] == len(split["train"])


def test_a_kill_between_the_two_saves_never_lets_a_worse_model_replace_the_best(
        lib_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "melae.pt"
    losses = iter([0.5, 0.1, 0.3])  # epoch 1, epoch 2 (killed after its best was saved), epoch 2 again
    monkeypatch.setattr(training, "_validation_loss", lambda *a, **k: next(losses))
    real_save = training.save_checkpoint

    def save(model, path, **extra):  # type: ignore[no-untyped-def]
        if path == last_checkpoint_path(out) and extra.get("epoch") == 2 and not getattr(save, "killed", False):
            save.killed = True  # type: ignore[attr-defined]
            raise KeyboardInterrupt("killed between the best checkpoint and the run state")
        return real_save(model, path, **extra)

    monkeypatch.setattr(training, "save_checkpoint", save)
    with Library.open(lib_dir / "lib") as lib:
        with pytest.raises(KeyboardInterrupt):
            train(lib, "melae", out, epochs=2, batch_size=8, plots=False)
        best = torch.load(out, weights_only=True)
        assert (best["epoch"], best["best_val_loss"]) == (2, 0.1)
        resumed = train(lib, "melae", out, epochs=2, batch_size=8, resume=True, plots=False)
    kept = torch.load(out, weights_only=True)
    assert (kept["epoch"], kept["best_val_loss"]) == (2, 0.1) and resumed.best_val_loss == pytest.approx(0.1)
    assert kept["model_id"] == best["model_id"]  # the weights of the 0.1 epoch, not the re-run's 0.3


def test_batches_drawn_in_worker_processes_train_exactly_as_in_process(lib_dir: Path, tmp_path: Path) -> None:
    with Library.open(lib_dir / "lib") as lib:
        here = train(lib, "contrastive", tmp_path / "a.pt", epochs=2, batch_size=4, workers=0, plots=False)
        forked = train(lib, "contrastive", tmp_path / "b.pt", epochs=2, batch_size=4, workers=2, plots=False)
    assert len(here.history["train_loss"]) == 2
    assert forked.history["train_loss"] == pytest.approx(here.history["train_loss"], rel=1e-6)
    assert forked.model_id == here.model_id  # the same weights


def test_epoch_batches_depend_on_seed_epoch_and_index_only(lib_dir: Path) -> None:
    model = build("contrastive", batch_size=4)
    with Library.open(lib_dir / "lib") as lib:
        data = training.load_training_data(lib, model, 0.0, seed=0)
    first = list(training.epoch_batches(model, data.train, 4, seed=3, epoch=1, count=3, workers=0))
    again = list(training.epoch_batches(model, data.train, 4, seed=3, epoch=1, count=3, workers=2))
    other = next(iter(training.epoch_batches(model, data.train, 4, seed=3, epoch=2, count=1, workers=0)))
    assert len(first) == len(again) == 3
    for x, y in zip(first, again, strict=True):
        assert torch.equal(x["a"], y["a"]) and torch.equal(x["groups"], y["groups"])
    assert not torch.equal(first[0]["a"], other["a"])  # a new epoch draws new excerpts
