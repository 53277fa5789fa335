"""Log-mel spectrograms with the presets of the seed papers, and segmenting them into patches/windows.

Pure functions over numpy arrays. Spectrograms are ``(n_mels, n_frames)`` float32 in dB (``10·log10`` of mel
power, floor 1e-10, no top-dB clipping), so every model can rescale them as its paper says (e.g. MelAE's [0, 1]).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from . import dsp


class ParameterError(ValueError):
    """A bad parameter (unknown preset, impossible segment size...)."""


@dataclass(frozen=True)
class MelPreset:
    """Everything that fixes a spectrogram and its segmenting; ``source`` cites the seed section."""

    name: str
    sr: int
    n_fft: int
    win_length: int
    hop_length: int
    n_mels: int
    segment_frames: int
    segment_hop: int
    source: str
    fmin: float = 0.0
    fmax: float | None = None

    @property
    def frames_per_second(self) -> float:
        """Spectrogram frames per second of audio."""
        return self.sr / self.hop_length

    @property
    def segment_seconds(self) -> float:
        """Duration of one segment in seconds."""
        return self.segment_frames * self.hop_length / self.sr

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready description (stored in the catalogue and in model checkpoints)."""
        return asdict(self)


PRESETS: dict[str, MelPreset] = {
    # 000 §4.1.3 / §4.2.1: 128-pixel-high spectrograms, ~1296 frames per 30 s preview (hop 512 at 22.05 kHz),
    # 128x128 patches, window moved by 70 % of its width: floor(0.7·128) = 89 frames -> 14 patches of 1296.
    "melae": MelPreset("melae", 22050, 2048, 2048, 512, 128, 128, 89, "000 §4.1.3, §4.2.1, table 6"),
    # 002 §3.1.3: 40 ms windows, 50 % overlap (50 frames/s), 60 bands; §3.2.1: 4 s segments overlapping by 2 s
    # (14 per 30 s). The sample rate is not given: 22.05 kHz, window 882 samples in a 1024-point FFT.
    "stollery": MelPreset("stollery", 22050, 1024, 882, 441, 60, 200, 100, "002 §3.1.3, §3.2.1"),
    # 003 §II-III: 128 bins, 1292 frames per 30 s (hop 512 at 22.05 kHz); 256-frame (~6 s) segments, back to back.
    "clothier": MelPreset("clothier", 22050, 2048, 2048, 512, 128, 256, 256, "003 §II, §III"),
    # 004 §5.1: 599 frames x 128 bins per 30 s clip; the hop is not given: 1105 samples at 22.05 kHz gives exactly
    # 599 centred frames for 30 s (~20 frames/s). Training crops 599-frame clips; windows hop by half a clip.
    "dieleman": MelPreset("dieleman", 22050, 2048, 2048, 1105, 128, 599, 300, "004 §5.1"),
    # musicnn (Pons & Serra 2019, musicnn/configuration.py): 16 kHz, FFT 512, hop 256, 96 mels; 3 s patches
    # (187 frames) back to back, as the package's extractor cuts them.
    "musicnn": MelPreset("musicnn", 16000, 512, 512, 256, 96, 187, 187, "Pons & Serra 2019 (musicnn)"),
}


def get_preset(name: str) -> MelPreset:
    """The preset called ``name``; raises :class:`ParameterError` listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ParameterError(f"unknown mel preset {name!r}; known: {', '.join(sorted(PRESETS))}") from None


def patches_key(preset: str, patches: int) -> str:
    """The feature-store key of a preset's spectrogram kept only where a model looks: ``patches`` evenly spread
    back-to-back segments of it (``musicnn-p4``); the preset's own name when ``patches`` is 0."""
    return f"{preset}-p{patches}" if patches > 0 else preset


def split_key(key: str) -> tuple[MelPreset, int]:
    """``(preset, patches)`` of a feature-store key: ``musicnn-p4`` -> (musicnn, 4), ``melae`` -> (melae, 0)."""
    name, sep, count = key.rpartition("-p")
    if sep and count.isdigit() and name in PRESETS:
        return PRESETS[name], int(count)
    return get_preset(key), 0


def _as_preset(preset: MelPreset | str) -> MelPreset:
    return get_preset(preset) if isinstance(preset, str) else preset


# Frames one FFT call takes in power_spectrogram (bounds its complex temporaries: ~4 MB at n_fft 2048).
STFT_BLOCK = 512


