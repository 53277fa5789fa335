# album_sets.sh — the preamble the reproduce_* scripts share; sourced (`source scripts/album_sets.sh WORK`), not run.
#
# Defines ROOT (the checkout), WORK (its argument, absolute), PY and SL (the checkout's python and soundalike),
# exports CACHE (the .deb cache, default WORK/debcache), creates WORK/libs and WORK/ckpt, and gives
#   sets SET KEY       the albums of benchmarks/album_sets.json under SET (train, validation, test) and KEY
#   fetch_sets S...    scripts/fetch_debian_music.sh --set S into WORK/S, for each set not fetched yet
#   val                the validation albums' folders (an array)
#   epochs_for LIB     epochs of a contrastive run on LIB that make STEPS optimiser steps (equal compute; STEPS
#                      defaults to 2000, about the compute of the contrastive model in quality.json)
#   train_contrastive OUT LIB [--set K=V ...]
#                      that run on WORK/libs/LIB into WORK/ckpt/OUT.pt; resumes a killed run, skips a finished one
#   need_train_all     stop, saying what to run, when scripts/reproduce_training_data.sh has not built train-all
#   variant PART OUT FIELD=VALUE...
#                      a copy of a shipped checkpoint (PART: default-musicnn, default-contrastive — the default's
#                      parts — or a shipped name such as musicnn-msd) with config fields set, the same weights,
#                      written to OUT
#   msd_pooled_p4      MSD musicnn's pooled layer on 4 patches (as the default's MTT part), written to
#                      WORK/ckpt/musicnn_msd_pooled_p4.pt; sets MSD to that path
#   P, DEFAULT_PARTS   the shipped models' folder, and the default's parts as quality.py --embeddings takes them
#   first_equal_quality JSON PATH N...
#                      the first N (in the order given) whose paired change passes the equal-quality rule the
#                      scripts write before their runs: the change at least -1 %, its 95 % interval's lower end at
#                      least -5 %. PATH is where the change (gain, gain_lo) sits in the JSON, keys joined by '/',
#                      with {n} standing for N; nothing is printed when none passes
#   paired_precisions KIND MUSIC OUT PRECISION... -- FOLDER...
#                      index the FOLDERs as `index` ships once per SOUNDALIKE_PRECISION, into
#                      WORK/libs/KIND-precision-<commit>-<precision>, and pair every other precision's library
#                      with the first's query by query (benchmarks/paired_libraries.py, MUSIC its roots) over the
#                      embeddings in the array EMBEDDINGS, into OUT
#   index_val_and_nontest
#                      fetch the dev and train sets and index, as `index` ships (the default analysis window W), the
#                      11 validation albums into VAL_LIB=WORK/libs/val-default-<W>s and every non-test album (dev +
#                      train) into WIDE_LIB=WORK/libs/nontest-<W>s; sets W, VAL_LIB and WIDE_LIB
#   test_once OUT EMBEDDING...
#                      the test albums' one report of a choice made on validation: fetch and index the held-out set
#                      as `index` ships (WORK/libs/test-default-<window>s) and score the embeddings there
#                      (benchmarks/quality.py --versus default) into OUT (and OUT's .md)
# It does not change directory: a script resolves its own relative arguments first, then cds to ROOT.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
WORK=$(realpath -m -- "$1")
PY=$ROOT/.venv/bin/python
SL=$ROOT/.venv/bin/soundalike
export CACHE=${CACHE:-$WORK/debcache}
mkdir -p "$WORK/libs" "$WORK/ckpt"
# The shipped models (paths from ROOT, where the scripts run), and the default's parts scored alone beside it.
P=src/soundalike/models/pretrained
DEFAULT_PARTS=(descriptor "musicnn-part=$P/default.pt" "contrastive-part=$P/default_contrastive.pt")

sets() {
  "$PY" -c "import json,sys; print(' '.join(json.load(open(sys.argv[1]))[sys.argv[2]][sys.argv[3]]))" \
    "$ROOT/benchmarks/album_sets.json" "$@"
}

fetch_sets() {
  local s
  for s in "$@"; do
    [[ -f $WORK/$s/MANIFEST.tsv ]] || bash "$ROOT/scripts/fetch_debian_music.sh" --set "$s" "$WORK/$s"
  done
}

val=()
for a in $(sets validation dev); do val+=("$WORK/dev/$a"); done
for a in $(sets validation train); do val+=("$WORK/train/$a"); done

