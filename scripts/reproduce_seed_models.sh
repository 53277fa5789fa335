#!/usr/bin/env bash
# reproduce_seed_models.sh — the five seed models retrained on the larger training music, reported on validation and test.
#
# Usage:   bash scripts/reproduce_seed_models.sh WORK [OUT]
#
#   WORK   the work directory of the other reproduce_* scripts (train-all must exist: run
#          scripts/reproduce_training_data.sh WORK first)
#   OUT    the JSON to write (default benchmarks/results/quality-seed-models.json); OUT.md gets the tables
#
# Steps (each skipped when its output exists, so an interrupted run resumes):
#   1. the validation and test albums indexed with the 120 s window, as scripts/reproduce_default.sh does;
#   2. every seed family (melae, descriptor-ae, clothier, stollery, cf-regression) trained on train-all (60.8 h:
#      the train albums, the synthetic and the rendered music) with its paper's recipe, at most STEPS optimiser
#      steps (default 2000, the contrastive models' compute): epochs = min(the paper's, STEPS / batches per epoch),
#      at least one per training phase. cf-regression learns the latent factors of playlists made of train-all's
#      album folders (album labels of training music are free metadata, issue 12);
#   3. python benchmarks/quality.py on the validation and test albums: each model alone and fused with the
#      descriptors (equal weights, the seed protocol's fusion), with the descriptors and the shipped default,
#      paired gains over the descriptors with 95 % bootstrap intervals over albums; then each run's training
#      cost (epochs, steps, wall seconds per epoch, from its checkpoint) is added to OUT.
# The seed models are reported as published: nothing here is a choice, so the test albums are touched only to report.
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/album_sets.sh" "$1"
OUT=$(realpath -m -- "${2:-$ROOT/benchmarks/results/quality-seed-models.json}")
cd "$ROOT"
need_train_all

fetch_sets dev train heldout
"$SL" index "${val[@]}" --library "$WORK/libs/val-window-120" --analyse-seconds 120
"$SL" index "$WORK/heldout" --library "$WORK/libs/test-window-120" --analyse-seconds 120

C=$WORK/ckpt
PLAYLISTS=$C/train-all-album-playlists
if [[ ! -d $PLAYLISTS ]]; then  # one M3U per album folder of train-all's music
  "$PY" - "$WORK/libs/train-all" "$PLAYLISTS.tmp" <<'PY'
import os, sys
from collections import defaultdict
from pathlib import Path
from soundalike.library.catalog import Library
albums = defaultdict(list)
with Library.open(sys.argv[1], create=False) as lib:
    for t in lib.tracks():
        albums[str(Path(t.path).parent)].append(t.path)
out = Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
for n, (folder, paths) in enumerate(sorted(albums.items())):
    (out / f"{n:04d}.m3u").write_text("#EXTM3U\n" + "\n".join(sorted(paths)) + "\n")
print(f"{len(albums)} album playlists")
PY
  mv "$PLAYLISTS.tmp" "$PLAYLISTS"
fi

epochs_capped() {  # FAMILY OPTIONS-JSON: the paper's epochs, capped at STEPS optimiser steps
  "$PY" - "$WORK/libs/train-all" "$1" "$STEPS" "$2" <<'PY'
import json, math, sys
from soundalike.library.catalog import Library
from soundalike.models import build
from soundalike.models.training import load_training_data
lib_path, name, steps, options = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
with Library.open(lib_path, create=False) as lib:
    model = build(name)
    cfg = model.config
    data = load_training_data(lib, model, cfg.validation_fraction, cfg.seed)
    model.setup_training(lib, data.train, data.val, options)
    per_epoch = model.batches_per_epoch(len(data.train))
phases = 2 if getattr(cfg, "phase2_epochs", 0) else 1  # seed 002's two phases: at least an epoch each
print(max(phases, min(int(cfg.epochs), round(steps / per_epoch))))
PY
}

train_seed() {  # FAMILY [train options...]
  local name=$1 resume=() epochs options='{}'
  shift
  [[ -f $C/seed-$name.done ]] && return
  [[ $name == cf-regression ]] && options="{\"interactions\": \"$PLAYLISTS\"}"
  epochs=$(epochs_capped "$name" "$options")
  [[ -f $C/seed-$name.last.pt ]] && resume=(--resume)
  "$SL" train "$name" --library "$WORK/libs/train-all" --epochs "$epochs" --out "$C/seed-$name.pt" --no-embed \
    "${resume[@]}" "$@"
  touch "$C/seed-$name.done"
}
FAMILIES=(melae descriptor-ae clothier stollery cf-regression)
for f in "${FAMILIES[@]}"; do
  if [[ $f == cf-regression ]]; then train_seed "$f" --interactions "$PLAYLISTS"; else train_seed "$f"; fi
done

E=()
for f in "${FAMILIES[@]}"; do E+=("$f=$C/seed-$f.pt" "descriptor+$f=descriptor+$C/seed-$f.pt"); done
"$PY" benchmarks/quality.py --set "validation=$WORK/libs/val-window-120:$WORK/dev,$WORK/train" \
  --set "test=$WORK/libs/test-window-120:$WORK/heldout" \
  --embeddings descriptor default "${E[@]}" --versus default --out "$OUT" --markdown "${OUT%.json}.md"

"$PY" - "$OUT" "$C" "$STEPS" "${FAMILIES[@]}" <<'PY'
import json, sys
from soundalike.models.checkpoint import read_checkpoint
out, ckpt, steps, families = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
payload = json.load(open(out))
training = {}
for f in families:
    state = read_checkpoint(f"{ckpt}/seed-{f}.last.pt")
    seconds = state["history"].get("epoch_seconds", [])
    training[f] = {"epochs": int(state["epoch"]), "steps": int(state["step"]), "max_steps": steps,
                   "seconds_per_epoch": round(sum(seconds) / max(len(seconds), 1), 1),
                   "tracks": state.get("data", {}).get("train_tracks")}
payload["training"] = {"library": "train-all", **training}
open(out, "w").write(json.dumps(payload, indent=2) + "\n")
PY
echo "wrote $OUT"
