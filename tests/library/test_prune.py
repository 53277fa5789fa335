"""Pruning what is really gone, on request: says how much first, asks, and never touches what is there."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from helpers import run_cli
from soundalike.library.catalog import Library
from soundalike.library.prune import plan_prune, prune
from soundalike.library.scan import scan


def test_plan_then_prune_only_what_is_gone(tmp_path: Path, music_dir: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        scan(lib, [music_dir], isolate=False)
        assert plan_prune(lib).files == []
        shutil.rmtree(music_dir / "high")
        plan = plan_prune(lib)
        assert len(plan.files) == 4 and len(plan.tracks) == 4 and "4 indexed files no longer exist" in plan.describe()
        assert plan_prune(lib, [music_dir / "low"]).files == []  # only under the roots given
        assert prune(lib, plan) == 4 and lib.stats()["tracks"] == 4


def test_prune_command_says_how_many_and_asks(tmp_path: Path, music_dir: Path) -> None:
    library = str(tmp_path / "lib")
    assert run_cli("index", str(music_dir), "--library", library, "--model", "descriptor", "--jobs", "1")[0] == 0
    shutil.rmtree(music_dir / "high")
    code, out, _ = run_cli("index", str(music_dir), "--library", library, "--model", "descriptor", "--json")
    assert code == 0 and json.loads(out)["summary"]["missing_kept"] == 4 and json.loads(out)["library"]["tracks"] == 8
    code, out, _ = run_cli("prune", "--library", library, "--dry-run")
    assert code == 0 and "4 indexed files no longer exist; 4 tracks would leave the library" in out
    code, _, err = run_cli("prune", "--library", library)  # not a terminal, no --yes: nothing removed
    assert code == 2 and "--yes" in err
    code, out, _ = run_cli("prune", "--library", library, "--yes")
    assert code == 0 and "removed 4 files; 4 tracks left" in out
    assert "nothing to prune" in run_cli("prune", "--library", library)[1]


def test_index_prune_removes_what_is_gone_under_its_paths(tmp_path: Path, music_dir: Path) -> None:
    library = str(tmp_path / "lib")
    run_cli("index", str(music_dir), "--library", library, "--model", "descriptor", "--jobs", "1")
    shutil.rmtree(music_dir / "low")
    code, out, err = run_cli("index", str(music_dir), "--library", library, "--model", "descriptor", "--prune",
                             "--json")
    assert code == 0 and "removing: 4 indexed files no longer exist" in err
    assert json.loads(out)["summary"]["removed"] == 4 and json.loads(out)["library"]["tracks"] == 4
