#!/usr/bin/env bash
# reproduce_descriptor_frames.sh — descriptors version 2 (spectral statistics over every other STFT frame) against
# version 1 (every frame): validation first, by a rule written here before the run, then the test albums once.
#
# Usage:   bash scripts/reproduce_descriptor_frames.sh WORK BEFORE [OUT]
#
#   WORK    the work directory of the other reproduce_* scripts (the album sets are fetched if missing)
#   BEFORE  a checkout of the version before (version 1 descriptors), e.g. `git worktree add /tmp/v1 d96b5a4`
#   OUT     the JSON to write (default benchmarks/results/quality-descriptor-frames.json); OUT-test.json gets the
#           test albums' report when version 2 passes the rule
#
# Indexes the 11 validation albums twice as `soundalike index` ships — with BEFORE's soundalike and with this
# checkout's — and compares the descriptors alone and the default, query by query (benchmarks/paired_libraries.py:
# the same files, albums resampled together). The rule, written before the run (as reproduce_segments.sh's):
# version 2 stays only if the default's paired change is at least -1 % with its 95 % interval's lower end at least
# -5 % (equal quality at less CPU); the descriptors alone are reported beside it. When it passes, the test albums
# (the held-out set) are indexed the same two ways and reported once; nothing there feeds back into the choice.
set -euo pipefail
[[ $# -ge 2 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/album_sets.sh" "$1"
BEFORE=$(realpath -- "$2")
OUT=$(realpath -m -- "${3:-$ROOT/benchmarks/results/quality-descriptor-frames.json}")
TEST_OUT=${OUT%.json}-test.json
cd "$ROOT"

index_both() {  # NAME FOLDER...: WORK/libs/NAME-v1 by BEFORE's soundalike, WORK/libs/NAME-v2 by this checkout's
  local name=$1
  shift
  PYTHONPATH=$BEFORE/src "$PY" -m soundalike index "$@" --library "$WORK/libs/$name-v1"
  "$SL" index "$@" --library "$WORK/libs/$name-v2"
}

fetch_sets dev train
index_both val-frames "${val[@]}"
"$PY" benchmarks/paired_libraries.py --before "$WORK/libs/val-frames-v1" --before-src "$BEFORE" \
  --after "$WORK/libs/val-frames-v2" --music "$WORK/dev,$WORK/train" --embeddings descriptor default --out "$OUT"
echo "wrote $OUT"

PASSED=$(first_equal_quality "$OUT" "results/default/change" yes)
if [[ -z $PASSED ]]; then
  echo "version 2 does not pass the rule: go back to version 1; the test albums are not touched"
  exit 0
fi
echo "version 2 passes the rule on validation; the test albums report it once"
fetch_sets heldout
index_both test-frames "$WORK/heldout"
"$PY" benchmarks/paired_libraries.py --before "$WORK/libs/test-frames-v1" --before-src "$BEFORE" \
  --after "$WORK/libs/test-frames-v2" --music "$WORK/heldout" --embeddings descriptor default --out "$TEST_OUT"
echo "wrote $TEST_OUT"
