"""Shared fixtures: small real audio files written on the fly (no downloads, no committed audio)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

from helpers import make_signal, run_cli, synth_library, write_audio
from soundalike.synth import SynthTrack

# Property tests draw the same examples on every run (a seed per test), so a run on a fresh machine is the run that
# passed here; `pytest --hypothesis-profile=default` searches with fresh random examples instead.
settings.register_profile("deterministic", derandomize=True)
settings.load_profile("deterministic")


@pytest.fixture
def music_dir(tmp_path: Path) -> Path:
    """A small folder of 8 distinct decodable tracks in mixed formats (two 'albums')."""
    root = tmp_path / "music"
    exts = [".wav", ".flac", ".ogg", ".mp3"]
    for i in range(8):
        album = "low" if i < 4 else "high"
        freq = (110 + 20 * i) if i < 4 else (1500 + 150 * i)
        write_audio(root / album / f"track{i}{exts[i % 4]}", make_signal(4.0, freq, seed=i))
    return root


@pytest.fixture(scope="session")
def styled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic library of 4 styles x 6 tracks (6 s each): music in ``styled/music``, indexed in ``styled/lib``
    (descriptors only). Shared by every test that only reads it."""
    return synth_library(tmp_path_factory.mktemp("styled"), ["techno", "ambient", "chiptune", "classical"],
                         tracks_per_style=6, duration=6.0, seed=5)


@pytest.fixture(scope="session")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[SynthTrack]]:
    """``(root, library, tracks)``: 4 styles x 5 tracks of 8 s indexed by ``soundalike index`` as a user would (so
    embedded with the shipped default model too). Shared by every test that only reads it."""
    from soundalike import synth

    root = tmp_path_factory.mktemp("indexed")
    tracks = synth.make_library(root / "music", styles=["techno", "ambient", "chiptune", "classical"],
                                tracks_per_style=5, duration=8.0, seed=3)
    code, out, err = run_cli("index", str(root / "music"), "--library", str(root / "lib"), "--jobs", "1")
    assert code == 0, out + err
    return root, root / "lib", tracks


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    """Tiny test models run fastest on one thread, and do not fight other jobs on a shared 2-core machine."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)
