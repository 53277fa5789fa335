#!/usr/bin/env bash
# fetch_debian_music.sh — build a music collection from Debian's free game
# soundtracks: the development set, or a separate held-out set for evaluation.
#
# Usage:   bash scripts/fetch_debian_music.sh [--set dev|train|heldout] DEST
#          CACHE=/some/dir bash scripts/fetch_debian_music.sh [--set dev|train|heldout] DEST
#
#   --set dev      (default) the development set: train and tune models on it
#   --set train    the real music of the packages in shared/data/train_music.txt
#                  (train or validate on it: benchmarks/album_sets.json says
#                  which albums are held out of training for validation)
#   --set heldout  other games' albums, disjoint from the other sets, used only
#                  to evaluate (test) models on music they never saw.  Give each
#                  set its own DEST: a DEST holding another set is refused.
#
# For each soundtrack package of the chosen set it runs `apt-get download`
# (never `apt-get install` of those packages), unpacks the .deb with `dpkg -x`
# into a temporary directory, copies only the music into DEST/<album>/… (one
# album = one package's music folder; sub-folders are kept), and deletes the
# unpacked tree again.  Tracker modules (.it/.xm/.s3m/.mod, pingus) are rendered
# to Ogg Vorbis with ffmpeg (Debian's build decodes them through libopenmpt);
# Frets on Fire songs (held-out set), shipped as stems, are mixed to one track each.
#
#   DEST/<album>/...     the audio files (never point DEST inside the repo)
#   DEST/MANIFEST.tsv    album, path, seconds, format, package, source path
#   DEST/NOTES.txt       what was skipped and why, near-duplicates, short jingles
#   DEST/.cache/         downloaded .debs (or $CACHE); kept so re-runs skip them
#   DEST/.state/         per-album markers: an album whose package version and
#                        rules did not change is not rebuilt on a re-run
#
# Needs apt-get, dpkg and ffmpeg/ffprobe.  ffmpeg is installed with apt-get when
# missing and running as root; otherwise the script stops and says so.
# Packages that this Debian does not have are reported and skipped.
# Idempotent: re-running only prints the summary again.
set -euo pipefail

# Bump a set's revision when its selection rules below change, so its existing
# albums get rebuilt (changes to the shared code below: bump both).
DEV_RULES_REV=3
HELDOUT_RULES_REV=1
TRAIN_RULES_REV=1

# album | candidate packages (first with an install candidate wins; * allowed)
#       | music folder(s) inside the package (globs)
#       | excluded files, relative to the music folder: "path=reason;path=reason"
#       | (optional) file names to take, space-separated globs (default: every audio file)
# Album names must not repeat across the two sets.
DEV_ALBUMS=(
  "wesnoth|wesnoth-1.16-music wesnoth-*-music wesnoth-music|usr/share/games/wesnoth/*/data/core/music|silence.ogg=10 s of digital silence (in-game filler, not music)"
  "warzone2100|warzone2100-music|usr/share/games/warzone2100/music|"
  "hyperrogue|hyperrogue-music|usr/share/hyperrogue/music usr/share/games/hyperrogue/music|"
  "supertux|supertux-data|usr/share/games/supertux2/music|"
  "supertuxkart|supertuxkart-data|usr/share/games/supertuxkart/data/music|"
  "pingus|pingus-data|usr/share/games/pingus/data/music|"
  "flare|flare-game flare-data|usr/share/games/flare/mods/fantasycore/music|wind_ambient.ogg=ambient wind loop (sound effect, not music)"
  "extremetuxracer|extremetuxracer-data|usr/share/games/etr/music|"
)
# Held-out set: evaluation only.  Looked at and left out: asc-music (3 tracks),
# lincity-ng-data (3), fb-music-high (1 module), boswars-data (an intro, no music),
# planetblupi-music-ogg (its 10 pieces are rendered as 10-29 min loops, 2.7 h),
# nexuiz-music (music inside a .pk3 zip), 0ad-data (3 GB).
HELDOUT_ALBUMS=(
  "singularity|singularity-music|usr/share/games/singularity/music|"
  "drascula|drascula-music|usr/share/scummvm/drascula/audio|"
  "colobot|colobot-common-sounds|usr/share/games/colobot/music|"
  "fillets-ng|fillets-ng-data|usr/share/games/fillets-ng/music|"
  "freedroidrpg|freedroidrpg-data|usr/share/freedroidrpg/data/sound/music|"
  "megaglest|megaglest-data|usr/share/games/megaglest/data/core/menu/music usr/share/games/megaglest/techs/*/factions/*/music|"
  "openclonk|openclonk-data|usr/share/games/openclonk/Music.ocg|"
  "hedgewars|hedgewars-data|usr/share/games/hedgewars/Data/Music|"
  "pushover|pushover-data|usr/share/pushover/themes|"
  "widelands|widelands-data|usr/share/games/widelands/data/music|"
  "fretsonfire-muldjord|fretsonfire-songs-muldjord|usr/share/games/fretsonfire/data/songs/muldjord|"
  "fretsonfire-sectoid|fretsonfire-songs-sectoid|usr/share/games/fretsonfire/data/songs/sectoid|"
)
# Train set: the real music of shared/data/train_music.txt (its comments say where each piece lives and
# what it is). MIDI sources (freedink, openttd-openmsx, music21) are rendered by scripts/render_midi.py.
TRAIN_ALBUMS=(
  "0ad|0ad-data|usr/share/games/0ad/mods/public/audio/music|"
  "redeclipse|redeclipse-data|usr/share/games/redeclipse/data/sounds/music|"
  "trackballs|trackballs-data|usr/share/games/trackballs/music|"
  "enigma|enigma-data|usr/share/games/enigma/music|"
  "asc|asc-music|usr/share/games/asc/music|"
  "zaz|zaz-data|usr/share/games/zaz||mus*.ogg"
  "freedink|freedink-data|usr/share/games/dink/dink/Sound||*.ogg"
  "frozen-bubble|frozen-bubble-data|usr/share/games/frozen-bubble/snd||*zik*.ogg"
  "lincity-ng|lincity-ng-data|usr/share/games/lincity-ng/music/default|"
  "ri-li|ri-li-data|usr/share/games/ri-li/Ri-li/Sounds||*.xm *.mod"
  "xblast|xblast-tnt-musics|usr/share/games/xblast-tnt/sounds||*.raw"
  "toppler|toppler|usr/share/games/toppler||toppler.ogg"
  "powermanga|powermanga-data|usr/share/games/powermanga/sound/handheld_console||music_*.ogg"
  "holotz-castle|holotz-castle-data|usr/share/games/holotz-castle/game/sound||HCMainTitle.wav HCCredits.wav"
  "scorched3d|scorched3d-data|usr/share/games/scorched3d/data/globalmods/none/data/music|"
  "teeworlds|teeworlds-data|usr/share/games/teeworlds/data/audio||music_*.wv"
  "criticalmass|criticalmass-data|usr/share/games/criticalmass||*.xm"
)
# Frets on Fire stems mixed into each song's track (see fof_file).
FOF_STEMS=(guitar.ogg rhythm.ogg drums.ogg)
# Folders that hold sound effects, not music, wherever they appear.
SFX_DIR_RE='^(sfx|sounds?|soundfx|ambien(t|ce)|environment|wind|thunder|rain|speech|voices?)$'
# A file this short whose peak stays below SILENCE_DB is silence, not music.
SILENCE_MAX_SECONDS=30
SILENCE_DB=-60
SHORT_SECONDS=10

