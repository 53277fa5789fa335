"""Writing tagged files in every format the scanner reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import read_back, written_tags
from soundalike.synth import (
    FORMATS,
    render_track,
    write_track,
)

SR = 22050
PEAK = 10 ** (-1 / 20)


@pytest.mark.parametrize("ext", FORMATS)
def test_write_track_formats(tmp_path: Path, ext: str) -> None:
    x = render_track("folk", seed=3, duration=1.5, sr=SR)
    path = tmp_path / "sub" / f"Ödd Näme.{ext}"
    write_track(path, x, SR, artist="The Folk Ünits", album="Front Porch Folk", title="Old River")
    assert path.exists() and path.stat().st_size > 0
    assert written_tags(path) == {"artist": "The Folk Ünits", "album": "Front Porch Folk", "title": "Old River"}
    y, sr = read_back(path)
    expected_sr = 48000 if ext == "opus" else SR
    assert sr == expected_sr
    assert y.ndim == 1
    assert abs(len(y) - 1.5 * sr) <= 0.1 * sr  # codec priming/padding allowed
    assert 0.3 < np.max(np.abs(y)) <= 1.05
    if ext in ("wav", "flac"):
        assert np.max(np.abs(y - x)) < 1e-3


def test_write_track_rejects_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_track(tmp_path / "x.aiff", np.zeros(100, np.float32), SR, artist="a", album="b", title="c")
