#!/usr/bin/env bash
# reproduce_musicnn_patches.sh — the default's musicnn part on fewer than its 4 patches: validation first, by a rule
# written here before the run, then the test albums once.
#
# Usage:   bash scripts/reproduce_musicnn_patches.sh WORK [OUT]
#
#   WORK   the work directory of the other reproduce_* scripts (the album sets are fetched if missing)
#   OUT    the JSON to write (default benchmarks/results/quality-musicnn-patches.json); OUT-test.json gets the test
#          albums' report when a candidate passes the rule
#
# musicnn reads 4 patches of 3 s evenly spread over the analysed window (`max_patches = 4`): about 0.05 CPU-s a
# track, the largest model cost of an analysis (benchmarks/results/stages.json). This indexes the 11 validation albums as
# `soundalike index` ships (the default window) and scores the default with its musicnn part on 2 or 3 patches
# (the same weights; `max_patches` only; their patches are computed from the audio where the library lacks them),
# paired against the default. The rule, written before the run (as reproduce_segments.sh's): a candidate replaces
# the default only if its paired change is at least -1 % with the interval's lower end at least -5 %; of those that
# pass, the one with the fewest patches. Then the test albums report it once; nothing there feeds back.
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/album_sets.sh" "$1"
OUT=$(realpath -m -- "${2:-$ROOT/benchmarks/results/quality-musicnn-patches.json}")
TEST_OUT=${OUT%.json}-test.json
cd "$ROOT"

fetch_sets dev train
W=$("$PY" -c "from soundalike.audio.analysis import DEFAULT_WINDOW as w; print(f'{w.seconds:g}')")
LIB=$WORK/libs/val-default-${W}s
"$SL" index "${val[@]}" --library "$LIB" --analyse-seconds "$W"

COUNTS=(2 3)  # fewest first: the rule takes the first that passes
CANDIDATES=()
for n in "${COUNTS[@]}"; do
  variant default-musicnn "$WORK/ckpt/musicnn_p$n.pt" "max_patches=$n"
  CANDIDATES+=("default-p$n=descriptor@0.14+$WORK/ckpt/musicnn_p$n.pt@0.56+$P/default_contrastive.pt@0.3")
done
"$PY" benchmarks/quality.py --set "validation=$LIB:$WORK/dev,$WORK/train" \
  --embeddings descriptor default "${CANDIDATES[@]}" --versus default --out "$OUT" --markdown "${OUT%.json}.md"
echo "wrote $OUT"

CHOSEN=$(first_equal_quality "$OUT" "sets/validation/results/default-p{n}/map_at_10/vs_default" "${COUNTS[@]}")
if [[ -z $CHOSEN ]]; then
  echo "no candidate passes the rule: the default is unchanged and the test albums are not touched"
  exit 0
fi
echo "chosen on validation: $CHOSEN patches; the test albums report it once"
fetch_sets heldout
TEST_LIB=$WORK/libs/test-default-${W}s
"$SL" index "$WORK/heldout" --library "$TEST_LIB" --analyse-seconds "$W"
"$PY" benchmarks/quality.py --set "test=$TEST_LIB:$WORK/heldout" \
  --embeddings descriptor default \
  "default-p$CHOSEN=descriptor@0.14+$WORK/ckpt/musicnn_p$CHOSEN.pt@0.56+$P/default_contrastive.pt@0.3" \
  --versus default --out "$TEST_OUT" --markdown "${TEST_OUT%.json}.md"
echo "wrote $TEST_OUT"
