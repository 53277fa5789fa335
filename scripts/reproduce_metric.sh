#!/usr/bin/env bash
# reproduce_metric.sh — learned metrics (RCA, src/soundalike/search/metric.py) for the default's parts, fitted on the
# train albums, chosen on validation by a rule written here before the run, then reported once on the test albums.
#
# Usage:   bash scripts/reproduce_metric.sh WORK [OUT]
#
#   WORK   the work directory of the other reproduce_* scripts (the album sets are fetched if missing)
#   OUT    the validation albums' JSON (default benchmarks/results/quality-metric.json); OUT-weights.json the weight
#          grid's, OUT-test.json the test albums' report when a candidate ships (each with its .md); the fitted
#          candidates go to WORK/metrics/s<SHRINK>/ (scripts/fit_metric.py)
#
# RCA whitens the covariance of tracks within an album (train albums only: benchmarks/album_sets.json), shrunk by
# SHRINK x its mean eigenvalue. Exploration on the validation albums before this script (docs/models.md, "Learned
# metrics") found it helps the descriptors and the contrastive part and hurts musicnn's pooled features, so the
# candidates map those two parts. Steps:
#   1. index every non-test album (dev + train) and the 11 validation albums as `index` ships; fit RCA of the
#      descriptors and of the contrastive part on the 14 train albums for SHRINK in 0.03, 0.1, 0.3, 1;
#   2. score on the validation albums, paired against the default as it was (named explicitly, so that a rerun
#      after a choice ships scores the same comparison): each SHRINK at the default's weights (OUT);
#   3. for the best SHRINK, the weight grid descriptors {0.1, 0.14, 0.2, 0.3} x contrastive {0.2, 0.3, 0.4}
#      (musicnn the rest) (OUT-weights.json).
# The rule, written before the run: the candidate with the highest validation MAP@10 of steps 2-3 ships when its
# paired gain over the default is at least +2 % with the 95 % interval's lower end at least -5 %. Then the test
# albums report the descriptors, the default before the choice and the candidate once (OUT-test.json); it does not
# ship if its paired change there lies wholly below zero (the gate of docs/models.md, "Neighbourhood smoothing").
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/album_sets.sh" "$1"
OUT=$(realpath -m -- "${2:-$ROOT/benchmarks/results/quality-metric.json}")
WEIGHTS_OUT=${OUT%.json}-weights.json
TEST_OUT=${OUT%.json}-test.json
cd "$ROOT"

index_val_and_nontest
CONTRASTIVE=$("$PY" -c "from soundalike.models.pretrained import shipped_model_ids as s; print(s()['default_contrastive.pt'])")
MUSICNN=$("$PY" -c "from soundalike.models.pretrained import shipped_model_ids as s; print(s()['default.pt'])")

SHRINKS=(0.03 0.1 0.3 1)
declare -A DESC_METRIC CONTR_METRIC
FOLDERS=()
for s in "${SHRINKS[@]}"; do
  mkdir -p "$WORK/metrics/s$s"
  DESC_METRIC[$s]=$("$PY" scripts/fit_metric.py --library "$WIDE_LIB" --music "$WORK/dev,$WORK/train" \
    --model descriptor --shrink "$s" --out "$WORK/metrics/s$s/descriptor.npz" | cut -f1)
  CONTR_METRIC[$s]=$("$PY" scripts/fit_metric.py --library "$WIDE_LIB" --music "$WORK/dev,$WORK/train" \
    --model "$CONTRASTIVE" --shrink "$s" --out "$WORK/metrics/s$s/contrastive.npz" | cut -f1)
  FOLDERS+=("$WORK/metrics/s$s")
done
export SOUNDALIKE_METRICS
SOUNDALIKE_METRICS=$(IFS=:; echo "${FOLDERS[*]}")

key() {  # descriptor weight, contrastive weight, shrink: the default's parts with both metrics
  local wm
  wm=$("$PY" -c "print(f'{1 - $1 - $2:g}')")
  echo "descriptor#${DESC_METRIC[$3]}@$1+$MUSICNN@$wm+$CONTRASTIVE#${CONTR_METRIC[$3]}@$2"
}
BEFORE="descriptor@0.14+$MUSICNN@0.56+$CONTRASTIVE@0.3"
KEYS=("default=$BEFORE")
for s in "${SHRINKS[@]}"; do KEYS+=("rca-s$s=$(key 0.14 0.3 "$s")"); done
"$PY" benchmarks/quality.py --set "validation=$VAL_LIB:$WORK/dev,$WORK/train" \
  --embeddings descriptor "${KEYS[@]}" --versus default --out "$OUT" --markdown "${OUT%.json}.md"
BEST=$("$PY" - "$OUT" "${SHRINKS[@]}" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["sets"]["validation"]["results"]
print(max(sys.argv[2:], key=lambda s: r[f"rca-s{s}"]["map_at_10"]["mean"]))
PY
)
echo "best shrink on validation: $BEST"

KEYS=("default=$BEFORE")
for wd in 0.1 0.14 0.2 0.3; do
  for wc in 0.2 0.3 0.4; do KEYS+=("rca-s$BEST-d$wd-c$wc=$(key "$wd" "$wc" "$BEST")"); done
done
"$PY" benchmarks/quality.py --set "validation=$VAL_LIB:$WORK/dev,$WORK/train" \
  --embeddings descriptor "${KEYS[@]}" --versus default --out "$WEIGHTS_OUT" --markdown "${WEIGHTS_OUT%.json}.md"
echo "wrote $OUT and $WEIGHTS_OUT"

# The rule (see the header), on the validation albums only.
CHOSEN=$("$PY" - "$OUT" "$WEIGHTS_OUT" <<'PY'
import json, sys
results = {}
for path in sys.argv[1:]:
    for name, r in json.load(open(path))["sets"]["validation"]["results"].items():
        if name.startswith("rca-"):
            results[name] = r["map_at_10"]
best = max(results, key=lambda n: results[n]["mean"])
v = results[best]["vs_default"]
print(best if v["gain"] >= 0.02 and v["gain_lo"] >= -0.05 else "")
PY
)
if [[ -z $CHOSEN ]]; then
  echo "no candidate passes the rule: the default is unchanged and the test albums are not touched"
  exit 0
fi
CHOSEN_KEY=$("$PY" - "$OUT" "$WEIGHTS_OUT" "$CHOSEN" <<'PY'
import json, sys
for path in sys.argv[1:3]:
    keys = json.load(open(path))["sets"]["validation"]["keys"]
    if sys.argv[3] in keys:
        print(keys[sys.argv[3]]); break
PY
)
echo "chosen on validation: $CHOSEN ($CHOSEN_KEY); the test albums report it once"
test_once "$TEST_OUT" descriptor "default=$BEFORE" "$CHOSEN=$CHOSEN_KEY"
"$PY" - "$TEST_OUT" "$CHOSEN" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))["sets"]["test"]["results"][sys.argv[2]]["map_at_10"]["vs_default"]
gate = "below zero: it does not ship" if v["gain_hi"] < 0 else "not wholly below zero: it ships"
print(f"the test albums' gate: paired change {v['gain']:+.1%} [{v['gain_lo']:+.1%}, {v['gain_hi']:+.1%}], {gate}")
PY
