"""benchmarks/paired_libraries.py: the same music indexed twice, paired query by query; named candidates."""

from __future__ import annotations

import json
from pathlib import Path

import paired_libraries
import pytest

from soundalike.audio.analysis import Window
from soundalike.library.catalog import Library
from soundalike.library.scan import scan


def _index(music: Path, library: Path, seconds: float) -> Path:
    with Library.open(library) as lib:
        scan(lib, [music], window=Window.of_seconds(seconds), isolate=False)
    return library


def test_one_library_against_itself_and_named_candidates(music_dir: Path, tmp_path: Path) -> None:
    before = _index(music_dir, tmp_path / "before", 0)
    shorter = _index(music_dir, tmp_path / "shorter", 15)  # 15 s of each 4 s track: the same audio, whole
    out = tmp_path / "one.json"
    assert paired_libraries.main(["--before", str(before), "--after", str(before), "--music", str(music_dir),
                                  "--embeddings", "descriptor", "--resamples", "50", "--out", str(out)]) == 0
    one = json.loads(out.read_text())
    result = one["results"]["descriptor"]
    assert one["after"] == str(before) and "candidates" not in one
    assert result["queries"] == 8 and result["albums"] == 2
    assert result["change"]["gain"] == 0.0 and result["before"] == result["after"]

    out = tmp_path / "named.json"
    assert paired_libraries.main(["--before", str(before), "--after", f"same={before}", "--after",
                                  f"short={shorter}", "--music", str(music_dir), "--embeddings", "descriptor",
                                  "--resamples", "50", "--out", str(out)]) == 0
    named = json.loads(out.read_text())
    assert list(named["candidates"]) == ["same", "short"] and "results" not in named
    assert named["candidates"]["short"]["after"] == str(shorter)
    assert named["candidates"]["same"]["results"] == one["results"]  # the same pairing, the same resamples
    assert named["candidates"]["short"]["results"]["descriptor"]["queries"] == 8


def test_several_unnamed_or_same_named_libraries_are_refused(music_dir: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    for afters, message in ((["b", "c"], "need names"), (["x=b", "x=c"], "must be different"),
                            (["x=b", "/music/a=b"], "need names")):  # a path holding '=' is a path
        with pytest.raises(SystemExit) as exc:
            paired_libraries.main(["--before", "a", *[f"--after={a}" for a in afters], "--music", str(music_dir)])
        assert exc.value.code == 2 and message in capsys.readouterr().err
