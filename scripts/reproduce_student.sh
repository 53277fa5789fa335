#!/usr/bin/env bash
# reproduce_student.sh — can a small student taught by musicnn take musicnn's place in the default, at equal
# quality and a fraction of its cost? Trains on the train albums, scores on the validation albums; one run.
#
# Usage:   bash scripts/reproduce_student.sh WORK [OUT]
#
#   WORK   the work directory of the other reproduce_* scripts (the album sets are fetched if missing)
#   OUT    the JSON to write (default benchmarks/results/quality-student.json); OUT.md gets the tables, and
#          OUT-training.json what the student was trained on and its losses (from its checkpoint)
#
# Indexes the train albums (benchmarks/album_sets.json; real music only, whole tracks) with `soundalike index
# --analyse-seconds 0`, trains `soundalike train student` there (teacher: the default's musicnn part, default.pt;
# its features for a patch every 1.5 s of every track), indexes the validation albums as `soundalike index` ships,
# embeds the student, and scores it alone, beside musicnn alone, and in musicnn's place in the default (same
# weights) — also with the contrastive part on 16 evenly spread segments of a track instead of all of them (a
# third of its cost; docs/models.md) — paired against that default on the same resamples. The rule, written before
# the run: a candidate replaces the default only if its paired change against the default is at least -1 % and its
# 95 % interval's lower end at least -5 % (equal quality; issue 12 item 3); of those that pass, the cheaper; then
# the test albums report the new default once. Their cost: benchmarks/stages.py (docs/performance.md).
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/album_sets.sh" "$1"
OUT=$(realpath -m -- "${2:-$ROOT/benchmarks/results/quality-student.json}")
cd "$ROOT"

fetch_sets dev train
real=()
for a in $(sets train dev); do real+=("$WORK/dev/$a"); done
for a in $(sets train train); do real+=("$WORK/train/$a"); done
"$SL" index "${real[@]}" --library "$WORK/libs/train-student" --analyse-seconds 0
STUDENT=$WORK/ckpt/student.pt
if [[ ! -f $WORK/ckpt/student.done ]]; then
  resume=()
  [[ -f $WORK/ckpt/student.last.pt ]] && resume=(--resume)
  "$SL" train student --library "$WORK/libs/train-student" --out "$STUDENT" --no-embed "${resume[@]}"
  touch "$WORK/ckpt/student.done"
fi

LIB=$WORK/libs/val-student
"$SL" index "${val[@]}" --library "$LIB"
S16=$WORK/ckpt/contrastive_s16.pt
"$PY" - "$S16" <<'PY'
import sys
from soundalike.models import load_checkpoint, save_checkpoint
from soundalike.models.pretrained import default_checkpoints
model, payload = load_checkpoint(default_checkpoints()[1])  # the default's contrastive part
model.config.max_segments = 16
save_checkpoint(model, sys.argv[1], epoch=0, history={}, metrics={}, data=payload.get("data", {}))
PY
# The default as it was before this run (musicnn as its second part), and the candidates with its weights.
MUSICNN_DEFAULT="descriptor@0.14+$P/default.pt@0.56+$P/default_contrastive.pt@0.3"
WITH_STUDENT="descriptor@0.14+$STUDENT@0.56+$P/default_contrastive.pt@0.3"
WITH_STUDENT_S16="descriptor@0.14+$STUDENT@0.56+$S16@0.3"
"$PY" benchmarks/quality.py --set "validation=$LIB:$WORK/dev,$WORK/train" \
  --embeddings descriptor "musicnn-part=$P/default.pt" "contrastive-part=$P/default_contrastive.pt" \
  "student=$STUDENT" "musicnn-default=$MUSICNN_DEFAULT" "default-with-student=$WITH_STUDENT" \
  "default-with-student-s16=$WITH_STUDENT_S16" --versus musicnn-default \
  --out "$OUT" --markdown "${OUT%.json}.md"
"$PY" - "$STUDENT" "${OUT%.json}-training.json" <<'PY'
import json, sys
from soundalike.models.checkpoint import read_checkpoint
card = read_checkpoint(sys.argv[1])
keep = {k: card.get(k) for k in ("model", "model_id", "config", "epoch", "step", "best_val_loss", "data", "history")}
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump({"benchmark": "student-training", "checkpoint": sys.argv[1], **keep}, f, indent=1, default=str)
PY
echo "wrote $OUT"
