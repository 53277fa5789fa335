"""`soundalike evaluate` end to end on a small synthetic library: report files, tables, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import synth_library
from soundalike.app.cli import app


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_library(tmp_path_factory.mktemp("evaluate"), ["techno", "ambient", "chiptune"], tracks_per_style=8,
                         duration=5.0, seed=9)


def test_evaluate_writes_tables_and_charts(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    res = CliRunner().invoke(app, ["evaluate", "--library", str(root / "lib"), "--min-length", "4", "--out", str(out),
                                   "--top-n", "3,5"])
    assert res.exit_code == 0, res.output
    payload = json.loads((out / "report.json").read_text())
    assert payload["embeddings"][:2] == ["descriptor", "spfy10"]
    cont = payload["continuation"]
    assert cont["playlists"]["playlists"] == 6  # 3 styles x 2 artists' albums of 4 tracks
    systems = {r["system"] for r in cont["results"]}
    assert {"descriptor", "spfy10", "most_popular", "random"} <= systems
    by = {(r["system"], r["score"], r["n"]): r for r in cont["results"]}
    # The synthetic albums are easy: descriptors beat the random baseline clearly.
    assert by[("descriptor", "mean", 5)]["map"] > by[("random", None, 5)]["map"] + 0.1
    assert (out / "score_methods.png").stat().st_size > 10_000
    md = (out / "report.md").read_text()
    assert "| descriptor@3 (" in md and "Same-album retrieval" in md
    assert payload["retrieval"]["results"]["descriptor"]["queries"] == 24


def test_evaluate_skips_continuation_when_playlists_are_too_short(root: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["evaluate", "--library", str(root / "lib"), "--out", str(tmp_path / "e")])
    assert res.exit_code == 0, res.output
    assert "playlist continuation skipped" in res.stderr and "too short" in res.stderr
    assert json.loads((tmp_path / "e" / "report.json").read_text())["retrieval"]["results"]["spfy10"]["queries"] == 24


def test_evaluate_bad_input(root: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["evaluate", "--library", str(root / "lib"), "--model", "nope", "--out",
                                   str(tmp_path / "e")])
    assert res.exit_code == 2 and "no embeddings for model 'nope'" in res.stderr
    res = CliRunner().invoke(app, ["evaluate", "--library", str(root / "lib"), "--playlists",
                                   str(tmp_path / "missing"), "--out", str(tmp_path / "e")])
    assert res.exit_code == 0 and "playlist continuation skipped" in res.stderr
    empty = tmp_path / "empty-lib"
    CliRunner().invoke(app, ["index", str(tmp_path / "nothing-here"), "--library", str(empty)])
    res = CliRunner().invoke(app, ["evaluate", "--library", str(empty), "--out", str(tmp_path / "e2")])
    assert res.exit_code == 2 and "soundalike index" in res.stderr
