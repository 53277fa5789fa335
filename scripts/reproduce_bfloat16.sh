#!/usr/bin/env bash
# reproduce_bfloat16.sh — do the default's faster bfloat16 paths (CPUs with AMX) keep quality?
# Validation albums decide; the test albums report the choice once.
#
# Usage:   bash scripts/reproduce_bfloat16.sh WORK [OUT]
#
#   WORK   the work directory of the other reproduce_* scripts (the album sets are fetched if missing)
#   OUT    the JSON to write (default benchmarks/results/quality-bfloat16.json; OUT's -test.json the test report)
#
# The bfloat16 path since 4beac9b adds each filter's bias inside the banded products (in bfloat16, the rest after
# the max), takes the max over frequency on the products' bits as int16, and runs the mid end's first
# convolution as a bfloat16 product too (docs/performance.md). SOUNDALIKE_PRECISION sets the contrastive part's
# convolutions too, which take bfloat16 since the run below was repeated (same rule; the first run's JSONs, for
# musicnn alone at 7998c98, are in git). Indexes the validation albums
# (benchmarks/album_sets.json) with `soundalike index` as it ships, its models in float32 and in bfloat16
# (SOUNDALIKE_PRECISION), into libraries named after the checkout's commit, and pairs them query by query
# (benchmarks/paired_libraries.py).
#
# The rule, written before the runs: the path stays the precision of CPUs with AMX if the default's paired change
# against float32 is at least -1 % with the 95 % interval's lower end at least -5 % (the equal-quality rule of
# the other scripts); if it passes, the test albums report it once (float32 and bfloat16 paired); if not, they
# are not touched and the previous bfloat16 path comes back.
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/album_sets.sh" "$1"
OUT=$(realpath -m -- "${2:-$ROOT/benchmarks/results/quality-bfloat16.json}")
TEST_OUT=${OUT%.json}-test.json
cd "$ROOT"

fetch_sets dev train
EMBEDDINGS=(descriptor "$P/default.pt" "$P/default_contrastive.pt" default)
paired_precisions val "$WORK/dev,$WORK/train" "$OUT" float32 bfloat16 -- "${val[@]}"

if [[ -z $(first_equal_quality "$OUT" "candidates/{n}/results/default/change" bfloat16) ]]; then
  echo "bfloat16 does not pass the rule on validation; the test albums are not touched"
  exit 0
fi
echo "bfloat16 passes on validation; the test albums report it once"
fetch_sets heldout
paired_precisions test "$WORK/heldout" "$TEST_OUT" float32 bfloat16 -- "$WORK/heldout"
