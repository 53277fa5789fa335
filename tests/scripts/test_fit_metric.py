"""scripts/fit_metric.py: a metric fitted on the train albums of a library only, and searched by its name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from soundalike.search.metric import Metric

ROOT = Path(__file__).resolve().parents[2]


def test_fit_metric_uses_the_train_albums_only(styled: Path, tmp_path: Path) -> None:
    sets = tmp_path / "sets.json"  # two of the four style folders are train albums; the others must not count
    sets.write_text(json.dumps({"train": {"dev": ["techno"], "train": ["ambient"]}}))
    out = tmp_path / "metric.npz"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "fit_metric.py"), "--library", str(styled / "lib"),
                           "--music", str(styled / "music"), "--model", "descriptor", "--sets", str(sets),
                           "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    metric = Metric.load(out)
    name, model, count, path = done.stdout.strip().split("\t")
    assert (name, model, path) == (metric.name, "descriptor", str(out)) and count.startswith("12 tracks of 2")
    assert metric.info["fitted_on"] == ["ambient", "techno"] and metric.info["tracks"] == 12
    assert metric.info["descriptor_version"] >= 1 and np.isfinite(metric.matrix).all()
    sets.write_text(json.dumps({"train": {"dev": ["nowhere"], "train": []}}))
    none = subprocess.run([sys.executable, str(ROOT / "scripts" / "fit_metric.py"), "--library", str(styled / "lib"),
                           "--music", str(styled / "music"), "--model", "descriptor", "--sets", str(sets),
                           "--out", str(tmp_path / "none.npz")], capture_output=True, text=True)
    assert none.returncode == 1 and "no tracks of the train albums" in none.stderr
