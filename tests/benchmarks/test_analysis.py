"""The analysis benchmark's --scaling mode: a real `soundalike index` at each worker count, its JSON's shape."""

from __future__ import annotations

from pathlib import Path

import analysis
import pytest


def test_scaling_runs_the_whole_index_at_each_worker_count(music_dir: Path) -> None:
    files = analysis.spread_files(music_dir, 4)
    report = analysis.run_scaling(files, [1, 2], repeats=1)
    assert report["mode"] == "scaling" and report["files"] == 4 and report["audio_hours"] > 0
    rows = {r["jobs"]: r for r in report["results"]}
    assert set(rows) == {1, 2} and rows[1]["speed_up"] == 1.0 and rows[1]["efficiency"] == 1.0
    for row in rows.values():
        assert row["wall_seconds"] > 0 and row["cpu_seconds"] > 0 and len(row["all_rounds"]) == 1
        assert row["speed_up"] > 0 and row["tracks_per_s"] > 0


def test_peers_can_run_another_checkouts_soundalike_in_the_same_rounds(music_dir: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """--baseline-src: a before/after in one run (here the same source twice; bliss-audio left out)."""
    import soundalike

    monkeypatch.setattr(analysis, "_bliss_available", lambda: "left out in this test")
    src = Path(soundalike.__file__).resolve().parents[1]
    report = analysis.run_peers(analysis.spread_files(music_dir, 1), 1, baseline=src)
    names = [r["program"] for r in report["results"]]
    assert names[0] == "soundalike-index" and names[1].startswith("soundalike-index@") and names[2] == "librosa"
    assert all(r["cpu_seconds_per_track"] > 0 for r in report["results"])
    assert report["skipped"] == {"bliss-audio": "left out in this test"}


def test_machine_info_names_the_cpu_and_its_matrix_instructions() -> None:
    """The benchmarks' JSONs say which CPU they ran on: musicnn costs up to three times more without AMX, AVX-512
    BF16 or VNNI, so a row means little without it."""
    info = analysis.machine_info()
    assert info["cpus"] >= 1 and isinstance(info["cpu"], str) and info["python"].count(".") == 2
    assert set(info["matrix_instructions"]) <= analysis.MATRIX_FLAGS
    flags = set(Path("/proc/cpuinfo").read_text().split()) if Path("/proc/cpuinfo").exists() else set()
    assert set(info["matrix_instructions"]) == flags & analysis.MATRIX_FLAGS
