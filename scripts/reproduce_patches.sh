#!/usr/bin/env bash
# reproduce_patches.sh — does keeping only musicnn's 4 patches (not its whole spectrogram) change quality?
# Validation albums only, one run.
#
# Usage:   bash scripts/reproduce_patches.sh WORK BEFORE_LIB [OUT]
#
#   WORK        the work directory of the other reproduce_* scripts (the validation albums are fetched if missing)
#   BEFORE_LIB  the validation albums indexed by a checkout from before the change (whole musicnn spectrograms),
#               e.g. WORK/libs/val-student of scripts/reproduce_student.sh
#   OUT         the JSON to write (default benchmarks/results/quality-patches.json); OUT.md gets the tables,
#               OUT-store.json the size of each library's feature store, per key
#
# Indexes the validation albums (benchmarks/album_sets.json) with `soundalike index` as it ships (the default
# model: its musicnn part now reads the `musicnn-p4` key, 4 patches cut from the analysed audio), then
# python benchmarks/quality.py over both libraries: the descriptors, each model part and the default. The two
# must agree (the patches equal those of the whole spectrogram: tests/audio/test_analysis.py).
set -euo pipefail
[[ $# -ge 2 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/album_sets.sh" "$1"
BEFORE=$(realpath -- "$2")
OUT=$(realpath -m -- "${3:-$ROOT/benchmarks/results/quality-patches.json}")
cd "$ROOT"

fetch_sets dev train
LIB=$WORK/libs/val-patches
"$SL" index "${val[@]}" --library "$LIB"
"$PY" benchmarks/quality.py --set "whole=$BEFORE:$WORK/dev,$WORK/train" --set "patches=$LIB:$WORK/dev,$WORK/train" \
  --embeddings "${DEFAULT_PARTS[@]}" default --out "$OUT" --markdown "${OUT%.json}.md"
"$PY" - "$BEFORE" "$LIB" "${OUT%.json}-store.json" <<'PY'
import json, sys
from pathlib import Path
from soundalike.library.catalog import Library
sizes = {}
for name, lib in (("whole", sys.argv[1]), ("patches", sys.argv[2])):
    with Library.open(lib, create=False) as opened:
        tracks = len(opened.tracks())
    keys = {d.name: sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
            for d in sorted(Path(lib, "features").iterdir()) if d.is_dir()}
    sizes[name] = {"library": lib, "tracks": tracks, "bytes": keys,
                   "mb_per_track": {k: round(v / tracks / 1e6, 3) for k, v in keys.items()}}
json.dump({"benchmark": "feature-store", "sets": sizes}, open(sys.argv[3], "w"), indent=1)
print(json.dumps(sizes, indent=1))
PY
echo "wrote $OUT"
