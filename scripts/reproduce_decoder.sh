#!/usr/bin/env bash
# reproduce_decoder.sh — does decoding Ogg Vorbis / Opus with ffmpeg instead of libsndfile change quality?
# Validation albums only, one run.
#
# Usage:   bash scripts/reproduce_decoder.sh WORK [OUT]
#
#   WORK   the work directory of the other reproduce_* scripts (the validation albums are fetched if missing)
#   OUT    the JSON to write (default benchmarks/results/quality-decoder.json); OUT.md gets the tables
#
# Indexes the validation albums (benchmarks/album_sets.json) twice with `soundalike index` as it ships (120 s
# window, the default model): into a library that decodes as new libraries do (ffmpeg for Ogg Vorbis / Opus), and
# into one recorded beforehand as a library indexed before that change (libsndfile for every format it reads);
# then python benchmarks/quality.py over both: the descriptors, each shipped model part and the default.
# Their cost per track: benchmarks/stages.py against an older checkout (docs/performance.md).
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/album_sets.sh" "$1"
OUT=$(realpath -m -- "${2:-$ROOT/benchmarks/results/quality-decoder.json}")
cd "$ROOT"

fetch_sets dev train

SETS=()
for decoder in ffmpeg-ogg libsndfile; do
  lib=$WORK/libs/val-decoder-$decoder
  if [[ ! -e $lib ]]; then  # the library's decoder, recorded as its first scan would record it
    "$PY" - "$lib" "$decoder" <<'PY'
import sys
from soundalike.audio.analysis import DEFAULT_WINDOW
from soundalike.library.catalog import Library
from soundalike.library.scan import library_window
with Library.open(sys.argv[1]) as lib:
    library_window(lib, DEFAULT_WINDOW.decoded_by(sys.argv[2]), store=True)
PY
  fi
  "$SL" index "${val[@]}" --library "$lib"
  SETS+=(--set "decoder-$decoder=$lib:$WORK/dev,$WORK/train")
done
"$PY" benchmarks/quality.py "${SETS[@]}" --embeddings "${DEFAULT_PARTS[@]}" default --out "$OUT" \
  --markdown "${OUT%.json}.md"
echo "wrote $OUT"
