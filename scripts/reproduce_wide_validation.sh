#!/usr/bin/env bash
# reproduce_wide_validation.sh — musicnn's Million Song Dataset weights in the default? Chosen on validation, one run.
#
# Usage:   bash scripts/reproduce_wide_validation.sh WORK [OUT]
#
#   WORK   the work directory of the other reproduce_* scripts (music fetched if missing)
#   OUT    the JSON of step 3 (default benchmarks/results/quality-wide-validation.json); step 4 writes
#          OUT with -contrastive before .json, step 6 OUT with -synthetic and -synthetic-vs-default; each gets a
#          .md with the tables
#
# The 11 validation albums cannot rank models that learned nothing from our music (the descriptors, musicnn's
# MagnaTagATune and Million Song Dataset weights): their figures there swing with two or three albums. For those
# models every album outside the test set is unseen, so they are compared on all of them:
#   1. fetch the development and train albums (scripts/fetch_debian_music.sh --set dev, train);
#   2. index every non-test album (22 with two tracks or more) with `soundalike index` (the 120 s default window)
#      and the validation albums as scripts/reproduce_window.sh does; derive musicnn-msd's pooled layer on 4
#      patches, as the default's musicnn part (MagnaTagATune) takes it;
#   3. on the non-test albums: descriptors + MTT + MSD fusions over a grid of weights (OUT);
#   4. the best fusion of step 3 with the contrastive part (trained on train albums, so validation albums only)
#      at several weights, against the shipped default (OUT with -contrastive);
#   5. a contrastive model trained on rendered and synthetic music alone: train-all (scripts/
#      reproduce_training_data.sh) without its real albums, at the equal compute of that script (STEPS), so that
#      no non-test album is seen by any part;
#   6. on the non-test albums: that model alone, with the descriptors, in the default's recipe (descriptors 0.14 +
#      MTT 0.56 + it 0.3) and added to step 3's best at several weights (OUT with -synthetic); then the best of
#      step 6 against the shipped default on the 11 validation albums, the only albums where the shipped
#      default's contrastive part (trained on train albums) can be judged (OUT with -synthetic-vs-default).
#      The rule, fixed before the run: step 6's best replaces the default only if it also beats the shipped
#      default there.
# The test albums are not touched.
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/album_sets.sh" "$1"
OUT=$(realpath -m -- "${2:-$ROOT/benchmarks/results/quality-wide-validation.json}")
OUT2=${OUT%.json}-contrastive.json
cd "$ROOT"

fetch_sets dev train
"$SL" index "$WORK/dev" "$WORK/train" --library "$WORK/libs/nontest-120" --analyse-seconds 120
"$SL" index "${val[@]}" --library "$WORK/libs/val-window-120" --analyse-seconds 120
C=$WORK/ckpt
msd_pooled_p4
MTT=$P/default.pt
# descriptors' weight x the MSD share of the rest (the old default is descriptors 0.2 + MTT 0.8)
GRID=$("$PY" - "$MTT" "$MSD" <<'PY'
import sys
mtt, msd = sys.argv[1:]
for d in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6):
    for share in (0.0, 0.25, 0.5, 0.7, 0.85, 1.0):
        s = round((1 - d) * share, 3)
        m = round(1 - d - s, 3)
        parts = [f"descriptor@{d:g}"] + ([f"{mtt}@{m:g}"] if m else []) + ([f"{msd}@{s:g}"] if s else [])
        print(f"d{d:g}+mtt{m:g}+msd{s:g}=" + "+".join(parts))
PY
)
mapfile -t E <<<"$GRID"
"$PY" benchmarks/quality.py --set "non-test=$WORK/libs/nontest-120:$WORK/dev,$WORK/train" \
  --embeddings descriptor "mtt=$MTT" "msd=$MSD" "${E[@]}" --versus d0.2+mtt0.8+msd0 \
  --out "$OUT" --markdown "${OUT%.json}.md"
echo "wrote $OUT"

