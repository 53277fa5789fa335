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
#      the default, the default analysis window: 105 s since 8655da5, 120 s before): validation (its 11 albums),
#      test (the held-out set); and
#      the test albums once more on whole tracks (--analyse-seconds 0, as musicnn's own package hears them);
#   3. python benchmarks/quality.py over the three libraries: the descriptors (also through the default's metric
#      of them), each shipped model alone, the previous default (the same three parts without learned metrics:
#      descriptors 0.14 + musicnn 0.56 + contrastive 0.3), musicnn as its own package ships it (the Million Song
#      Dataset training, whole track: the strongest peer tool), and the default; gains over the descriptors and
#      over the previous default, paired, with 95 % bootstrap intervals over albums.
# The default was chosen on validation only (quality-training-data.json, quality-default-weights.json, written by
# scripts/reproduce_training_data.sh; the metrics and weights: quality-metric.json, scripts/reproduce_metric.sh);
# nothing here feeds back into a choice.
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/album_sets.sh" "$1"
OUT=$(realpath -m -- "${2:-$ROOT/benchmarks/results/quality-default.json}")
cd "$ROOT"

fetch_sets dev train heldout
W=$("$PY" -c "from soundalike.audio.analysis import DEFAULT_WINDOW as w; print(f'{w.seconds:g}')")
"$SL" index "${val[@]}" --library "$WORK/libs/val-default-${W}s" --analyse-seconds "$W"
"$SL" index "$WORK/heldout" --library "$WORK/libs/test-default-${W}s" --analyse-seconds "$W"
"$SL" index "$WORK/heldout" --library "$WORK/libs/test" --analyse-seconds 0

DESCRIPTOR_METRIC=$("$PY" -c "from soundalike.models.pretrained import default_metrics as m; print(m()['descriptor'])")
"$PY" benchmarks/quality.py --set "validation=$WORK/libs/val-default-${W}s:$WORK/dev,$WORK/train" \
  --set "test=$WORK/libs/test-default-${W}s:$WORK/heldout" --set "test-whole-tracks=$WORK/libs/test:$WORK/heldout" \
  --embeddings "${DEFAULT_PARTS[@]}" "descriptor-metric=descriptor#$DESCRIPTOR_METRIC" \
  "previous-default=descriptor@0.14+$P/default.pt@0.56+$P/default_contrastive.pt@0.3" musicnn-msd default \
  --versus previous-default --out "$OUT" --markdown "${OUT%.json}.md"
echo "wrote $OUT"
