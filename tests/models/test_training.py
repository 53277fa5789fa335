"""The training loop: best checkpoint kept, plots written, a run cut short resumes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from soundalike.library.catalog import Library
from soundalike.models import build
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
