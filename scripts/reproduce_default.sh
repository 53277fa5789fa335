#!/usr/bin/env bash
# reproduce_default.sh — the shipped default on the validation albums and, once, on the test albums, in one run.
#
# Usage:   bash scripts/reproduce_default.sh WORK [OUT]
#
#   WORK   a directory outside the repository for the music and libraries (shared with the other reproduce_*
#          scripts; `CACHE=DIR` shares the .deb cache between runs)
#   OUT    the JSON to write (default benchmarks/results/quality-default.json); OUT.md gets the tables
#
# Steps (each skipped when its output exists, so an interrupted run resumes):
#   1. fetch the validation and test albums of benchmarks/album_sets.json (scripts/fetch_debian_music.sh --set
#      dev, train, heldout);
#   2. index a library per set with `soundalike index` as a user would (the descriptors and every shipped part of
#      the default): validation (its 11 albums), test (the held-out set);
#   3. python benchmarks/quality.py over both sets: the descriptors, each shipped model alone, the previous
#      default (descriptors 0.2 + musicnn 0.8), musicnn as its own package ships it (the Million Song Dataset
#      training, whole track: the strongest peer tool), and the default; gains over the descriptors and over the
#      previous default, paired, with 95 % bootstrap intervals over albums.
# The default was chosen on validation only (quality-training-data.json, quality-default-weights.json, written by
# scripts/reproduce_training_data.sh); nothing here feeds back into a choice.
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
WORK=$(realpath -m -- "$1")
OUT=$(realpath -m -- "${2:-$ROOT/benchmarks/results/quality-default.json}")
PY=$ROOT/.venv/bin/python
SL=$ROOT/.venv/bin/soundalike
export CACHE=${CACHE:-$WORK/debcache}
mkdir -p "$WORK/libs"
cd "$ROOT"

sets() { "$PY" -c "import json,sys; print(' '.join(json.load(open('benchmarks/album_sets.json'))[sys.argv[1]][sys.argv[2]]))" "$@"; }

for s in dev train heldout; do
  [[ -f $WORK/$s/MANIFEST.tsv ]] || bash scripts/fetch_debian_music.sh --set "$s" "$WORK/$s"
done
val=()
for a in $(sets validation dev); do val+=("$WORK/dev/$a"); done
for a in $(sets validation train); do val+=("$WORK/train/$a"); done
"$SL" index "${val[@]}" --library "$WORK/libs/val"
"$SL" index "$WORK/heldout" --library "$WORK/libs/test"

P=src/soundalike/models/pretrained
"$PY" benchmarks/quality.py --set "validation=$WORK/libs/val:$WORK/dev,$WORK/train" \
  --set "test=$WORK/libs/test:$WORK/heldout" \
  --embeddings descriptor "musicnn-part=$P/default.pt" "contrastive-part=$P/default_contrastive.pt" \
  "previous-default=descriptor@0.2+$P/default.pt@0.8" musicnn-msd default \
  --versus previous-default --out "$OUT" --markdown "${OUT%.json}.md"
echo "wrote $OUT"
