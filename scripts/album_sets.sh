# album_sets.sh — the preamble the reproduce_* scripts share; sourced (`source scripts/album_sets.sh WORK`), not run.
#
# Defines ROOT (the checkout), WORK (its argument, absolute), PY and SL (the checkout's python and soundalike),
# exports CACHE (the .deb cache, default WORK/debcache), creates WORK/libs and WORK/ckpt, and gives
#   sets SET KEY       the albums of benchmarks/album_sets.json under SET (train, validation, test) and KEY
#   fetch_sets S...    scripts/fetch_debian_music.sh --set S into WORK/S, for each set not fetched yet
#   val                the validation albums' folders (an array)
# It does not change directory: a script resolves its own relative arguments first, then cds to ROOT.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
WORK=$(realpath -m -- "$1")
PY=$ROOT/.venv/bin/python
SL=$ROOT/.venv/bin/soundalike
export CACHE=${CACHE:-$WORK/debcache}
mkdir -p "$WORK/libs" "$WORK/ckpt"

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
