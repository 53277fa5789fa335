"""The built-in demo end to end, scaled down: synthesise, index, recommend, report."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from soundalike.app.demo import run_demo


def test_demo_writes_a_report_and_finds_same_style_tracks(tmp_path: Path) -> None:
    console = Console(file=open(tmp_path / "log.txt", "w"), width=120)  # noqa: SIM115
    report = run_demo(tmp_path / "demo", tracks_per_style=4, duration=6.0, jobs=2, console=console,
                      progress_console=console)
    console.file.close()
    assert report["tracks"] == report["styles"] * 4 and report["styles"] >= 8
    same = report["same_style"]
    assert isinstance(same, dict)
    chance = 3 / (int(report["tracks"]) - 1)
    assert same["precision_at_10"] > 3 * chance  # 4 tracks per style: at most 3 of 10 can be hits
    assert (tmp_path / "demo" / "map.png").stat().st_size > 10_000
    md = (tmp_path / "demo" / "report.md").read_text()
    assert "precision@10" in md and "![library map](map.png)" in md
    assert json.loads((tmp_path / "demo" / "report.json").read_text())["scan"]["analysed"] == report["tracks"]
    log = (tmp_path / "log.txt").read_text()
    assert "more like this" in log and "same-style retrieval" in log