AUDIO_EXT_RE='^(ogg|oga|opus|flac|mp3|wav)$'
MODULE_EXT_RE='^(it|xm|s3m|mod|mptm|mtm|669|umx|med|okt|stm|far|ult)$'
# Converted to Ogg Vorbis: WavPack (soundfile cannot read it) and xblast's headerless unsigned 8-bit stereo
# 22050 Hz loops.
CONVERT_EXT_RE='^(wv|raw)$'
US=$'\x1f'  # field separator for internal records

say()  { printf '%s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die()  { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
SET=dev
while (( $# )); do
  case $1 in
    --set)   (( $# >= 2 )) || { usage; exit 2; }; SET=$2; shift 2 ;;
    --set=*) SET=${1#--set=}; shift ;;
    -h|--help) usage; exit 0 ;;
    --)      shift; break ;;
    -*)      usage; exit 2 ;;
    *)       break ;;
  esac
done
[[ $# -eq 1 && -n $1 ]] || { usage; exit 2; }
case $SET in
  dev)     ALBUMS=("${DEV_ALBUMS[@]}") OTHER_ALBUMS=("${HELDOUT_ALBUMS[@]}" "${TRAIN_ALBUMS[@]}")
           RULES_REV=$DEV_RULES_REV SET_TITLE="Development music set" ;;
  train)   ALBUMS=("${TRAIN_ALBUMS[@]}") OTHER_ALBUMS=("${HELDOUT_ALBUMS[@]}" "${DEV_ALBUMS[@]}")
           RULES_REV=$TRAIN_RULES_REV SET_TITLE="Train music set (train, or validate on the albums held out)" ;;
  heldout) ALBUMS=("${HELDOUT_ALBUMS[@]}") OTHER_ALBUMS=("${DEV_ALBUMS[@]}" "${TRAIN_ALBUMS[@]}")
           RULES_REV=$HELDOUT_RULES_REV
           SET_TITLE="Held-out music set (evaluation only: never train or tune on it)" ;;
  *)       die "unknown set '$SET': use --set dev, train or heldout" ;;
esac

