"""Fixtures shared by the model tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import synth_library


@pytest.fixture(scope="package")
def lib_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three styles x 4 tracks of 6 s, indexed (descriptors and melae spectrograms)."""
    return synth_library(tmp_path_factory.mktemp("models"), ["techno", "ambient", "chiptune"], tracks_per_style=4,
                         duration=6.0, seed=7)
