#!/usr/bin/env bash
# reproduce_quality.sh — rebuild benchmarks/results/quality.json from a fresh clone, in one run.
#
# Usage:   bash scripts/reproduce_quality.sh WORK [OUT]
#
#   WORK   a directory outside the repository for the music, libraries and checkpoints (~2 GB of music and
#          ~5 GB of downloaded .debs; `CACHE=DIR` shares the .deb cache between runs)
#   OUT    the JSON to write (default benchmarks/results/quality.json); OUT.md gets the tables
#
# Steps (each skipped when its output exists, so an interrupted run resumes):
#   1. fetch the three album sets of benchmarks/album_sets.json (scripts/fetch_debian_music.sh --set dev, train,
#      heldout) and the synthetic training music (soundalike demo: 200 tracks);
#   2. index a library per set: validation (its 11 albums), test (the held-out set), train (its albums);
#   3. train `contrastive` on the train library only (60 epochs), derive the musicnn variant compared, and take
#      the previous default from git history;
#   4. python benchmarks/quality.py over validation and test: every embedding with 95 % bootstrap intervals.
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/album_sets.sh" "$1"
OUT=$(realpath -m -- "${2:-$ROOT/benchmarks/results/quality.json}")
cd "$ROOT"


fetch_sets dev train heldout
[[ -d $WORK/synth200/library ]] || "$SL" demo --dir "$WORK/synth200" --tracks-per-style 20 --duration 30

train=()
# The committed run trained on the development set's train albums and the synthetic music only (the train
# packages' own train albums, 0 A.D. among them, are fetched but not trained on yet).
for a in $(sets train dev); do train+=("$WORK/dev/$a"); done
"$SL" index "${val[@]}" --library "$WORK/libs/val"
"$SL" index "$WORK/heldout" --library "$WORK/libs/test"
"$SL" index "${train[@]}" "$WORK/synth200/library" --library "$WORK/libs/train" --model descriptor

C=$WORK/ckpt
[[ -f $C/contrastive-train.pt ]] || "$SL" train contrastive --library "$WORK/libs/train" --epochs 60 \
  --out "$C/contrastive-train.pt" --no-embed
"$PY" - "$C" <<'PY'
import sys
from soundalike.models import load_checkpoint, save_checkpoint
from soundalike.models.pretrained import shipped_checkpoint
model, payload = load_checkpoint(shipped_checkpoint("musicnn-mtt"))
model.config.layer, model.config.max_patches = "pooled", 0  # every patch: the default takes 4
save_checkpoint(model, f"{sys.argv[1]}/musicnn_mtt_pooled_p0.pt", epoch=0, history={}, metrics={},
                data=payload.get("data", {}))
PY
# The previous default (a contrastive model trained on every development album), for comparison: from git history.
[[ -f $C/old-default-contrastive.pt ]] || git show 9d720df:src/soundalike/pretrained/default.pt > "$C/old-default-contrastive.pt"
D=src/soundalike/models/pretrained/default.pt
"$PY" benchmarks/quality.py --set "validation=$WORK/libs/val:$WORK/dev,$WORK/train" \
  --set "test=$WORK/libs/test:$WORK/heldout" \
  --embeddings descriptor default "$D" musicnn-mtt musicnn-msd "$C/musicnn_mtt_pooled_p0.pt" \
  "$C/old-default-contrastive.pt" "descriptor+$C/old-default-contrastive.pt" \
  "$C/contrastive-train.pt" "descriptor+$C/contrastive-train.pt" \
  --out "$OUT" --markdown "${OUT%.json}.md"
echo "wrote $OUT"
