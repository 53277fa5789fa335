"""Analyse one audio file: decode, hash, read tags, compute spectrograms and descriptors.

Runs in worker processes during a scan, so it touches no database: it returns plain arrays and values.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from soundalike.audio import decode as audio

from .descriptors import describe
from .features import (
    framed_power,
    get_preset,
    log_mel,
    mel_power,
    power_spectrogram,
    segment_count,
    split_key,
    spread_indices,
    to_db,
)

ANALYSIS_SR = 22050
# Longer files are analysed from evenly spaced excerpts (audio.load_excerpts), which bounds memory and time.
MAX_ANALYSED_SECONDS = 600.0
DEFAULT_PRESETS: tuple[str, ...] = ("melae",)

# How a library hashes files' bytes and decoded samples. Its stored hashes are how moved, re-tagged and copied files
# are found, so a library keeps the algorithm of its first scan, as it keeps its decoder. XXH3 (128 bits) costs a
# thirtieth of BLAKE2b's CPU (0.16 against 5.1 ms on a track's 105 s of samples, ~4 % of a track's analysis:
# docs/performance.md); content identity needs no cryptographic strength (nobody gains by making two of their own
# files collide). Libraries indexed before keep BLAKE2b.
BLAKE2B = "blake2b"
XXH3 = "xxh3-128"
HASHES = (XXH3, BLAKE2B)
DEFAULT_HASH = XXH3


@dataclass(frozen=True)
class Window:
    """How much of each track is analysed: the whole file up to ``seconds``, else ``excerpts`` evenly spaced
    excerpts that add up to ``seconds``, decoded by ``decoder`` (:data:`audio.DECODERS`). A library keeps one
    window and decoder, so its tracks are described alike (windows compare by seconds and excerpts only), and
    hashes files and samples with ``hashes`` (:data:`HASHES`)."""

    seconds: float
    excerpts: int
    decoder: str = field(default=audio.DEFAULT_DECODER, compare=False)
    hashes: str = field(default=DEFAULT_HASH, compare=False)

    def decoded_by(self, decoder: str) -> Window:
        """This window with another decoder (a library's own)."""
        return replace(self, decoder=decoder)

    def hashed_by(self, hashes: str) -> Window:
        """This window with another hash algorithm (a library's own)."""
        return replace(self, hashes=hashes)

    @classmethod
    def of_seconds(cls, seconds: float) -> Window:
        """``seconds`` in excerpts of about 15 s; 0 means whole tracks (up to 10 minutes, in 10 excerpts beyond)."""
        if seconds <= 0 or seconds >= MAX_ANALYSED_SECONDS:
            return LEGACY_WINDOW
        if seconds < 15:
            raise ValueError(f"analysing {seconds:g} s per track is too little: give at least 15 (or 0: whole tracks)")
        return cls(float(seconds), max(1, round(seconds / 15)))


# Chosen on the validation albums (docs/performance.md): 120 s in 8 excerpts found same-album tracks as well as
# whole tracks (benchmarks/results/quality-window.json); 105 s in 7 is the shortest that keeps the default's quality
# within the equal-quality rule (-1.0 %, quality-shorter-window.json) for an eighth less decoding and descriptor work.
DEFAULT_WINDOW = Window(105.0, 7)
# What every library indexed before windows existed used (and what `--analyse-seconds 0` means).
LEGACY_WINDOW = Window(MAX_ANALYSED_SECONDS, 10)


@dataclass
class Tags:
    """Artist, album and title as tagged, falling back to folder and file names; album artist, genre, track and
    disc numbers and year as tagged (empty or 0 when not)."""

    artist: str = ""
    album: str = ""
    title: str = ""
    album_artist: str = ""
    genre: str = ""
    track_no: int = 0
    disc_no: int = 0
    year: int = 0


@dataclass
class Analysis:
    """Everything a scan stores about one decodable file."""

    audio_hash: str
    duration: float
    analysed_seconds: float
    tags: Tags
    spectrograms: dict[str, np.ndarray] = field(default_factory=dict)
    descriptor: np.ndarray | None = None


def _hasher(algorithm: str) -> Any:
    """A new hash object of ``algorithm`` (:data:`HASHES`), with ``update`` and a 32-digit ``hexdigest``."""
    if algorithm == XXH3:
        import xxhash

        return xxhash.xxh3_128()
    if algorithm == BLAKE2B:
        return hashlib.blake2b(digest_size=16)
    raise ValueError(f"unknown hash {algorithm!r} (one of {', '.join(HASHES)})")


def file_hash(path: str | bytes | os.PathLike[str], algorithm: str = DEFAULT_HASH, block: int = 1 << 20) -> str:
    """The hash of the file's bytes (finds byte-identical copies without decoding)."""
    h = _hasher(algorithm)
    buffer = bytearray(block)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            h.update(view[:n])
    return str(h.hexdigest())


# Samples quantised at a time for the audio hash: the temporaries stay in the cache (384 KB) instead of two arrays
# of the whole window in fresh pages (9 and 4.6 MB: ~1 ms of page faults a track, as much as the rest of the hash).
HASH_BLOCK = 1 << 16


def audio_hash(y: np.ndarray, algorithm: str = DEFAULT_HASH) -> str:
    """The hash of the decoded samples quantised to 16 bits: tag edits, renames and moves keep the same hash."""
    # clip(round(y * 32767)) as int16, in y's own float precision as ever: the product clipped in place, then
    # rounded straight into the int16 block (values in range are integers after the clip: the same as rounding
    # first), block by block into one digest (the same digest as the whole array's).
    y = np.ravel(y)  # any shape, in C order, as the whole array's bytes were
    h = _hasher(algorithm)
    scaled = np.empty(min(y.size, HASH_BLOCK), np.result_type(y.dtype, 32767.0))  # y * 32767's own type
    quantised = np.empty(scaled.size, "<i2")
    for start in range(0, y.size, HASH_BLOCK):
        part = y[start:start + HASH_BLOCK]
        q, out = scaled[:part.size], quantised[:part.size]
        np.multiply(part, 32767.0, out=q)
        np.clip(q, -32768, 32767, out=q)
        np.rint(q, out=out, casting="unsafe")
        h.update(out)
    return str(h.hexdigest())


def _first(values: object) -> str:
    if isinstance(values, list | tuple):
        values = values[0] if values else ""
    return str(values or "").strip()


def _number(text: str) -> int:
    """The leading number of a tag such as ``3/12`` or ``2004-05-01`` (0 when there is none)."""
    digits = ""
    for c in text.strip():
        if not c.isdigit():
            break
        digits += c
    return int(digits[:9]) if digits else 0


# Easy (and Vorbis/MP4) keys of the extra tags, and their ID3 frames (ID3 in WAV/AIFF has no "easy" keys).
_EXTRA_KEYS = {"album_artist": ("albumartist", "TPE2"), "genre": ("genre", "TCON"), "track_no": ("tracknumber", "TRCK"),
               "disc_no": ("discnumber", "TPOS"), "year": ("date", "TDRC")}


def read_tags(path: str | os.PathLike[str]) -> Tags:
    """Tags with mutagen; a missing title becomes the file name, a missing album the folder."""
    p = os.fsdecode(path)
    tags = Tags()
    try:
        import mutagen

        f = mutagen.File(p, easy=True)
        if f is not None and f.tags is not None:
            if "TIT2" in f.tags or "TPE1" in f.tags or "TALB" in f.tags:  # ID3 in WAV/AIFF: no "easy" keys
                get = {"artist": "TPE1", "album": "TALB", "title": "TIT2"}
                tags.artist, tags.album, tags.title = (
                    _first(getattr(f.tags.get(get[k]), "text", "")) for k in ("artist", "album", "title"))
                extra = {k: _first([str(x) for x in getattr(f.tags.get(frame), "text", [])])
                         for k, (_, frame) in _EXTRA_KEYS.items()}
            else:
                tags.artist = _first(f.tags.get("artist") or f.tags.get("albumartist"))
                tags.album = _first(f.tags.get("album"))
                tags.title = _first(f.tags.get("title"))
                extra = {k: _first(f.tags.get(key)) for k, (key, _) in _EXTRA_KEYS.items()}
            tags.album_artist, tags.genre = extra["album_artist"], extra["genre"]
            tags.track_no, tags.disc_no, tags.year = (_number(extra[k]) for k in ("track_no", "disc_no", "year"))
    except Exception:  # noqa: BLE001 - tags are optional: a broken tag block must not fail the file
        pass
    name = audio.display_path(os.path.basename(p))
    tags.title = tags.title or os.path.splitext(name)[0]
    tags.album = tags.album or audio.display_path(os.path.basename(os.path.dirname(os.path.abspath(p))))
    return tags


def at_rate(y: np.ndarray, sr: int, target: int) -> np.ndarray:
    """Mono audio at ``sr`` resampled to ``target`` (soxr, high quality), unchanged when the rates agree."""
    if sr == target:
        return y
    import soxr

    return soxr.resample(y, sr, target).astype(np.float32, copy=False)


# Input samples around each stretch resampled on its own, so that its samples equal those of the whole signal
# resampled at once: 512 already gave them within 1e-6 of a unit-scale signal (measured); 2048 keeps a wide margin
# (tests/audio/test_analysis.py checks the spectrogram frames).
RESAMPLE_MARGIN = 2048


def patch_log_mel(y: np.ndarray, sr: int, key: str) -> np.ndarray:
    """``log_mel(at_rate(y, sr, preset.sr), preset)`` kept only where a model looks (key ``PRESET-pN``, see
    :func:`features.patches_key`): the ``N`` back-to-back segments of ``preset.segment_frames`` frames that
    :func:`features.spread_indices` picks (as ``models.base.spread_segments`` does), concatenated — computed from
    only the audio those frames see.

    musicnn's default part reads 4 patches of 3 s: resampling and transforming the whole window for them cost
    ~0.02 CPU-s a track and doubled the feature store (docs/performance.md). Short tracks get the whole
    spectrogram (every segment is picked then)."""
    import math

    preset, patches = split_key(key)
    if patches <= 0:
        return log_mel(at_rate(y, sr, preset.sr), preset)
    frames, hop, half = preset.segment_frames, preset.hop_length, preset.n_fft // 2
    n_out = round(y.size * preset.sr / sr)  # soxr's output length
    n_frames = 1 + n_out // hop  # centred frames, as power_spectrogram
    n_segments = segment_count(n_frames, frames, frames)
    if n_segments <= patches:
        return log_mel(at_rate(y, sr, preset.sr), preset)
    picked = spread_indices(n_segments, patches)
    common = math.gcd(sr, preset.sr)
    step_in, step_out = sr // common, preset.sr // common  # input starts on multiples of step_in stay on the grid
    columns = []
    for i in picked:
        first = int(i) * frames * hop - half  # output samples the segment's frames see: [first, last)
        last = (int(i) + 1) * frames * hop - hop + half
        start = max(0, (int(first * sr / preset.sr) - RESAMPLE_MARGIN) // step_in * step_in)
        stop = min(y.size, int(math.ceil(last * sr / preset.sr)) + RESAMPLE_MARGIN)
        z = at_rate(y[start:stop], sr, preset.sr)
        offset = start // step_in * step_out  # the output sample z[0] is
        stretch = np.zeros(last - first, dtype=np.float32)  # zeros outside the signal, as the centred padding
        lo, hi = max(first, 0), min(last, n_out, offset + z.size)
        stretch[lo - first:hi - first] = z[lo - offset:hi - offset]
        columns.append(framed_power(stretch, preset))
    return to_db(mel_power(np.concatenate([c.T for c in columns]).T, preset))  # frame by frame, as each column


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence C libraries (mpg123, ffmpeg) writing to fd 2 while decoding; our own errors are exceptions."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def analyse_waveform(y: np.ndarray, presets: Sequence[str] = DEFAULT_PRESETS) -> tuple[dict[str, np.ndarray],
                                                                                       np.ndarray]:
    """Spectrograms (float16, dB) for ``presets`` and the descriptor vector of mono audio at 22.05 kHz."""
    spectrograms: dict[str, np.ndarray] = {}
    base = get_preset("melae")
    power = power_spectrogram(y, base)
    mel_db = log_mel(y, base, power=power)
    descriptor = describe(y, base, power=power, mel_db=mel_db)
    for name in presets:
        spec = mel_db if name == "melae" else patch_log_mel(y, ANALYSIS_SR, name)
        spectrograms[name] = spec.astype(np.float16)
    return spectrograms, descriptor


def analyse_file(path: str | bytes | os.PathLike[str], presets: Sequence[str] = DEFAULT_PRESETS,
                 *, window: Window = DEFAULT_WINDOW, quiet: bool = True) -> Analysis:
    """Decode and analyse (the ``window`` of) one file; raises :class:`audio.AudioError` with the file and reason
    when unusable."""
    p = os.fsdecode(path)
    ctx = quiet_native_stderr() if quiet else contextlib.nullcontext()
    with ctx:
        y, info = audio.load_window(p, ANALYSIS_SR, max_duration=window.seconds, excerpts=window.excerpts,
                                    decoder=window.decoder)
    spectrograms, descriptor = analyse_waveform(y, presets)
    duration = info.duration if np.isfinite(info.duration) and info.duration > 0 else y.size / ANALYSIS_SR
    return Analysis(
        audio_hash=audio_hash(y, window.hashes),
        duration=float(duration),
        analysed_seconds=y.size / ANALYSIS_SR,
        tags=read_tags(p),
        spectrograms=spectrograms,
        descriptor=descriptor,
    )
