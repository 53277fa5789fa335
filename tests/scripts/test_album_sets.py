"""The preamble the reproduce_* scripts share (scripts/album_sets.sh): paths, album sets and usage."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETS = json.loads((ROOT / "benchmarks" / "album_sets.json").read_text())


def _bash(script: str, work: Path) -> str:
    return subprocess.run(["bash", "-c", script, "bash", str(work)], cwd="/", check=True, capture_output=True,
                          text=True).stdout


def test_preamble_lists_the_validation_albums_and_sets(tmp_path: Path) -> None:
    out = _bash(f'source {ROOT}/scripts/album_sets.sh "$1"; printf "%s\\n" "$ROOT" "$WORK" "$CACHE"; '
                'printf "V %s\\n" "${val[@]}"; echo "T $(sets test heldout)"', tmp_path / "work")
    lines = out.splitlines()
    assert lines[:3] == [str(ROOT), str(tmp_path / "work"), str(tmp_path / "work" / "debcache")]
    val = [line[2:] for line in lines if line.startswith("V ")]
    expected = [f"{tmp_path}/work/{s}/{a}" for s in ("dev", "train") for a in SETS["validation"][s]]
    assert val == expected
    assert lines[-1] == "T " + " ".join(SETS["test"]["heldout"])
    assert (tmp_path / "work" / "libs").is_dir() and (tmp_path / "work" / "ckpt").is_dir()


def test_every_reproduce_script_prints_its_usage_without_arguments() -> None:
    for script in sorted((ROOT / "scripts").glob("reproduce_*.sh")):
        done = subprocess.run(["bash", str(script)], capture_output=True, text=True)
        assert done.returncode == 2, script.name
        assert done.stdout.startswith(f"{script.name} —"), script.name
        assert "Usage:" in done.stdout and "set -euo" not in done.stdout


def test_first_equal_quality_takes_the_first_candidate_within_the_rule(tmp_path: Path) -> None:
    changes = {"a": {"gain": -0.02, "gain_lo": -0.03},  # loses more than 1 %
               "b": {"gain": -0.005, "gain_lo": -0.06},  # its interval reaches below -5 %
               "c": {"gain": -0.01, "gain_lo": -0.05},  # on both edges: passes
               "d": {"gain": 0.02, "gain_lo": 0.0}}
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"candidates": {k: {"results": {"default": {"change": v}}} for k, v in
                                                 changes.items()}}))
    path = "candidates/{n}/results/default/change"
    pick = f'source {ROOT}/scripts/album_sets.sh "$1"; first_equal_quality {report} "{path}"'
    assert _bash(f"{pick} a b c d", tmp_path / "work") == "c\n"
    assert _bash(f"{pick} d c", tmp_path / "work") == "d\n"
    assert _bash(f"{pick} a b", tmp_path / "work") == ""


def test_variant_copies_a_shipped_checkpoint_with_config_fields_set(tmp_path: Path) -> None:
    import torch

    from soundalike.models import load_checkpoint
    from soundalike.models.pretrained import default_checkpoints

    out = tmp_path / "p3.pt"
    _bash(f'source {ROOT}/scripts/album_sets.sh "$1"; variant default-musicnn {out} max_patches=3 layer=pooled',
          tmp_path / "work")
    made, _ = load_checkpoint(out)
    shipped, _ = load_checkpoint(default_checkpoints()[0])
    assert made.config.max_patches == 3 and made.config.layer == "pooled"
    assert all(torch.equal(a, b) for a, b in zip(made.state_dict().values(), shipped.state_dict().values(),
                                                 strict=True))
    done = subprocess.run(["bash", "-c", f'source {ROOT}/scripts/album_sets.sh "$1"; variant nope {out} a=1',
                           "bash", str(tmp_path / "work")], capture_output=True, text=True)
    assert done.returncode != 0 and "no shipped checkpoint 'nope'" in done.stderr
