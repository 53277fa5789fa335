#!/usr/bin/env bash
# reproduce_msd_part.sh — does musicnn's Million-Song-Dataset training, as a fourth part, improve the default?
# Validation albums only, one run.
#
# Usage:   bash scripts/reproduce_msd_part.sh WORK [OUT]
#
#   WORK   the work directory of the other reproduce_* scripts (the validation albums are fetched if missing)
#   OUT    the JSON to write (default benchmarks/results/quality-msd-part.json); OUT.md gets the tables
#
# Indexes the validation albums (benchmarks/album_sets.json) with `soundalike index` as it ships, derives MSD
# musicnn's pooled layer on 4 patches (as the default's MTT part), embeds it, and scores the shipped default with
# MSD added at 0.1, 0.2 and 0.3 of the fusion (the default's three parts keep their ratios), paired against the
# default on the same resamples. The rule, written before the run: MSD joins the default only if a weight's paired
# gain over the default has a 95 % interval above zero; then the test albums would report the new default once.
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/album_sets.sh" "$1"
OUT=$(realpath -m -- "${2:-$ROOT/benchmarks/results/quality-msd-part.json}")
cd "$ROOT"

fetch_sets dev train
LIB=$WORK/libs/val-msd-part
"$SL" index "${val[@]}" --library "$LIB"
msd_pooled_p4
WEIGHTED=()
for w in 0.1 0.2 0.3; do
  WEIGHTED+=("default+msd$w=$("$PY" -c "
import json, sys
w = float(sys.argv[1])
parts = json.load(open('$P/default.json'))['parts']
names = {'descriptor': 'descriptor', 'default.pt': '$P/default.pt', 'default_contrastive.pt': '$P/default_contrastive.pt'}
print('+'.join(f\"{names[p['part']]}@{round(p['weight'] * (1 - w), 4):g}\" for p in parts) + f'+{sys.argv[2]}@{w:g}')
" "$w" "$MSD")")
done
"$PY" benchmarks/quality.py --set "validation=$LIB:$WORK/dev,$WORK/train" \
  --embeddings "${DEFAULT_PARTS[@]}" "msd=$MSD" default "${WEIGHTED[@]}" --versus default \
  --out "$OUT" --markdown "${OUT%.json}.md"
echo "wrote $OUT"
