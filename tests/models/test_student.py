"""The student: regresses a teacher's patch features from the melae spectrogram; alignment, targets, training."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from soundalike.audio.features import get_preset
from soundalike.library.catalog import Library
from soundalike.models import ModelError, build, load_checkpoint, save_checkpoint
from soundalike.models.student import aligned_start, resolve_teacher
from soundalike.models.training import train


def test_teacher_patches_map_to_the_same_time_in_the_student_spectrogram() -> None:
    musicnn, melae = get_preset("musicnn"), get_preset("melae")
    assert aligned_start(0, musicnn, melae) == 0
    assert aligned_start(187, musicnn, melae) == 129  # 2.992 s at 16 kHz / hop 256 = frame 128.9 at 22.05 kHz / 512
    assert aligned_start(625 * 4, musicnn, melae) == round(40 * 22050 / 512)


def test_a_shipped_teacher_resolves_and_an_unknown_one_is_named() -> None:
    assert resolve_teacher("default.pt").name == "default.pt"
    assert resolve_teacher("musicnn-mtt").name == "musicnn_mtt.pt"
    with pytest.raises(ModelError, match="no-such-teacher"):
        resolve_teacher("no-such-teacher")


def _teacher(tmp_path: Path) -> Path:
    """A small contrastive model on the melae preset, as a cheap teacher of 32 features a patch."""
    teacher = build("contrastive", channels=(4, 8, 8, 8), embedding_dim=32, seed=3).eval()
    path = tmp_path / "teacher.pt"
    save_checkpoint(teacher, path, epoch=0, history={}, metrics={}, data={})
    return path


def test_the_student_learns_its_teacher_and_caches_the_targets(lib_dir: Path, tmp_path: Path) -> None:
    lib_path = tmp_path / "lib"
    shutil.copytree(lib_dir / "lib", lib_path)
    small = {"channels": (8, 16, 16, 16), "hidden": 32, "embedding_dim": 32, "teacher": str(_teacher(tmp_path)),
             "teacher_hop": 32, "lr": 3e-3}
    with Library.open(lib_path) as lib:
        out = tmp_path / "student.pt"
        result = train(lib, "student", out, epochs=6, batch_size=16, plots=False, **small)
        assert list((lib_path / "cache").glob("student-targets-*.npz"))  # the teacher ran once, kept for a resume
        history = result.history["train_loss"]
        assert history[-1] < history[0] * 0.8
        student, payload = load_checkpoint(out)
        assert payload["data"]["teacher_patches"] > 0
        # The standardisation the targets were given travels with the weights.
        assert float(student.target_std.min()) > 0 and not torch.all(student.target_mean == 0)
        spec = lib.spectrogram(lib.tracks()[0].id, "melae")
        pooled, seq = student.embed_track(spec)
        assert seq.shape == (min(4, spec.shape[1] // 128), 32) and pooled.shape == (32,)
        # a resumed run reads the cached targets (and reaches the same standardisation)
        again = train(lib, "student", out, epochs=7, batch_size=16, plots=False, resume=True, **small)
        assert again.epochs_run == 1
        resumed, _ = load_checkpoint(out)
        np.testing.assert_allclose(resumed.target_mean.numpy(), student.target_mean.numpy(), rtol=1e-6)


def test_cached_targets_follow_the_track_s_audio_not_its_id(lib_dir: Path, tmp_path: Path) -> None:
    """A cached entry whose audio hash is not the track's (an id a new track took over) is computed again."""
    lib_path = tmp_path / "lib"
    shutil.copytree(lib_dir / "lib", lib_path)
    model = build("student", channels=(4, 4, 4, 4), hidden=8, embedding_dim=32, teacher=str(_teacher(tmp_path)),
                  teacher_hop=32)
    with Library.open(lib_path) as lib:
        ids = [t.id for t in lib.tracks()][:3]
        first = model._teacher_targets(lib, ids)
        (cache,) = (lib_path / "cache").glob("student-targets-*-h32-f128.npz")  # hop and patch width in the key
        with np.load(cache) as stored:
            arrays = {k: stored[k] for k in stored.files}
        arrays[f"t{ids[0]}"] = np.zeros_like(arrays[f"t{ids[0]}"])  # as if another track's
        arrays[f"h{ids[0]}"] = np.array("another track's audio")
        arrays[f"t{ids[1]}"] = np.zeros_like(arrays[f"t{ids[1]}"])  # same hash: the cache is trusted
        np.savez(cache, **arrays)
        again = model._teacher_targets(lib, ids)
        np.testing.assert_array_equal(again[ids[0]][1], first[ids[0]][1])
        assert not again[ids[1]][1].any()


def test_a_teacher_of_another_width_is_refused(lib_dir: Path, tmp_path: Path) -> None:
    lib_path = tmp_path / "lib"
    shutil.copytree(lib_dir / "lib", lib_path)
    with Library.open(lib_path) as lib, pytest.raises(ModelError, match="embedding_dim=32"):
        train(lib, "student", tmp_path / "s.pt", epochs=1, plots=False, teacher=str(_teacher(tmp_path)))
