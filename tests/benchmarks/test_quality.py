"""The quality benchmark's statistics: per-query retrieval and album-level bootstrap intervals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import quality


def test_per_query_and_bootstrap_intervals() -> None:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((6, 16))
    labels = np.repeat([f"a{i}" for i in range(6)], 5)
    good = np.repeat(centres, 5, axis=0) + 0.1 * rng.standard_normal((30, 16))
    noise = rng.standard_normal((30, 16))
    ap_good, p_good, owners = quality.per_query(good / np.linalg.norm(good, axis=1, keepdims=True), labels)
    ap_noise, _, _ = quality.per_query(noise / np.linalg.norm(noise, axis=1, keepdims=True), labels)
    assert ap_good.mean() == 1.0 and p_good.mean() == pytest.approx(0.4) and len(owners) == 30  # 4 of top 10
    stats = quality.bootstrap({"noise": ap_noise, "good": ap_good}, owners, 500, 0, "noise")
    assert stats["good"]["lo"] == stats["good"]["hi"] == 1.0
    assert stats["noise"]["lo"] <= stats["noise"]["mean"] <= stats["noise"]["hi"]
    assert stats["good"]["gain_lo"] > 0 and stats["noise"]["gain"] == 0.0
    assert quality.album_of(["/m/x/a.ogg", "/n/y/z/b.ogg", "/elsewhere/c.ogg"], [Path("/m"), Path("/n")]) == \
        ["x", "y", ""]
