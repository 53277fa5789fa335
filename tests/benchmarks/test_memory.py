"""The memory benchmark: a long synthesised file, a real `soundalike index` run, peaks of its process tree."""

from __future__ import annotations

import json
import os
from pathlib import Path

import memory
import pytest
import soundfile as sf


def test_long_file_is_written_in_blocks_and_lasts_what_was_asked(tmp_path: Path) -> None:
    seconds = memory.write_long_file(tmp_path / "long.flac", hours=3 / 60)
    info = sf.info(str(tmp_path / "long.flac"))
    assert seconds == 180.0 and info.duration == pytest.approx(180.0) and info.channels == 2


def test_descendants_and_peaks_of_this_process() -> None:
    assert os.getpid() in memory._descendants(os.getpid())
    peak = memory._peak_mb(os.getpid())
    assert peak is not None and peak > 10
    assert memory._peak_mb(2**22 + 12345) is None  # no such process


@pytest.mark.slow
def test_index_run_reports_command_and_worker_peaks(tmp_path: Path) -> None:
    out = tmp_path / "memory.json"
    assert memory.main(["--hours", "0.02", "--windows", "120", "--out", str(out)]) == 0
    run = json.loads(out.read_text())["runs"][0]
    assert run["analyse_seconds"] == 120 and run["worker_processes"] >= 1
    assert 50 < run["command_peak_mb"] < 4096 and 50 < run["largest_worker_peak_mb"] < 4096
    assert run["cpu_seconds"] > 0
