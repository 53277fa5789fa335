"""The tempogram-step benchmark: every step's estimates against the reference step's, a broken file skipped."""

from __future__ import annotations

import json
from pathlib import Path

import tempo


def test_tempo_steps_are_compared_on_every_file(music_dir: Path, tmp_path: Path) -> None:
    (music_dir / "low" / "broken.ogg").write_bytes(b"OggS not really")
    out = tmp_path / "tempo.json"
    assert tempo.main([str(music_dir), "--steps", "1", "8", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["benchmark"] == "tempo" and report["reference_step"] == 1 and report["skipped"] == 1
    assert report["files"] == 8  # every decodable track compared (the first one's CPU is a warm-up)
    assert set(report["steps"]) == {"1", "8"}
    assert report["steps"]["1"]["estimates_changed"] == 0  # the reference against itself
    assert all(row["cpu_seconds_per_track"] > 0 for row in report["steps"].values())