STEPS=${STEPS:-2000}
epochs_for() {  # tracks x 4 pairs / 32 per batch, less the 10 % held out, make one epoch
  "$PY" - "$1" "$STEPS" <<'PY'
import math, sys
from soundalike.library.catalog import Library
with Library.open(sys.argv[1], create=False) as lib:
    n = len(lib.tracks())
train = n - round(n * 0.1)
print(max(1, round(int(sys.argv[2]) / math.ceil(train * 4 / 32))))
PY
}

train_contrastive() {
  local out=$1 lib=$2 resume=()
  shift 2
  [[ -f $WORK/ckpt/$out.done ]] && return
  [[ -f $WORK/ckpt/$out.last.pt ]] && resume=(--resume)
  "$SL" train contrastive --library "$WORK/libs/$lib" --epochs "$(epochs_for "$WORK/libs/$lib")" \
    --out "$WORK/ckpt/$out.pt" --no-embed "${resume[@]}" "$@"
  touch "$WORK/ckpt/$out.done"
}

need_train_all() {
  [[ -d $WORK/libs/train-all ]] || { echo "run scripts/reproduce_training_data.sh $WORK first (train-all)" >&2; exit 1; }
}

variant() {
  "$PY" - "$@" <<'PY'
import sys
from soundalike.models import load_checkpoint, save_checkpoint
from soundalike.models.pretrained import default_checkpoints, shipped_checkpoint
part, out, *fields = sys.argv[1:]
parts = {"default-musicnn": 0, "default-contrastive": 1}
source = default_checkpoints()[parts[part]] if part in parts else shipped_checkpoint(part)
if source is None:
    sys.exit(f"variant: no shipped checkpoint {part!r}")
model, payload = load_checkpoint(source)
for field in fields:
    key, _, value = field.partition("=")
    setattr(model.config, key, type(getattr(model.config, key))(value))  # as the field's own type
save_checkpoint(model, out, epoch=0, history={}, metrics={}, data=payload.get("data", {}))
PY
}

msd_pooled_p4() {
  MSD=$WORK/ckpt/musicnn_msd_pooled_p4.pt
  variant musicnn-msd "$MSD" layer=pooled max_patches=4  # as the default's musicnn (MTT) part
}

first_equal_quality() {
  "$PY" - "$@" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
for n in sys.argv[3:]:
    change = data
    for key in sys.argv[2].replace("{n}", n).split("/"):
        change = change[key]
    if change["gain"] >= -0.01 and change["gain_lo"] >= -0.05:
        print(n)
        break
PY
}

index_val_and_nontest() {
  fetch_sets dev train
  W=$("$PY" -c "from soundalike.audio.analysis import DEFAULT_WINDOW as w; print(f'{w.seconds:g}')")
  VAL_LIB=$WORK/libs/val-default-${W}s
  WIDE_LIB=$WORK/libs/nontest-${W}s
  "$SL" index "${val[@]}" --library "$VAL_LIB" --analyse-seconds "$W"
  "$SL" index "$WORK/dev" "$WORK/train" --library "$WIDE_LIB" --analyse-seconds "$W"
}

test_once() {
  local out=$1 w lib
  shift
  fetch_sets heldout
  w=$("$PY" -c "from soundalike.audio.analysis import DEFAULT_WINDOW as w; print(f'{w.seconds:g}')")
  lib=$WORK/libs/test-default-${w}s
  "$SL" index "$WORK/heldout" --library "$lib" --analyse-seconds "$w"
  "$PY" "$ROOT/benchmarks/quality.py" --set "test=$lib:$WORK/heldout" --embeddings "$@" --versus default \
    --out "$out" --markdown "${out%.json}.md"
  echo "wrote $out"
}

paired_precisions() {
  local kind=$1 music=$2 out=$3 commit p
  shift 3
  local precisions=() after=()
  while [[ $1 != -- ]]; do precisions+=("$1"); shift; done
  shift
  commit=$(git -C "$ROOT" rev-parse --short HEAD)
  for p in "${precisions[@]}"; do
    SOUNDALIKE_PRECISION=$p "$SL" index "$@" --library "$WORK/libs/$kind-precision-$commit-$p"
    [[ $p == "${precisions[0]}" ]] || after+=(--after "$p=$WORK/libs/$kind-precision-$commit-$p")
  done
  "$PY" "$ROOT/benchmarks/paired_libraries.py" --before "$WORK/libs/$kind-precision-$commit-${precisions[0]}" \
    "${after[@]}" --music "$music" --embeddings "${EMBEDDINGS[@]}" --out "$out"
  echo "wrote $out"
}
