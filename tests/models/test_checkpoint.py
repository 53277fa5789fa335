"""Checkpoints: identical embeddings after a round trip, clear errors for bad or mismatched files."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from soundalike.models import ModelError, build, load_checkpoint, save_checkpoint


def small(name: str = "melae", **kw: object):  # type: ignore[no-untyped-def]
    return build(name, batch_size=8, **kw)


def test_checkpoint_round_trip_gives_identical_embeddings(tmp_path: Path) -> None:
    model = small()
    x = model.prepare(torch.rand(3, 128, 128) * -80)
    save_checkpoint(model, tmp_path / "m.pt", epoch=1, metrics={"val_loss": 0.5})
    again, payload = load_checkpoint(tmp_path / "m.pt")
    assert payload["model_id"].startswith("melae-") and payload["preset"]["hop_length"] == 512
    with torch.no_grad():
        np.testing.assert_array_equal(model.eval().encode(x).numpy(), again.encode(x).numpy())


def test_bad_checkpoints_give_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "noise.pt").write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(ModelError, match="noise.pt: not a soundalike checkpoint"):
        load_checkpoint(tmp_path / "noise.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="no 'soundalike-checkpoint' header"):
        load_checkpoint(tmp_path / "other.pt")

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("pwned",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"format": "soundalike-checkpoint", "x": Evil()}))
    with pytest.raises(ModelError, match="evil.pt: not a soundalike checkpoint"):  # weights_only refuses code
        load_checkpoint(tmp_path / "evil.pt")
    with pytest.raises(ModelError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_model_preset_mismatch_and_wrong_weights_are_refused(tmp_path: Path) -> None:
    model = small()
    payload = save_checkpoint(model, tmp_path / "m.pt")
    payload["preset"] = {**payload["preset"], "hop_length": 256}
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(ModelError, match="model/preset mismatch"):
        load_checkpoint(tmp_path / "mismatch.pt")
    payload = save_checkpoint(model, tmp_path / "m.pt")
    payload["config"]["embedding_dim"] = 64
    torch.save(payload, tmp_path / "shapes.pt")
    with pytest.raises(ModelError, match="weights do not fit model 'melae'"):
        load_checkpoint(tmp_path / "shapes.pt")
