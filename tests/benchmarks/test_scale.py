"""The scale benchmark end to end at 2,000 tracks: build through the catalogue API, serve, measure; the JSON's
shape, and a map overview that is a sample (never every point above its limit)."""

from __future__ import annotations

from pathlib import Path

import scale


def test_build_and_measure_a_small_catalogue(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    timings = scale.build(library, 2000, seed=0)
    assert timings["index"]["dim"] == 1882 and "+" in timings["index"]["model"]  # the three-part default
    report = scale.measure(library, clients=2, seconds=3.0, map_limit=500)
    assert report["n"] == 2000 and report["rss_mb"] > 0 and report["disk_mb"] > 0
    rows = {r["endpoint"]: r for r in report["results"]}
    assert set(rows) == set(scale.WEIGHTS) and "health" in rows
    for row in rows.values():
        assert row["errors"] == 0 and row["count"] > 0 and 0 < row["p50_ms"] <= row["p99_ms"]
    warm = report["warm_up"]
    assert warm["map_overview_points"] == 500 < warm["map_overview_total"] == 2000
    assert set(report["targets"]) == {"p99_within_3x_health", "p99_within_50ms", "rss_within_6gb",
                                      "map_overview_within_1s"}
