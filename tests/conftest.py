"""Shared fixtures: small real audio files written on the fly (no downloads, no committed audio)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import make_signal, write_audio


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


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    """Tiny test models run fastest on one thread, and do not fight other jobs on a shared 2-core machine."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)
