#!/usr/bin/env bash
# reproduce_int8.sh — may musicnn's front end run as int8 products on CPUs without AMX (VNNI or AVX2)?
# Validation albums decide; the test albums report the choice once.
#
# Usage:   bash scripts/reproduce_int8.sh WORK [OUT]
#
#   WORK   the work directory of the other reproduce_* scripts (the album sets are fetched if missing)
#   OUT    the JSON to write (default benchmarks/results/quality-int8.json; OUT's -test.json the test report)
#
# Indexes the validation albums (benchmarks/album_sets.json) three times with `soundalike index` as it ships,
# musicnn's front-end filters in float32, bfloat16 and int8 (SOUNDALIKE_PRECISION), into libraries named after
# the checkout's commit, and pairs the bfloat16 and int8 libraries with the float32 one query by query
# (benchmarks/paired_libraries.py; the same files, albums resampled together).
#
# The rule, written before the run: int8 becomes the precision of CPUs with VNNI and no AMX (where its products
# are the fastest, docs/performance.md) if the default's paired change against float32 is at least -1 % with
# the 95 % interval's lower end at least -5 % (the equal-quality rule of the other scripts). If it passes, the
# test albums report it once (float32 and int8 paired); if not, they are not touched. (First run at 336476a:
# passed. Run again, same rule, when int8 took 128 input steps so that CPUs with AVX2 alone give the same
# integers and take it too; the JSONs are that second run's, their first version in git.)
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/album_sets.sh" "$1"
OUT=$(realpath -m -- "${2:-$ROOT/benchmarks/results/quality-int8.json}")
TEST_OUT=${OUT%.json}-test.json
cd "$ROOT"

fetch_sets dev train
EMBEDDINGS=(descriptor "$P/default.pt" default)
paired_precisions val "$WORK/dev,$WORK/train" "$OUT" float32 bfloat16 int8 -- "${val[@]}"

if [[ -z $(first_equal_quality "$OUT" "candidates/{n}/results/default/change" int8) ]]; then
  echo "int8 does not pass the rule on validation: it stays a choice (SOUNDALIKE_PRECISION=int8); the test albums are not touched"
  exit 0
fi
echo "int8 passes on validation; the test albums report it once"
fetch_sets heldout
paired_precisions test "$WORK/heldout" "$TEST_OUT" float32 int8 -- "$WORK/heldout"
