#!/usr/bin/env bash
# reproduce_window.sh — how much of each track must be analysed? Validation albums only, one run.
#
# Usage:   bash scripts/reproduce_window.sh WORK [OUT]
#
#   WORK   the work directory of the other reproduce_* scripts (the validation albums are fetched if missing)
#   OUT    the JSON to write (default benchmarks/results/quality-window.json); OUT.md gets the tables
#
# Indexes the validation albums (benchmarks/album_sets.json) once per window with `soundalike index
# --analyse-seconds N` (30, 60, 120 s in ~15 s excerpts; 0 = whole tracks), the default model included, then
# python benchmarks/quality.py over the four libraries: the descriptors, each shipped model and the default.
# Their cost per track: benchmarks/stages.py --analyse-seconds N (docs/performance.md).
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/album_sets.sh" "$1"
OUT=$(realpath -m -- "${2:-$ROOT/benchmarks/results/quality-window.json}")
cd "$ROOT"

fetch_sets dev train

SETS=()
for n in 30 60 120 0; do
  "$SL" index "${val[@]}" --library "$WORK/libs/val-window-$n" --analyse-seconds "$n"
  SETS+=(--set "window-${n}s=$WORK/libs/val-window-$n:$WORK/dev,$WORK/train")
done
"$PY" benchmarks/quality.py "${SETS[@]}" --embeddings "${DEFAULT_PARTS[@]}" default --out "$OUT" \
  --markdown "${OUT%.json}.md"
echo "wrote $OUT"
