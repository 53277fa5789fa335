#!/usr/bin/env bash
# reproduce_segments.sh — the default's contrastive part on fewer segments of the analysed window (a cheaper
# embedding): chosen on the validation albums by a rule written here before the run, then, if one is chosen, the
# test albums report it once; one run.
#
# Usage:   bash scripts/reproduce_segments.sh WORK [OUT]
#
#   WORK   the work directory of the other reproduce_* scripts (the album sets are fetched if missing)
#   OUT    the JSON to write (default benchmarks/results/quality-segments.json); OUT.md gets the tables, and
#          OUT-test.json (OUT-test.md) the test albums' report when a candidate is chosen
#
# The contrastive part embeds every segment of 128 frames at a hop of 64 (79 in the 120 s window) and averages
# them; here it takes 8, 16, 24 or 32 of them, evenly spread (`max_segments`), in the default with the same
# weights. "default" below is the default as it was before this run's choice — its contrastive part on every
# segment (`max_segments = 0`), built explicitly, so that a rerun after 16 shipped scores the same comparison. Steps: index the validation albums as `soundalike index` ships (the 120 s window); score the
# descriptors, the default and the candidates there, paired against the default on the same resamples
# (benchmarks/quality.py --versus default). The rule, written before the run (as reproduce_student.sh's): a
# candidate may replace the default only if its paired change against the default is at least -1 % and its 95 %
# interval's lower end at least -5 % (equal quality, a fraction of the cost); of those that pass, the one with the
# fewest segments. When one passes, the test albums (the held-out set, indexed the same way) report the
# descriptors, the default before the choice and the chosen candidate once (OUT-test.json); nothing there feeds back into
# the choice. The cost of each: benchmarks/stages.py (docs/performance.md). The committed quality-segments*.json
# were written at commit f8f2a6d (descriptors version 1, before this choice shipped).
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/album_sets.sh" "$1"
OUT=$(realpath -m -- "${2:-$ROOT/benchmarks/results/quality-segments.json}")
TEST_OUT=${OUT%.json}-test.json
cd "$ROOT"

fetch_sets dev train
LIB=$WORK/libs/val-segments
"$SL" index "${val[@]}" --library "$LIB"

COUNTS=(8 16 24 32)
for n in 0 "${COUNTS[@]}"; do  # 0: every segment, the comparison's baseline
  variant default-contrastive "$WORK/ckpt/contrastive_s$n.pt" "max_segments=$n"
done
BEFORE_DEFAULT="default=descriptor@0.14+$P/default.pt@0.56+$WORK/ckpt/contrastive_s0.pt@0.3"
CANDIDATES=()
for n in "${COUNTS[@]}"; do
  CANDIDATES+=("default-s$n=descriptor@0.14+$P/default.pt@0.56+$WORK/ckpt/contrastive_s$n.pt@0.3")
done
"$PY" benchmarks/quality.py --set "validation=$LIB:$WORK/dev,$WORK/train" \
  --embeddings descriptor "$BEFORE_DEFAULT" "${CANDIDATES[@]}" --versus default --out "$OUT" --markdown "${OUT%.json}.md"
echo "wrote $OUT"

# The rule (see the header), applied to the validation results only.
CHOSEN=$(first_equal_quality "$OUT" "sets/validation/results/default-s{n}/map_at_10/vs_default" "${COUNTS[@]}")
if [[ -z $CHOSEN ]]; then
  echo "no candidate passes the rule: the default is unchanged and the test albums are not touched"
  exit 0
fi
echo "chosen on validation: $CHOSEN segments; the test albums report it once"
fetch_sets heldout
TEST_LIB=$WORK/libs/test-segments
"$SL" index "$WORK/heldout" --library "$TEST_LIB"
"$PY" benchmarks/quality.py --set "test=$TEST_LIB:$WORK/heldout" \
  --embeddings descriptor "$BEFORE_DEFAULT" \
  "default-s$CHOSEN=descriptor@0.14+$P/default.pt@0.56+$WORK/ckpt/contrastive_s$CHOSEN.pt@0.3" \
  --versus default --out "$TEST_OUT" --markdown "${TEST_OUT%.json}.md"
echo "wrote $TEST_OUT"
