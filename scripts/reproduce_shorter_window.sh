#!/usr/bin/env bash
# reproduce_shorter_window.sh — can `index` analyse less than 120 s of each track at equal quality? Validation
# first, by a rule written here before the run, then the test albums once.
#
# Usage:   bash scripts/reproduce_shorter_window.sh WORK [OUT]
#
#   WORK   the work directory of the other reproduce_* scripts (the album sets are fetched if missing)
#   OUT    the JSON to write (default benchmarks/results/quality-shorter-window.json); OUT-test.json gets the test
#          albums' report when a candidate passes the rule
#
# Indexes the 11 validation albums with the window `soundalike index` shipped with when this ran (120 s in 8
# excerpts; since then the 105 s this chose) and with
# `--analyse-seconds N` for N = 60, 75, 90, 105 (excerpts of about 15 s), and pairs each against the 120 s library
# query by query (benchmarks/paired_libraries.py: the same files, albums resampled together). The decoding, STFT,
# descriptors and hashes shrink with the window; the default's two models read a fixed number of patches and
# segments spread over it. The rule, written before the run (as reproduce_segments.sh's): a window passes if the
# default's paired change is at least -1 % with its 95 % interval's lower end at least -5 % (equal quality at less
# CPU); of those that pass, the shortest becomes the default window. The descriptors alone are reported beside it.
# When one passes, the test albums (the held-out set) are indexed with 120 s and with it and reported once; nothing
# there feeds back into the choice. Cost per track: benchmarks/stages.py --analyse-seconds N (docs/performance.md).
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/album_sets.sh" "$1"
OUT=$(realpath -m -- "${2:-$ROOT/benchmarks/results/quality-shorter-window.json}")
TEST_OUT=${OUT%.json}-test.json
cd "$ROOT"

SECONDS_=(60 75 90 105)  # shortest first: the rule takes the first that passes
fetch_sets dev train
"$SL" index "${val[@]}" --library "$WORK/libs/val-window-120s" --analyse-seconds 120
AFTER=()
for n in "${SECONDS_[@]}"; do
  "$SL" index "${val[@]}" --library "$WORK/libs/val-window-${n}s" --analyse-seconds "$n"
  AFTER+=(--after "${n}s=$WORK/libs/val-window-${n}s")
done
"$PY" benchmarks/paired_libraries.py --before "$WORK/libs/val-window-120s" "${AFTER[@]}" \
  --music "$WORK/dev,$WORK/train" --embeddings descriptor default --out "$OUT"
echo "wrote $OUT"

CHOSEN=$(first_equal_quality "$OUT" "candidates/{n}s/results/default/change" "${SECONDS_[@]}")
if [[ -z $CHOSEN ]]; then
  echo "no shorter window passes the rule: the default window stays 120 s; the test albums are not touched"
  exit 0
fi
echo "chosen on validation: ${CHOSEN} s; the test albums report it once"
fetch_sets heldout
"$SL" index "$WORK/heldout" --library "$WORK/libs/test-window-120s" --analyse-seconds 120
"$SL" index "$WORK/heldout" --library "$WORK/libs/test-window-${CHOSEN}s" --analyse-seconds "$CHOSEN"
"$PY" benchmarks/paired_libraries.py --before "$WORK/libs/test-window-120s" \
  --after "${CHOSEN}s=$WORK/libs/test-window-${CHOSEN}s" --music "$WORK/heldout" --embeddings descriptor default \
  --out "$TEST_OUT"
echo "wrote $TEST_OUT"
