#!/usr/bin/env bash
# reproduce_training_data.sh — does more (rendered) music to learn from help? Validation albums only, one run.
#
# Usage:   bash scripts/reproduce_training_data.sh WORK [OUT]
#
#   WORK   the work directory of scripts/reproduce_quality.sh (music, libraries, checkpoints; fetched if missing)
#   OUT    the JSON to write (default benchmarks/results/quality-training-data.json); OUT.md gets the table
#
# Steps (each skipped when its output exists, so an interrupted run resumes):
#   1. the train and validation albums (scripts/fetch_debian_music.sh --set dev, train), the synthetic music
#      (soundalike demo: 200 tracks), and the symbolic music of shared/data/train_music.txt rendered to audio
#      (scripts/render_midi.py: music21's corpus, openttd-openmsx and freedink MIDI; 46 h);
#   2. libraries: validation (its 11 albums, with the shipped default), train-real (every train album and the
#      synthetic music) and train-all (a copy of train-real, the rendered music indexed into it);
#   3. contrastive models at equal compute (the same number of optimiser steps, STEPS): on train-real; on
#      train-all; on train-all with album positives and the stronger augmentations (pitch shift, time stretch,
#      EQ tilt, mixing), and with each of the two alone;
#   4. python benchmarks/quality.py on the validation albums: each model alone, fused with the descriptors, and
#      added to the previous default (descriptor@0.2+musicnn-mtt-pooled-p4@0.8; its key was `default` when the
#      committed JSON was written, before the winner below shipped);
#   5. the weight of the winner (contrastive-all) as the default's third part, on the validation albums
#      (OUT2, default benchmarks/results/quality-default-weights.json). The test albums are not touched: the
#      winner ships and scripts/reproduce_default.sh reports it once;
#   6. the shipped contrastive part embedding 8, 16 or 32 evenly spread segments per track instead of all of them
#      (OUT3, default benchmarks/results/quality-contrastive-segments.json), validation only.
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/album_sets.sh" "$1"
OUT=$(realpath -m -- "${2:-$ROOT/benchmarks/results/quality-training-data.json}")
HOURS=${HOURS:-46}  # with the 14.2 h of real train albums and synthetic music: >= 60 h to train on
cd "$ROOT"
"$PY" -c "import music21, mido" 2>/dev/null || "$PY" -m pip install -q -e '.[render]'

fetch_sets dev train
[[ -d $WORK/synth200/library ]] || "$SL" demo --dir "$WORK/synth200" --tracks-per-style 20 --duration 30
[[ -f $WORK/rendered/MANIFEST.tsv ]] || "$PY" scripts/render_midi.py "$WORK/rendered" --hours "$HOURS" --debs "$CACHE"

real=()
for a in $(sets train dev); do real+=("$WORK/dev/$a"); done
for a in $(sets train train); do real+=("$WORK/train/$a"); done
"$SL" index "${val[@]}" --library "$WORK/libs/val"
"$SL" index "${real[@]}" "$WORK/synth200/library" --library "$WORK/libs/train-real" --model descriptor
if [[ ! -f $WORK/libs/train-all/.complete ]]; then
  rm -rf "$WORK/libs/train-all" && cp -r "$WORK/libs/train-real" "$WORK/libs/train-all"
  "$SL" index "${real[@]}" "$WORK/synth200/library" "$WORK/rendered" --library "$WORK/libs/train-all" --model descriptor
  touch "$WORK/libs/train-all/.complete"
fi

C=$WORK/ckpt
train_contrastive contrastive-real train-real
train_contrastive contrastive-all train-all
train_contrastive contrastive-all-strong train-all --set positives=album --set pitch_shift=2 --set time_stretch=0.2 \
  --set eq_tilt_db=12 --set mix=0.5
# ... and each half of that recipe alone
train_contrastive contrastive-all-album train-all --set positives=album
train_contrastive contrastive-all-augment train-all --set pitch_shift=2 --set time_stretch=0.2 --set eq_tilt_db=12 --set mix=0.5

"$PY" - "$C" <<'PY'
import sys
from soundalike.models import load_checkpoint, save_checkpoint
from soundalike.models.pretrained import shipped_checkpoint
for name in ("musicnn-mtt",):  # the default's musicnn part (pooled, 4 patches), to fuse with in three parts
    model, payload = load_checkpoint(shipped_checkpoint(name))
    model.config.layer, model.config.max_patches = "pooled", 4
    save_checkpoint(model, f"{sys.argv[1]}/{name.replace('-', '_')}_pooled_p4.pt", epoch=0, history={}, metrics={},
                    data=payload.get("data", {}))
PY
MTT=$C/musicnn_mtt_pooled_p4.pt
E=()
for m in contrastive-real contrastive-all contrastive-all-strong contrastive-all-album contrastive-all-augment; do  # alone, with the descriptors, in the default
  E+=("$C/$m.pt" "descriptor+$C/$m.pt" "descriptor@0.16+$MTT@0.64+$C/$m.pt@0.2")
done
PREVIOUS="descriptor@0.2+$MTT@0.8"
"$PY" benchmarks/quality.py --set "validation=$WORK/libs/val:$WORK/dev,$WORK/train" \
  --embeddings descriptor "$PREVIOUS" "${E[@]}" --versus "$PREVIOUS" --out "$OUT" --markdown "${OUT%.json}.md"
echo "wrote $OUT"

OUT2=${OUT2:-$ROOT/benchmarks/results/quality-default-weights.json}
W=()
for w in 0.1 0.2 0.3 0.45; do  # the third part's share; the other two keep their 0.2 : 0.8 ratio
  W+=("$("$PY" -c "import sys; w = float(sys.argv[1]); print(f'descriptor@{0.2 * (1 - w):g}+{sys.argv[2]}@{0.8 * (1 - w):g}+{sys.argv[3]}@{w:g}')" "$w" "$MTT" "$C/contrastive-all.pt")")
done
"$PY" benchmarks/quality.py --set "validation=$WORK/libs/val:$WORK/dev,$WORK/train" \
  --embeddings descriptor "$PREVIOUS" "${W[@]}" --versus "$PREVIOUS" --out "$OUT2" --markdown "${OUT2%.json}.md"
echo "wrote $OUT2"


# 6. The shipped contrastive part on fewer segments per track (cheaper embedding), validation only (OUT3).
OUT3=${OUT3:-$ROOT/benchmarks/results/quality-contrastive-segments.json}
"$PY" - "$C" "$P/default_contrastive.pt" <<'PY'
import sys
from soundalike.models import load_checkpoint, save_checkpoint
for n in (8, 16, 32):
    model, payload = load_checkpoint(sys.argv[2])
    model.config.max_segments = n
    save_checkpoint(model, f"{sys.argv[1]}/contrastive-all-s{n}.pt", epoch=payload.get("epoch", 0), history={},
                    metrics={}, data=payload.get("data", {}))
PY
S=()
for n in 8 16 32; do
  S+=("default-s$n=descriptor@0.14+$P/default.pt@0.56+$C/contrastive-all-s$n.pt@0.3" "contrastive-s$n=$C/contrastive-all-s$n.pt")
done
"$PY" benchmarks/quality.py --set "validation=$WORK/libs/val:$WORK/dev,$WORK/train" \
  --embeddings descriptor default "contrastive=$P/default_contrastive.pt" "${S[@]}" --versus default \
  --out "$OUT3" --markdown "${OUT3%.json}.md"
echo "wrote $OUT3"
