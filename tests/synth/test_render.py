"""Rendering: shape, level, sample rates, bad arguments, bit-identical output for a seed."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.synth import (
    render_track,
    style_names,
)

SR = 22050
PEAK = 10 ** (-1 / 20)


@pytest.mark.parametrize("style", style_names())
def test_render_shape_dtype_peak(style: str) -> None:
    x = render_track(style, seed=1, duration=3.0, sr=SR)
    assert x.dtype == np.float32 and x.ndim == 1 and len(x) == 3 * SR
    assert np.all(np.isfinite(x))
    peak = float(np.max(np.abs(x)))
    assert peak <= 1.0
    assert abs(peak - PEAK) < 1e-3
    assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) > 0.02


def test_render_other_sr_and_duration() -> None:
    x = render_track("jazz", seed=5, duration=2.5, sr=16000)
    assert len(x) == 40000 and x.dtype == np.float32
    tiny = render_track("techno", seed=5, duration=0.01, sr=8000)
    assert len(tiny) == 80 and np.max(np.abs(tiny)) <= 1.0


def test_render_bad_args() -> None:
    with pytest.raises(KeyError):
        render_track("polka", 0, 1.0)
    with pytest.raises(ValueError):
        render_track("rock", 0, 0.0)


def test_deterministic() -> None:
    for style in ("techno", "jazz", "ambient"):
        a = render_track(style, seed=42, duration=2.0)
        b = render_track(style, seed=42, duration=2.0)
        assert a.tobytes() == b.tobytes()
        c = render_track(style, seed=43, duration=2.0)
        assert not np.array_equal(a, c)