START_TS=$SECONDS
DEST=$(realpath -m -- "$1")
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
if [[ -d $REPO_ROOT/.git && ( $DEST == "$REPO_ROOT" || $DEST == "$REPO_ROOT"/* ) ]]; then
  die "DEST ($DEST) is inside the repository $REPO_ROOT: audio files must not go into the repo; pick a directory outside it"
fi
mkdir -p -- "$DEST"
CACHE=$(realpath -m -- "${CACHE:-$DEST/.cache}")
STATE=$DEST/.state
mkdir -p -- "$CACHE" "$STATE"

exec 9>"$DEST/.lock"
flock -n 9 || die "another run is using $DEST"
# The sets must stay apart (held-out music must not leak into training data).
for spec in "${OTHER_ALBUMS[@]}"; do
  if [[ -e $STATE/${spec%%|*}.done || -e $DEST/${spec%%|*} ]]; then
    die "DEST ($DEST) already holds album '${spec%%|*}' of the other set; build the dev and held-out sets in separate directories"
  fi
done

WORK=""
cleanup() {
  if [[ -n $WORK && -d $WORK ]]; then rm -rf -- "$WORK"; fi
  rm -rf -- "$DEST"/.staging-* "$CACHE"/.dl.* 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools ----
APT_UPDATED=0
apt_update_once() {
  (( APT_UPDATED )) && return 0
  APT_UPDATED=1
  if (( EUID == 0 )); then
    say "Running apt-get update ..." >&2  # stderr: callers' stdout is captured
    apt-get update -qq >&2 || warn "apt-get update failed; using the package lists as they are"
  else
    warn "not root: cannot run apt-get update; package look-ups use the current lists"
  fi
}

ensure_ffmpeg() {
  if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
    if (( EUID == 0 )); then
      say "ffmpeg not found: installing Debian's ffmpeg ..."
      apt_update_once
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null \
        || die "apt-get install ffmpeg failed"
    else
      die "ffmpeg/ffprobe not found. Install Debian's ffmpeg first (sudo apt-get install ffmpeg) — it is needed to render tracker modules (via libopenmpt) and to measure durations — then re-run."
    fi
  fi
  local demuxers
  demuxers=$(ffmpeg -hide_banner -demuxers 2>/dev/null || true)
  if [[ $demuxers == *libopenmpt* ]]; then HAVE_OPENMPT=1; else HAVE_OPENMPT=0; fi
  local encoders
  encoders=$(ffmpeg -hide_banner -encoders 2>/dev/null || true)
  [[ $encoders == *libvorbis* ]] || die "this ffmpeg has no libvorbis encoder; install Debian's ffmpeg"
}

# ------------------------------------------------------------- packages ----
# Prints "PKG VERSION" of the first candidate package that apt can download.
candidate_version() {
  apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}'
}
expand_candidates() {
  local c
  for c in "$@"; do
    if [[ $c == *'*'* ]]; then
      apt-cache pkgnames "${c%%\**}" 2>/dev/null | while IFS= read -r n; do
        # shellcheck disable=SC2053
        if [[ $n == $c ]]; then printf '%s\n' "$n"; fi
      done | sort -V -r
    else
      printf '%s\n' "$c"
    fi
  done
}
resolve_package() {
  local p v
  for _ in 1 2; do
    while IFS= read -r p; do
      v=$(candidate_version "$p")
      if [[ -n $v && $v != "(none)" ]]; then printf '%s %s\n' "$p" "$v"; return 0; fi
    done < <(expand_candidates "$@")
    (( APT_UPDATED )) && return 1
    apt_update_once
  done
  return 1
}

deb_path() {  # PKG VERSION -> cached .deb path, if present
  local f
  for f in "$CACHE/${1}_${2//:/%3a}_"*.deb; do
    [[ -f $f ]] && { printf '%s\n' "$f"; return 0; }
  done
  return 1
}

download_deb() {  # PKG VERSION
  local pkg=$1 ver=$2 tmp
  local -a opts=(-q)
  (( EUID == 0 )) && opts+=(-o APT::Sandbox::User=root)  # no "_apt cannot access" warning
  for _ in 1 2; do
    tmp=$(mktemp -d "$CACHE/.dl.XXXXXX")
    if (cd "$tmp" && apt-get download "${opts[@]}" "$pkg=$ver" >/dev/null); then
      rm -f -- "$CACHE/${pkg}_"*.deb  # older versions
      mv -- "$tmp"/*.deb "$CACHE/"
      rm -rf -- "$tmp"
      return 0
    fi
    rm -rf -- "$tmp"
    (( APT_UPDATED )) && break
    apt_update_once
  done
  return 1
}

# ---------------------------------------------------------------- audio ----
probe_seconds() {
  ffprobe -v error -show_entries format=duration -of csv=p=0 -- "$1" 2>/dev/null | awk 'NR==1 && $1+0>0 {printf "%.3f\n", $1}'
}

# Decodes the whole file; prints "MAX_DB<TAB>first decoder complaint"; fails if undecodable.
decode_check() {
  local log maxdb complaint
  log=$(ffmpeg -hide_banner -nostdin -nostats -loglevel repeat+level+info -i "$1" \
        -af volumedetect -f null - 2>&1) || return 1
  maxdb=$(awk '/max_volume:/ {print $(NF-1)}' <<<"$log")
  complaint=$(grep -E '\[(warning|error|fatal)\]' <<<"$log" | awk 'NR==1' | sed 's/^.*\] //' || true)
  printf '%s\t%s\n' "${maxdb:-nan}" "$complaint"
}

render_module() {  # SRC OUT
  ffmpeg -hide_banner -nostdin -nostats -loglevel error -y -sample_rate 44100 -i "$1" \
    -map 0:a:0 -c:a libvorbis -q:a 5 -- "$2"
}

convert_to_ogg() {  # SRC OUT
  local -a raw=()
  if [[ ${1,,} == *.raw ]]; then raw=(-f u8 -ac 2 -ar 22050); fi
  ffmpeg -hide_banner -nostdin -nostats -loglevel error -y "${raw[@]}" -i "$1" -map 0:a:0 -c:a libvorbis \
    -q:a 5 -- "$2"
}

# Sums stems at their own levels (as a game plays them together); the sum is
# turned down only as far as needed to peak at -1 dBFS instead of clipping.
# asetpts: fresh timestamps, else the Ogg output's last packets come out of order.
mix_stems() {  # OUT STEM...
  local out=$1 s peak gain filter
  local -a in=()
  shift
  for s in "$@"; do in+=(-i "$s"); done
  filter="amix=inputs=$#:duration=longest:normalize=0"
  # astats, not volumedetect: volumedetect converts to 16 bit and so never sees a peak above 0 dB.
  peak=$(ffmpeg -hide_banner -nostdin -nostats "${in[@]}" \
           -filter_complex "$filter,astats=measure_perchannel=none:measure_overall=Peak_level" -f null - 2>&1 |
         awk '/Peak level dB:/ {print $NF}')
  [[ -n $peak ]] || { echo "could not measure the mix's peak" >&2; return 1; }
  gain=$(awk -v p="$peak" 'BEGIN {g = -1 - p; printf "%.2f", (g < 0 ? g : 0)}')
  ffmpeg -hide_banner -nostdin -nostats -loglevel error -y "${in[@]}" \
    -filter_complex "$filter,volume=${gain}dB,asetpts=N/SR/TB" -c:a libvorbis -q:a 5 -- "$out"
}

# ---------------------------------------------------------------- build ----
# Decodes each staged file fully with soundfile (libsndfile, the project's first
# decoder); stdin: relative paths, one a line; stdout: rel, ok|err, seconds, peak dB,
# message, separated by \x1f (unlike a tab, never merged when a field is empty).
SF_CHECK_PY='
import sys, math, soundfile as sf
for rel in sys.stdin.read().splitlines():
    try:
        with sf.SoundFile(rel) as f:
            sr, frames, peak = f.samplerate, 0, 0.0
            for block in f.blocks(blocksize=1 << 18, dtype="float32", always_2d=True):
                frames += len(block)
                if len(block):
                    peak = max(peak, float(abs(block).max()))
        db = 20 * math.log10(peak) if peak > 0 else -999.0
        print(f"{rel}\x1fok\x1f{frames / sr:.3f}\x1f{db:.1f}\x1f", flush=True)
    except Exception as e:
        print(f"{rel}\x1ferr\x1f\x1f\x1f{str(e).splitlines()[0][:200] if str(e) else type(e).__name__}", flush=True)
'
find_sf_python() {
  local py
  for py in "$REPO_ROOT/.venv/bin/python" python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import soundfile' >/dev/null 2>&1; then
      printf '%s\n' "$py"; return 0
    fi
  done
  return 1
}

# Stages one file (copy, or render a tracker module) and checks it with ffmpeg.
# Globals: ALBUM STAGE NOTES PENDING SEEN_SHA (sha256 -> album/path kept so far).
add_file() {  # SRC_ABS OUT_REL SRC_REL [STEM_ABS...: mixed with SRC_ABS into OUT_REL]
  local src=$1 rel=$2 srcrel=$3 ext sha dur chk maxdb complaint ffok=ok
  local -a stems=("${@:4}")
  ext=${src##*.}; ext=${ext,,}
  sha=$(sha256sum -- "$src" | awk '{print $1}')
  if [[ -n ${SEEN_SHA[$sha]:-} ]]; then
    NOTES+=("skipped $srcrel: byte-identical to ${SEEN_SHA[$sha]}")
    return 0
  fi
  if [[ $ext =~ $CONVERT_EXT_RE ]]; then
    rel=${rel%.*}.ogg
    mkdir -p -- "$(dirname -- "$STAGE/$rel")"
    if ! convert_to_ogg "$src" "$STAGE/$rel" 2>"$STAGE.err"; then
      NOTES+=("skipped $srcrel: conversion failed: $(head -c 300 "$STAGE.err" | tr '\n' ' ')")
      rm -f -- "$STAGE/$rel"
      return 0
    fi
  elif [[ $ext =~ $MODULE_EXT_RE ]]; then
    if (( ! HAVE_OPENMPT )); then
      NOTES+=("skipped $srcrel: this ffmpeg cannot decode tracker modules (no libopenmpt)")
      return 0
    fi
    rel=${rel%.*}.ogg
    if [[ -e $STAGE/$rel ]]; then rel=${rel%.ogg}.$ext.ogg; fi
    mkdir -p -- "$(dirname -- "$STAGE/$rel")"
    if ! render_module "$src" "$STAGE/$rel" 2>"$STAGE.err"; then
      NOTES+=("skipped $srcrel: rendering failed: $(head -c 300 "$STAGE.err" | tr '\n' ' ')")
      rm -f -- "$STAGE/$rel"
      return 0
    fi
  elif (( ${#stems[@]} )); then
    if [[ -e $STAGE/$rel ]]; then rel=${rel%.*}-2.${rel##*.}; fi
    mkdir -p -- "$(dirname -- "$STAGE/$rel")"
    if ! mix_stems "$STAGE/$rel" "$src" "${stems[@]}" 2>"$STAGE.err"; then
      NOTES+=("skipped $srcrel: mixing failed: $(head -c 300 "$STAGE.err" | tr '\n' ' ')")
      rm -f -- "$STAGE/$rel"
      return 0
    fi
  else
    if [[ -e $STAGE/$rel ]]; then rel=${rel%.*}-2.${rel##*.}; fi
    mkdir -p -- "$(dirname -- "$STAGE/$rel")"
    cp --preserve=timestamps -- "$src" "$STAGE/$rel"
  fi
  dur=$(probe_seconds "$STAGE/$rel" || true)
  maxdb=nan complaint=""
  if [[ -z $dur ]] || ! chk=$(decode_check "$STAGE/$rel"); then
    ffok=fail
    complaint=$(ffprobe -v error -- "$STAGE/$rel" 2>&1 | awk 'NR==1' | sed 's/^\[[^]]*\] //' || true)
  else
    IFS=$'\t' read -r maxdb complaint <<<"$chk" || true
  fi
  SEEN_SHA[$sha]=$ALBUM/$rel
  PENDING+=("$rel$US$ext$US$sha$US$srcrel$US$ffok$US${dur:-}$US$maxdb$US$complaint")
}

# Decides on every staged file: kept if ffmpeg or soundfile decodes it (the
# project reads with soundfile first, PyAV/ffmpeg second); drops silence.  Fills ROWS.
finalize_album() {
  local line rel ext sha srcrel ffok dur maxdb complaint sfok sfdur sfdb sfmsg
  local -A SF=()
  if [[ -n $SF_PY ]] && ((${#PENDING[@]})); then
    while IFS= read -r line; do SF[${line%%"$US"*}]=$line; done < <(
      for line in "${PENDING[@]}"; do printf '%s\n' "${line%%"$US"*}"; done |
        (cd "$STAGE" && "$SF_PY" -c "$SF_CHECK_PY") || true)
  fi
  for line in "${PENDING[@]}"; do
    IFS=$US read -r rel ext sha srcrel ffok dur maxdb complaint <<<"$line" || true
    sfok=unchecked sfdur="" sfdb="" sfmsg=""
    if [[ -n ${SF[$rel]:-} ]]; then IFS=$US read -r _ sfok sfdur sfdb sfmsg <<<"${SF[$rel]}" || true; fi
    if [[ $ffok != ok && $sfok != ok ]]; then
      NOTES+=("skipped $srcrel: undecodable (ffmpeg: ${complaint:-failed}; soundfile: ${sfmsg:-$sfok})")
      unset "SEEN_SHA[$sha]"; rm -f -- "${STAGE:?}/$rel"; continue
    fi
    if [[ $ffok != ok ]]; then
      dur=$sfdur maxdb=$sfdb
      NOTES+=("kept $rel although ffmpeg ${FFMPEG_VERSION} cannot open it (${complaint:-failed}); soundfile decodes it (${sfdur} s)")
    elif [[ $sfok == err ]]; then
      NOTES+=("kept $rel although soundfile cannot decode it (${sfmsg}); ffmpeg does")
    elif [[ -n $complaint ]]; then
      NOTES+=("ffmpeg warning for $rel (decodes anyway): $complaint")
    fi
    [[ $maxdb == nan || -z $maxdb ]] && maxdb=$sfdb
    if [[ -n $maxdb && $maxdb != nan ]] && awk -v d="$dur" -v m="$maxdb" -v s="$SILENCE_MAX_SECONDS" -v t="$SILENCE_DB" \
         'BEGIN {exit !(d < s && m < t)}'; then
      NOTES+=("skipped $srcrel: silence (peak $maxdb dB over $dur s)")
      unset "SEEN_SHA[$sha]"; rm -f -- "${STAGE:?}/$rel"; continue
    fi
    ROWS+=("$rel"$'\t'"$dur"$'\t'"$ext"$'\t'"$sha"$'\t'"$srcrel")
  done
}

excluded_reason() {  # REL_IN_MUSIC_DIR EXCLUDES -> prints reason if excluded
  local rel=$1 ex=$2 item comp
  local -a items parts
  IFS=';' read -r -a items <<<"$ex"
  for item in "${items[@]}"; do
    [[ -z $item ]] && continue
    # shellcheck disable=SC2053
    if [[ $rel == ${item%%=*} ]]; then printf '%s\n' "${item#*=}"; return 0; fi
  done
  IFS='/' read -r -a parts <<<"$rel"
  for comp in "${parts[@]:0:${#parts[@]}-1}"; do
    if [[ ${comp,,} =~ $SFX_DIR_RE ]]; then printf 'sound-effects folder "%s"\n' "$comp"; return 0; fi
  done
  return 1
}

# SuperTuxKart keeps some music next to the tracks that use it, described by
# <track>/*.music XML files: take the audio those files name (file=, fast-filename=).
stk_track_music() {  # ROOT
  local root=$1 m dir f
  for m in "$root"/usr/share/games/supertuxkart/data/tracks/*/*.music; do
    [[ -f $m ]] || continue
    dir=$(dirname -- "$m")
    while IFS= read -r f; do
      [[ -f $dir/$f ]] || continue
      add_file "$dir/$f" "tracks/$f" "${dir#"$root"/}/$f"
    done < <(grep -oE '(file|fast-filename)[[:space:]]*=[[:space:]]*"[^"]+"' "$m" | sed -E 's/^[^"]*"//; s/"$//')
  done
}

# Frets on Fire song packs (albums fretsonfire-*) hold one folder per song with
# stems, not a mix: song.ogg is the backing track and guitar.ogg (rhythm.ogg,
# drums.ogg) the parts the player plays; they are not contained in song.ogg.
# Each song becomes one track, <song folder>.ogg = song.ogg + its stems.
# Returns 1 for files it leaves to the normal rules.
fof_file() {  # SRC_ABS REL_IN_MUSIC_DIR ROOT
  local f=$1 rel=$2 root=$3 dir=${1%/*} s label
  local -a stems=()
  [[ $rel == */* ]] || return 1
  case ${rel##*/} in
    song.ogg)
      label=${f#"$root"/}
      for s in "${FOF_STEMS[@]}"; do
        if [[ -f $dir/$s ]]; then stems+=("$dir/$s"); label+=" + $s"; fi
      done
      add_file "$f" "${rel%/*}.ogg" "$label" "${stems[@]}" ;;
    notes.mid)
      NOTES+=("skipped ${f#"$root"/}: note chart of the game, not music") ;;
    *)
      for s in "${FOF_STEMS[@]}"; do
        if [[ ${rel##*/} == "$s" && -f $dir/song.ogg ]]; then
          NOTES+=("skipped ${f#"$root"/}: stem, mixed into $ALBUM/${rel%/*}.ogg")
          return 0
        fi
      done
      return 1 ;;
  esac
}

# 0 A.D. keeps its music inside a zip archive (public.zip): unpack audio/music/ next to it.
unzip_0ad_music() {  # ROOT
  local mod=$1/usr/share/games/0ad/mods/public
  [[ -f $mod/public.zip ]] || return 0
  "${SF_PY:-python3}" - "$mod/public.zip" "$mod" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in z.namelist():
        if name.startswith("audio/music/") and not name.endswith("/"):
            z.extract(name, sys.argv[2])
PY
}

build_album() {  # ALBUM PKG VER DEB MUSIC_GLOBS EXCLUDES INCLUDES
  local dirs_glob=$5 excludes=$6 includes=${7:-} root g d f rel reason ext inc ok n=0
  local -a dirs=()
  WORK=$(mktemp -d "$CACHE/.x.XXXXXX")
  root=$WORK/root
  dpkg -x "$4" "$root"
  if [[ $1 == 0ad ]]; then unzip_0ad_music "$root"; fi
  for g in $dirs_glob; do
    for d in "$root"/$g; do if [[ -d $d ]]; then dirs+=("$d"); fi; done
  done
  if (( ${#dirs[@]} == 0 )); then
    warn "$1: no music folder ($dirs_glob) in $2 $3; contents with audio:"
    (cd "$root" && find . -type f -regextype posix-extended -iregex '.*\.(ogg|opus|flac|mp3|it|xm|s3m|mod)$' -printf '%h\n' | sort | uniq -c | sort -rn | awk 'NR<=10') >&2 || true
    rm -rf -- "$WORK"; WORK=""
    BUILD_STATUS=nodir
    return 0
  fi
  STAGE=$DEST/.staging-$1
  rm -rf -- "$STAGE"; mkdir -p -- "$STAGE"
  for d in "${dirs[@]}"; do
    while IFS= read -r -d '' f; do
      rel=${f#"$d"/}
      if [[ $1 == fretsonfire-* ]] && fof_file "$f" "$rel" "$root"; then continue; fi
      ext=${f##*.}; ext=${ext,,}
      if [[ -n $includes ]]; then
        ok=0
        for inc in $includes; do
          # shellcheck disable=SC2053
          if [[ ${f##*/} == $inc ]]; then ok=1; fi
        done
        (( ok )) || continue
      fi
      if [[ $ext =~ ^(mid|midi)$ ]]; then NOTES+=("skipped ${f#"$root"/}: MIDI (rendered by scripts/render_midi.py)"); continue; fi
      [[ $ext =~ $AUDIO_EXT_RE || $ext =~ $MODULE_EXT_RE || $ext =~ $CONVERT_EXT_RE ]] || continue
      if reason=$(excluded_reason "$rel" "$excludes"); then
        NOTES+=("skipped ${f#"$root"/}: $reason")
        continue
      fi
      add_file "$f" "$rel" "${f#"$root"/}"
      n=$(( n + 1 ))
      if (( n % 20 == 0 )); then say "    ... $n files"; fi
    done < <(find "$d" -type f -print0 | sort -z)
  done
  if [[ $1 == supertuxkart ]]; then stk_track_music "$root"; fi
  rm -rf -- "$WORK"; WORK=""
  say "    checking decodability ..."
  finalize_album
  BUILD_STATUS=ok
}

# -------------------------------------------------------------- notes ----
near_duplicates() {  # MANIFEST -> "album/path ~ album/path" lines
  awk -F'\t' '
    NR > 1 { album=$1; path=$2; sub(/^[^\/]*\//, "", path)
      n=split(path, p, "/"); stem=p[n]; sub(/\.[^.]*$/, "", stem)
      paths[album, ++cnt[album]] = path; stems[album, cnt[album]] = stem }
    END {
      for (a in cnt) for (i = 1; i <= cnt[a]; i++) {
        s = stems[a, i]
        if (match(s, /[-_](fast|f|enhanced|old|remix|remake)$/)) {
          suffix = substr(s, RSTART + 1); base = substr(s, 1, RSTART - 1)
          if (suffix == "remake") continue       # a remake with no original here is just a track
          best = ""
          for (j = 1; j <= cnt[a]; j++) if (j != i) {
            t = stems[a, j]
            if (t == base) { best = paths[a, j]; break }
            if (best == "" && t ~ ("^" base "[-_]?[0-9]+$")) best = paths[a, j]
          }
          if (suffix == "f" && best == "") continue   # "_f" alone is too weak a hint
          printf "%s/%s ~ %s\n", a, paths[a, i], (best == "" ? "(no plain version in this album)" : a "/" best)
        }
      }
    }' "$1" | sort
}

album_complete() {  # every file the state lists is still there
  local r
  while IFS=$'\t' read -r r _; do
    [[ -f $DEST/$1/$r ]] || { say "[$i/${#ALBUMS[@]}] $1: $1/$r is missing, rebuilding"; return 1; }
  done <"$STATE/$1.tsv"
}

# ------------------------------------------------------------------ main ----
ensure_ffmpeg
FFMPEG_VERSION=$(ffmpeg -version | awk 'NR==1 {print $3}')
say "SET=$SET  DEST=$DEST  CACHE=$CACHE  (ffmpeg $FFMPEG_VERSION, libopenmpt: $( ((HAVE_OPENMPT)) && echo yes || echo NO))"

declare -A SEEN_SHA=()
SF_PY=$(find_sf_python || true)
if [[ -z $SF_PY ]]; then warn "no python with soundfile found: files are checked with ffmpeg only"; fi
declare -a DONE_ALBUMS=() MISSING=()
i=0
for spec in "${ALBUMS[@]}"; do
  i=$(( i + 1 ))
  IFS='|' read -r ALBUM cands dirs_glob excludes includes <<<"$spec"
  # shellcheck disable=SC2086
  if ! read -r pkg ver < <(resolve_package $cands); then
    warn "[$i/${#ALBUMS[@]}] $ALBUM: none of the packages '$cands' exists in this Debian's lists; skipped"
    MISSING+=("$ALBUM ($cands)")
    continue
  fi
  key="$pkg $ver rules=$RULES_REV"
  if [[ -d $DEST/$ALBUM && -f $STATE/$ALBUM.done && $(<"$STATE/$ALBUM.done") == "$key" ]] && album_complete "$ALBUM"; then
    say "[$i/${#ALBUMS[@]}] $ALBUM: $pkg $ver already in place, skipped"
    while IFS=$'\t' read -r r _ _ sha _; do SEEN_SHA[$sha]=$ALBUM/$r; done <"$STATE/$ALBUM.tsv"
    DONE_ALBUMS+=("$ALBUM")
    continue
  fi
  if deb=$(deb_path "$pkg" "$ver"); then
    say "[$i/${#ALBUMS[@]}] $ALBUM: $pkg $ver (cached $(du -h -- "$deb" | cut -f1))"
  else
    say "[$i/${#ALBUMS[@]}] $ALBUM: downloading $pkg $ver ..."
    if ! download_deb "$pkg" "$ver" || ! deb=$(deb_path "$pkg" "$ver"); then
      warn "$ALBUM: apt-get download $pkg=$ver failed; skipped"
      MISSING+=("$ALBUM ($pkg: download failed)")
      continue
    fi
    say "    got $(basename -- "$deb") ($(du -h -- "$deb" | cut -f1))"
  fi
  say "    unpacking and collecting music ..."
  ROWS=() NOTES=() PENDING=()
  build_album "$ALBUM" "$pkg" "$ver" "$deb" "$dirs_glob" "$excludes" "${includes:-}"
  if [[ $BUILD_STATUS != ok ]]; then
    MISSING+=("$ALBUM ($pkg: no music folder)")
    continue
  fi
  if (( ${#ROWS[@]} == 0 )); then
    warn "$ALBUM: no usable music found in $pkg; skipped"
    MISSING+=("$ALBUM ($pkg: no usable music)")
    continue
  fi
  rm -rf -- "${DEST:?}/${ALBUM:?}" "$STAGE.err"
  mv -- "$STAGE" "$DEST/$ALBUM"
  printf '%s\n' "${ROWS[@]}" | sort >"$STATE/$ALBUM.tsv"
  { printf 'source: %s %s, music folder: %s\n' "$pkg" "$ver" "$dirs_glob"
    if ((${#NOTES[@]})); then printf '%s\n' "${NOTES[@]}"; fi; } >"$STATE/$ALBUM.notes"
  printf '%s\n' "$key" >"$STATE/$ALBUM.done"
  secs=$(awk -F'\t' '{s += $2} END {printf "%.0f", s}' "$STATE/$ALBUM.tsv")
  say "    $ALBUM: ${#ROWS[@]} tracks, $((secs / 60)) min, $(( ${#NOTES[@]} )) note(s)"
  DONE_ALBUMS+=("$ALBUM")
done

# Albums from earlier runs whose rules no longer list them are left alone but not counted.
(( ${#DONE_ALBUMS[@]} )) || die "no album could be built"

# MANIFEST.tsv and NOTES.txt are regenerated from the per-album state every run.
{
  printf 'album\tpath\tseconds\tformat\tpackage\tsource\n'
  for a in "${DONE_ALBUMS[@]}"; do
    pv=$(cut -d' ' -f1,2 "$STATE/$a.done" | tr ' ' '=')
    awk -F'\t' -v a="$a" -v pv="$pv" -v OFS='\t' '{print a, a "/" $1, $2, $3, pv, $5}' "$STATE/$a.tsv"
  done
} >"$DEST/MANIFEST.tsv.tmp"
mv -- "$DEST/MANIFEST.tsv.tmp" "$DEST/MANIFEST.tsv"
mapfile -t NEARDUPS < <(near_duplicates "$DEST/MANIFEST.tsv")

{
  printf '%s built by scripts/fetch_debian_music.sh (rules rev %s).\n' "$SET_TITLE" "$RULES_REV"
  printf 'Regenerated on every run; per-album details come from .state/<album>.notes.\n\n'
  printf '== Near-duplicates (kept; treat as the same piece when evaluating) ==\n'
  if ((${#NEARDUPS[@]})); then printf '  %s\n' "${NEARDUPS[@]}"; else printf '  (none)\n'; fi
  printf '\n== Short tracks (< %s s; jingles, kept) ==\n' "$SHORT_SECONDS"
  awk -F'\t' -v t="$SHORT_SECONDS" 'NR > 1 && $3 < t {printf "  %s (%.1f s)\n", $2, $3; n++} END {if (!n) print "  (none)"}' "$DEST/MANIFEST.tsv"
  for a in "${DONE_ALBUMS[@]}"; do
    printf '\n== %s ==\n' "$a"
    awk 'NR == 1 {print "  " $0; next} {print "  - " $0; n++} END {if (!n) print "  - nothing skipped"}' "$STATE/$a.notes"
  done
  if ((${#MISSING[@]})); then
    printf '\n== Not available ==\n'; printf '  %s\n' "${MISSING[@]}"
  fi
} >"$DEST/NOTES.txt"

# ---------------------------------------------------------------- summary ----
say ""
say "Summary ($DEST):"
awk -F'\t' 'NR > 1 {n[$1]++; s[$1] += $3; if (!($1 in o)) o[$1] = ++k; if (length($1) > w) w = length($1)}
  END {
    fmt = "  %-" (w > 16 ? w : 16) "s %4d tracks  %6.2f h"
    for (a in o) ord[o[a]] = a
    for (i = 1; i <= k; i++) { a = ord[i]; N += n[a]; S += s[a]
      printf fmt "\n", a, n[a], s[a] / 3600 }
    printf fmt "  (%d albums)\n", "TOTAL", N, S / 3600, k
  }' "$DEST/MANIFEST.tsv"
fmts=$(awk -F'\t' 'NR > 1 {c[$4]++} END {for (f in c) printf "%s=%d ", f, c[f]}' "$DEST/MANIFEST.tsv")
say "  formats (rendered modules count as their source format): $fmts"
# Decoding problems, from the notes of all albums (this run's and earlier ones').
notes_all=$(for a in "${DONE_ALBUMS[@]}"; do cat -- "$STATE/$a.notes"; done)
n_bad=$(grep -cE ': (undecodable|rendering failed|this ffmpeg cannot decode)' <<<"$notes_all" || true)
n_ffbad=$(grep -c '^kept .* although ffmpeg' <<<"$notes_all" || true)
n_sfbad=$(grep -c '^kept .* although soundfile' <<<"$notes_all" || true)
n_warn=$(grep -c '^ffmpeg warning' <<<"$notes_all" || true)
say "  decoding: $n_bad undecodable (skipped), $n_ffbad ffmpeg cannot open but soundfile can, $n_sfbad soundfile cannot but ffmpeg can, $n_warn decoded with ffmpeg warnings (details in NOTES.txt)"
if ((${#NEARDUPS[@]})); then say "  near-duplicates listed in NOTES.txt: ${#NEARDUPS[@]}"; fi
if ((${#MISSING[@]})); then warn "not available: ${MISSING[*]}"; fi
music_du=$(du -sh --exclude=.cache --exclude=.state -- "$DEST" | cut -f1)
cache_du=$(du -sh -- "$CACHE" | cut -f1)
say "  disk: music $music_du, download cache $cache_du ($CACHE)"
say "  time: $(( SECONDS - START_TS )) s"
