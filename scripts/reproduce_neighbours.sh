#!/usr/bin/env bash
# reproduce_neighbours.sh — the default's search vectors smoothed over the library's neighbourhood (database-side
# augmentation, src/soundalike/search/neighbours.py): chosen on validation by a rule written here before the run,
# then, if one is chosen, the test albums report it once; one run.
#
# Usage:   bash scripts/reproduce_neighbours.sh WORK [OUT]
#
#   WORK   the work directory of the other reproduce_* scripts (the album sets are fetched if missing)
#   OUT    the JSON of the validation albums (default benchmarks/results/quality-neighbours.json); OUT-wide.json
#          the non-test albums', OUT-test.json the test albums' report when a K is chosen (each with its .md)
#
# A key ending in ~nnK searches each track's vector averaged with its K - 1 nearest tracks' (weights cos^3; an
# outside query is expanded the same way). Candidates: K = 5, 8, 10. Steps: index the 11 validation albums and
# every non-test album (the 8 development and 17 train packages' albums, 22 with two tracks or more) as `soundalike
# index` ships; score, paired on the same album resamples (benchmarks/quality.py --versus):
#   - validation albums: the default as it was before this choice (no smoothing, named explicitly, so that a rerun
#     after a K ships scores the same comparison) and the default with each K;
#   - non-test albums: the fusion of the parts no model trained on those albums (descriptors 0.2 + musicnn 0.8;
#     the contrastive part learned from 14 of them), without and with each K.
# The rule, written before the run: a K qualifies when on the non-test albums its paired gain's 95 % interval lies
# above zero, and on the validation albums its paired gain over the default is positive with the interval's lower
# end at least -5 %; of those that qualify, the one with the highest validation MAP@10 ships (default.json
# "neighbours"). Then the test albums (the held-out set, indexed as `index` ships) report the descriptors, the
# default before the choice and the chosen K once (OUT-test.json); nothing there feeds back into the choice.
# The committed quality-neighbours*.json were written at commit 66fd5af. (The rule chose K = 5; the test albums
# reported it 5 % below the default, and it was not shipped: docs/models.md, "Neighbourhood smoothing".)
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/album_sets.sh" "$1"
OUT=$(realpath -m -- "${2:-$ROOT/benchmarks/results/quality-neighbours.json}")
WIDE_OUT=${OUT%.json}-wide.json
TEST_OUT=${OUT%.json}-test.json
cd "$ROOT"

index_val_and_nontest

COUNTS=(5 8 10)
BEFORE="descriptor@0.14+$P/default.pt@0.56+$P/default_contrastive.pt@0.3"
UNSEEN="descriptor@0.2+$P/default.pt@0.8"
VAL_KEYS=("default=$BEFORE") WIDE_KEYS=("unseen=$UNSEEN")
for k in "${COUNTS[@]}"; do
  VAL_KEYS+=("default-nn$k=$BEFORE~nn$k")
  WIDE_KEYS+=("unseen-nn$k=$UNSEEN~nn$k")
done
"$PY" benchmarks/quality.py --set "validation=$VAL_LIB:$WORK/dev,$WORK/train" \
  --embeddings descriptor "${VAL_KEYS[@]}" --versus default --out "$OUT" --markdown "${OUT%.json}.md"
"$PY" benchmarks/quality.py --set "non-test=$WIDE_LIB:$WORK/dev,$WORK/train" \
  --embeddings descriptor "${WIDE_KEYS[@]}" --versus unseen --out "$WIDE_OUT" --markdown "${WIDE_OUT%.json}.md"
echo "wrote $OUT and $WIDE_OUT"

# The rule (see the header), applied to the validation and non-test albums only.
CHOSEN=$("$PY" - "$OUT" "$WIDE_OUT" "${COUNTS[@]}" <<'PY'
import json, sys
val = json.load(open(sys.argv[1]))["sets"]["validation"]["results"]
wide = json.load(open(sys.argv[2]))["sets"]["non-test"]["results"]
best = None
for k in sys.argv[3:]:
    v, w = val[f"default-nn{k}"]["map_at_10"], wide[f"unseen-nn{k}"]["map_at_10"]
    if w["vs_unseen"]["gain_lo"] > 0 and v["vs_default"]["gain"] > 0 and v["vs_default"]["gain_lo"] >= -0.05:
        if best is None or v["mean"] > best[1]:
            best = (k, v["mean"])
print(best[0] if best else "")
PY
)
if [[ -z $CHOSEN ]]; then
  echo "no K passes the rule: the default is unchanged and the test albums are not touched"
  exit 0
fi
echo "chosen on validation: K = $CHOSEN; the test albums report it once"
test_once "$TEST_OUT" descriptor "default=$BEFORE" "default-nn$CHOSEN=$BEFORE~nn$CHOSEN"