def power_spectrogram(y: np.ndarray, preset: MelPreset | str) -> np.ndarray:
    """``|STFT|²`` ``(bins, frames)`` of mono ``y`` with the preset's window and hop (centred frames, zero-padded,
    Hann window): ``abs(librosa.stft(y, ...)) ** 2`` within float32 rounding (tests/audio/test_features.py); laid
    out frame by frame in memory (the transposed view of a C-contiguous ``(frames, bins)`` array: see
    :func:`framed_power`).

    Written here because librosa transforms down the strided frequency axis and takes a square root it does not
    need: frames as contiguous rows through scipy.fft, and re² + im², cost about two thirds of its CPU
    (docs/performance.md)."""
    p = _as_preset(preset)
    half = p.n_fft // 2  # centred frames, as librosa.stft(center=True, pad_mode="constant")
    return framed_power(np.pad(np.asarray(y, dtype=np.float32), (half, half)), p)


def framed_power(x: np.ndarray, preset: MelPreset | str) -> np.ndarray:
    """``|FFT|²`` ``(bins, frames)`` of the frames of ``x`` that start every hop from its first sample (no padding):
    the columns of :func:`power_spectrogram` when ``x`` is the centred, padded signal or a stretch of it.

    Each frame's bins are contiguous (the array is the transposed view of a ``(frames, bins)`` one): the FFT writes
    frames as rows, and what reads the spectrogram frame by frame (spectral contrast's sorts, the banded mel
    product of :func:`mel_power`) reads it in place. Transposing it to ``(bins, frames)`` rows cost a third as much
    as the FFT, and spectral contrast transposed it back (docs/performance.md)."""
    import scipy.fft

    p = _as_preset(preset)
    window = _window(p)
    half = p.n_fft // 2
    x = np.asarray(x, dtype=np.float32)
    count = max(0, 1 + (x.size - p.n_fft) // p.hop_length)
    frames = np.lib.stride_tricks.sliding_window_view(x, p.n_fft)[::p.hop_length][:count]
    power = np.empty((count, half + 1), dtype=np.float32)
    windowed = np.empty((min(STFT_BLOCK, count), p.n_fft), dtype=np.float32)  # reused: no fresh pages a block
    for start in range(0, count, STFT_BLOCK):
        block = frames[start:start + STFT_BLOCK]
        spectrum = scipy.fft.rfft(np.multiply(block, window, out=windowed[:len(block)]), axis=-1,
                                  overwrite_x=True)
        parts = spectrum.view(np.float32)  # re, im, re, im...: squared in place, the same values as re² + im²
        np.multiply(parts, parts, out=parts)
        np.add(parts[:, 0::2], parts[:, 1::2], out=power[start:start + len(block)])
    return power.T


@functools.lru_cache(maxsize=16)
def _window(p: MelPreset) -> np.ndarray:
    """The preset's Hann window, centred in ``n_fft`` samples (read-only, shared)."""
    window = dsp.pad_center(dsp.hann(p.win_length), p.n_fft).astype(np.float32)
    window.flags.writeable = False
    return window


@functools.lru_cache(maxsize=16)
def mel_filterbank(preset: MelPreset) -> np.ndarray:
    """The preset's mel filterbank (Slaney-normalised, as ``librosa.feature.melspectrogram``), computed once a
    preset instead of on every spectrogram; read-only, since callers share it."""
    bank = dsp.mel_filters(preset.sr, preset.n_fft, preset.n_mels, preset.fmin, preset.fmax)
    bank.flags.writeable = False
    return bank


@functools.lru_cache(maxsize=16)
def _sparse_filterbank(preset: MelPreset) -> Any:
    """:func:`mel_filterbank` as a CSR matrix (each filter spans a few bins: 2,018 of 131,200 weights for
    ``melae``)."""
    import scipy.sparse

    return scipy.sparse.csr_matrix(mel_filterbank(preset))


@functools.lru_cache(maxsize=16)
def _filter_bands(preset: MelPreset) -> tuple[tuple[int, int, int, int], ...]:
    """``(first filter, end filter, first bin, end bin)`` of :data:`MEL_BANDS` groups of neighbouring mel filters:
    every bin outside a group's range is zero in all of its filters."""
    bank = mel_filterbank(preset)
    nonzero = [np.flatnonzero(row) for row in bank]
    edges = np.linspace(0, len(bank), min(MEL_BANDS, len(bank)) + 1).astype(int)
    groups = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        used = [n for n in nonzero[a:b] if len(n)]
        lo = min((int(n[0]) for n in used), default=0)
        hi = max((int(n[-1]) + 1 for n in used), default=0)
        groups.append((int(a), int(b), lo, hi))
    return tuple(groups)


# Groups of neighbouring mel filters in the banded product of mel_power (measured at 128 mels: 4 to 16 alike, 8
# fastest; one dense product costs three times as much).
MEL_BANDS = 8


def mel_power(power: np.ndarray, preset: MelPreset | str) -> np.ndarray:
    """``mel_filterbank(preset) @ power``: mel power ``(n_mels, frames)`` (C-contiguous) of a power spectrogram.

    Each filter covers a few bins, so the dense product would multiply mostly zeros: a spectrogram laid out frame by
    frame (as :func:`power_spectrogram` makes it) takes a dense product per group of neighbouring filters over
    the bins they cover (:data:`MEL_BANDS` of them); one laid out bin by bin the sparse product (scipy's, which
    reads its operand bin by bin: given frames, it copied the whole spectrogram first, 15x slower). Equal within
    float32 rounding (tests/audio/test_features.py)."""
    p = _as_preset(preset)
    if not power.T.flags.c_contiguous:
        return np.asarray(_sparse_filterbank(p) @ power, dtype=np.float32)
    bank = mel_filterbank(p)
    out = np.zeros((bank.shape[0], power.shape[1]), dtype=np.float32)
    for first, end, lo, hi in _filter_bands(p):
        if hi > lo:
            np.matmul(bank[first:end, lo:hi], power[lo:hi], out=out[first:end])
    return out


def to_db(mel: np.ndarray) -> np.ndarray:
    """Mel power to dB, floored at -100 dB: ``librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None)``, the same
    values (tests/audio/test_features.py) in place in one array instead of librosa's four passes (a fifth of the
    CPU)."""
    out = np.maximum(mel, mel.dtype.type(1e-10) if mel.dtype.kind == "f" else 1e-10)
    np.log10(out, out=out)
    out *= 10.0
    return out.astype(np.float32, copy=False)


def log_mel(y: np.ndarray, preset: MelPreset | str, power: np.ndarray | None = None) -> np.ndarray:
    """Log-mel spectrogram ``(n_mels, frames)`` in dB of mono audio at ``preset.sr``.

    ``power`` may pass an already computed :func:`power_spectrogram` with the same preset, to share the STFT.
    """
    p = _as_preset(preset)
    if power is None:
        power = power_spectrogram(y, p)
    return to_db(mel_power(power, p))


def spread_indices(count: int, limit: int) -> np.ndarray:
    """Indices of at most ``limit`` of ``count`` segments, evenly spread over them (all when ``limit`` is 0)."""
    if not limit or count <= limit:
        return np.arange(count)
    return np.unique(np.round(np.linspace(0, count - 1, limit)).astype(np.int64))


def segment_count(n_frames: int, segment_frames: int, segment_hop: int) -> int:
    """How many whole segments fit: ``1 + (n_frames - segment_frames) // segment_hop`` (at least 1)."""
    if segment_frames <= 0 or segment_hop <= 0:
        raise ParameterError("segment_frames and segment_hop must be positive")
    return max(1, 1 + (n_frames - segment_frames) // segment_hop)


def segment(spec: np.ndarray, segment_frames: int, segment_hop: int) -> np.ndarray:
    """Cut ``(n_mels, frames)`` into ``(n_segments, n_mels, segment_frames)`` windows at ``segment_hop``.

    Windows start at 0 and move by the hop as long as a whole window fits (the seeds' protocol). A spectrogram
    shorter than one window is looped to fill it, rather than padded with silence the model would learn from.
    """
    if spec.ndim != 2:
        raise ParameterError(f"spectrogram must be 2-D (n_mels, frames), got shape {spec.shape}")
    n_frames = spec.shape[1]
    if n_frames == 0:
        raise ParameterError("empty spectrogram")
    if n_frames < segment_frames:
        spec = np.tile(spec, (1, -(-segment_frames // n_frames)))[:, :segment_frames]
        n_frames = segment_frames
    count = segment_count(n_frames, segment_frames, segment_hop)
    windows = np.lib.stride_tricks.sliding_window_view(spec, segment_frames, axis=1)[:, ::segment_hop][:, :count]
    return np.ascontiguousarray(windows.transpose(1, 0, 2))


def segment_preset(spec: np.ndarray, preset: MelPreset | str) -> np.ndarray:
    """:func:`segment` with the preset's segment size and hop."""
    p = _as_preset(preset)
    return segment(spec, p.segment_frames, p.segment_hop)
