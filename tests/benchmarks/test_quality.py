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


def test_markdown_shows_the_second_paired_comparison_when_asked() -> None:
    def row(mean: float, gain: float, versus: float | None) -> dict:  # type: ignore[type-arg]
        m = {"mean": mean, "lo": mean - 0.1, "hi": mean + 0.1, "gain": gain, "gain_lo": gain - 0.1,
             "gain_hi": gain + 0.1}
        if versus is not None:
            m["vs_default"] = {"gain": versus, "gain_lo": versus - 0.05, "gain_hi": versus + 0.05}
        return {"map_at_10": m, "precision_at_10": {"mean": mean}}

    data = {"albums": 3, "queries": 9, "results": {"descriptor": row(0.3, 0.0, -0.2), "default": row(0.4, 0.33, 0.0),
                                                   "new": row(0.44, 0.47, 0.1)}}
    text = quality.markdown({"sets": {"validation": data}})
    assert "| vs default [95 % CI] |" in text
    assert "| new | 0.440 [0.340, 0.540] | +47% [+37%, +57%] | +10% [+5%, +15%] | 0.440 |" in text
    plain = quality.markdown({"sets": {"validation": {**data, "results": {"descriptor": row(0.3, 0.0, None)}}}})
    assert "vs default" not in plain


def test_an_embedding_can_be_reported_under_a_label(styled: Path) -> None:
    assert quality.labelled("previous=descriptor@0.2+x.pt@0.8") == ("previous", "descriptor@0.2+x.pt@0.8")
    assert quality.labelled("descriptor") == ("descriptor", "descriptor")
    data = quality.evaluate_set(styled / "lib", [styled / "music"], ["descriptor", "plain=descriptor"], 50, 0,
                                versus="plain")
    assert set(data["results"]) == {"descriptor", "plain"} and data["keys"]["plain"] == "descriptor"
    assert data["results"]["plain"]["map_at_10"]["mean"] == data["results"]["descriptor"]["map_at_10"]["mean"] > 0
    assert data["results"]["descriptor"]["map_at_10"]["vs_plain"]["gain"] == 0.0