BEST=$("$PY" - "$OUT" "$GRID" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["sets"]["non-test"]["results"]
grid = dict(line.split("=", 1) for line in sys.argv[2].splitlines())
print(grid[max(grid, key=lambda name: results[name]["map_at_10"]["mean"])])
PY
)
plus_shares() {  # LABEL MODEL: the best fusion with MODEL added at each share (the best keeps its ratios)
  "$PY" - "$BEST" "$1" "$2" <<'PY'
import sys
from soundalike.search.space import split_part
best, label, model = sys.argv[1:]
parts = [split_part(p) for p in best.split("+")]
for w in (0.1, 0.2, 0.3, 0.45):
    print(f"best+{label}{w:g}=" + "+".join(f"{n}@{(1 - w) * (x or 1):.3g}" for n, x in parts) + f"+{model}@{w:g}")
PY
}
SHARES=$(plus_shares contrastive "$P/default_contrastive.pt")  # the contrastive part's share
mapfile -t W <<<"$SHARES"
"$PY" benchmarks/quality.py --set "validation=$WORK/libs/val-window-120:$WORK/dev,$WORK/train" \
  --embeddings descriptor default "best=$BEST" "${W[@]}" --versus default \
  --out "$OUT2" --markdown "${OUT2%.json}.md"
echo "wrote $OUT2"

# 5. Rendered and synthetic music only: train-all less the real albums (dev, train), same recipe as contrastive-all.
need_train_all
if [[ ! -f $WORK/libs/train-synth/.complete ]]; then
  rm -rf "$WORK/libs/train-synth" && cp -r "$WORK/libs/train-all" "$WORK/libs/train-synth"
  rm -f "$WORK/libs/train-synth/writer.lock" "$WORK/libs/train-synth/.complete"
  "$PY" - "$WORK" <<'PY'
import os, sys
from soundalike.library.catalog import Library
work = sys.argv[1]
with Library.open(f"{work}/libs/train-synth", create=False) as lib:
    real = tuple(os.fsencode(f"{work}/{s}/") for s in ("dev", "train"))
    paths = [p for p, in lib.conn.execute("SELECT path FROM files") if p.startswith(real)]
    lib.remove_files(paths)
    print(f"train-synth: {len(lib.tracks())} tracks (rendered and synthetic), {len(paths)} real files left out")
PY
  touch "$WORK/libs/train-synth/.complete"
fi
train_contrastive contrastive-synth train-synth
SYN=$C/contrastive-synth.pt

# 6. Every part unseen: the non-test albums judge fusions with the synthetic-only contrastive model.
OUT3=${OUT%.json}-synthetic.json
OUT4=${OUT%.json}-synthetic-vs-default.json
S=("synthetic=$SYN" "descriptor+synthetic=descriptor+$SYN" "default-recipe=descriptor@0.14+$MTT@0.56+$SYN@0.3")
SHARES=$(plus_shares synthetic "$SYN")
mapfile -t SYNTHETIC <<<"$SHARES"
S+=("${SYNTHETIC[@]}")
"$PY" benchmarks/quality.py --set "non-test=$WORK/libs/nontest-120:$WORK/dev,$WORK/train" \
  --embeddings descriptor "best=$BEST" "${S[@]}" --versus best --out "$OUT3" --markdown "${OUT3%.json}.md"
echo "wrote $OUT3"
WINNER=$("$PY" - "$OUT3" "best=$BEST" "${S[@]}" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["sets"]["non-test"]["results"]
specs = dict(spec.split("=", 1) for spec in sys.argv[2:])
best = max(specs, key=lambda label: results[label]["map_at_10"]["mean"])
print(f"{best}={specs[best]}")
PY
)
"$PY" benchmarks/quality.py --set "validation=$WORK/libs/val-window-120:$WORK/dev,$WORK/train" \
  --embeddings descriptor default "$WINNER" --versus default --out "$OUT4" --markdown "${OUT4%.json}.md"
echo "wrote $OUT4"
