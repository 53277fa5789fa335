#!/usr/bin/env bash
# reproduce_precision.sh — does musicnn in bfloat16 (CPUs with AMX tiles) change quality?
# Validation albums only, one run.
#
# Usage:   bash scripts/reproduce_precision.sh WORK [OUT]
#
#   WORK   the work directory of the other reproduce_* scripts (the validation albums are fetched if missing)
#   OUT    the JSON to write (default benchmarks/results/quality-precision.json); OUT.md gets the tables
#
# Indexes the validation albums (benchmarks/album_sets.json) twice with `soundalike index` as it ships (its
# window, the default model), into libraries named after the checkout's commit: with musicnn's front-end filters
# in float32 (SOUNDALIKE_BFLOAT16=0) and in bfloat16 (SOUNDALIKE_BFLOAT16=1, what CPUs with AMX tiles take by
# default); then python benchmarks/quality.py over both: the descriptors, each shipped model part and the
# default. Their cost: benchmarks/stages.py (docs/performance.md).
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/album_sets.sh" "$1"
OUT=$(realpath -m -- "${2:-$ROOT/benchmarks/results/quality-precision.json}")
cd "$ROOT"

fetch_sets dev train

SETS=()
commit=$(git -C "$ROOT" rev-parse --short HEAD)
for precision in float32 bfloat16; do
  lib=$WORK/libs/val-precision-$commit-$precision
  SOUNDALIKE_BFLOAT16=$([[ $precision == bfloat16 ]] && echo 1 || echo 0) "$SL" index "${val[@]}" --library "$lib"
  SETS+=(--set "precision-$precision=$lib:$WORK/dev,$WORK/train")
done
"$PY" benchmarks/quality.py "${SETS[@]}" --embeddings "${DEFAULT_PARTS[@]}" default --out "$OUT" \
  --markdown "${OUT%.json}.md"
echo "wrote $OUT"
