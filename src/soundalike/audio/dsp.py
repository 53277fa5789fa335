"""The pieces of librosa (0.11) that an analysis uses, in numpy and scipy.fft alone: the same values.

Written here because importing librosa costs a scan worker, and every command that analyses a file, about 1.2
CPU-s before its first analysis (its utilities compile numba kernels at import, its filters import scipy.signal and
scipy.stats: docs/performance.md) — more than five tracks' analysis — while what the analysis takes from it is a
Hann window, two filterbanks and a few formulas. tests/audio/test_dsp.py checks each against librosa (and
scipy.signal), value for value, on the inputs the analysis gives them: 1-D signals and 2-D ``(bins, frames)``
float arrays. librosa stays for the tests (the reference) and scripts.
"""

from __future__ import annotations

import functools

import numpy as np


def fft_frequencies(sr: float, n_fft: int) -> np.ndarray:
    """Frequencies (Hz) of the ``1 + n_fft // 2`` bins of a real FFT: ``librosa.fft_frequencies``."""
    return np.fft.rfftfreq(n=n_fft, d=1.0 / sr)


def hann(n: int) -> np.ndarray:
    """The periodic Hann window of ``n`` samples (float64): ``scipy.signal.get_window("hann", n, fftbins=True)``,
    computed as scipy computes it (a symmetric window one longer, its last value dropped)."""
    if n <= 1:
        return np.ones(n)
    fac = np.linspace(-np.pi, np.pi, n + 1)
    w = np.zeros(n + 1)
    for k, a in enumerate((0.5, 0.5)):
        w += a * np.cos(k * fac)
    return w[:-1]


def pad_center(data: np.ndarray, size: int) -> np.ndarray:
    """``data`` zero-padded on both sides to ``size`` values: ``librosa.util.pad_center``."""
    n = data.shape[-1]
    if n > size:
        raise ValueError(f"target size ({size}) must be at least input size ({n})")
    left = (size - n) // 2
    return np.pad(data, [(0, 0)] * (data.ndim - 1) + [(left, size - n - left)], mode="constant")


_F_SP = 200.0 / 3  # Slaney's mel scale: linear below 1 kHz, logarithmic above
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(frequencies: np.ndarray | float) -> np.ndarray:
    """Hz to mels on Slaney's scale: ``librosa.hz_to_mel(htk=False)``."""
    f = np.asanyarray(frequencies, dtype=np.float64)
    mels = f / _F_SP
    if f.ndim:
        high = f >= _MIN_LOG_HZ
        mels[high] = _MIN_LOG_MEL + np.log(f[high] / _MIN_LOG_HZ) / _LOGSTEP
    elif f >= _MIN_LOG_HZ:
        mels = _MIN_LOG_MEL + np.log(f / _MIN_LOG_HZ) / _LOGSTEP
    return np.asarray(mels)


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """Mels on Slaney's scale to Hz: ``librosa.mel_to_hz(htk=False)``."""
    m = np.atleast_1d(np.asanyarray(mels, dtype=np.float64))
    freqs = _F_SP * m
    high = m >= _MIN_LOG_MEL
    freqs[high] = _MIN_LOG_HZ * np.exp(_LOGSTEP * (m[high] - _MIN_LOG_MEL))
    return freqs


def mel_filters(sr: float, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """The Slaney-normalised mel filterbank ``(n_mels, 1 + n_fft // 2)`` (float32): ``librosa.filters.mel``."""
    fmax = float(sr) / 2 if fmax is None else fmax
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    fftfreqs = fft_frequencies(sr, n_fft)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    return weights


def normalize(s: np.ndarray, norm: float, axis: int) -> np.ndarray:
    """``s`` scaled so that each slice along ``axis`` has unit ``norm`` (``np.inf``: peak; a positive number:
    that p-norm); slices below the smallest normal float are left as they are: ``librosa.util.normalize``
    (``fill=None``, its default threshold)."""
    mag = np.abs(s).astype(float)
    if norm == np.inf:
        length = np.max(mag, axis=axis, keepdims=True)
    elif norm > 0:
        length = np.sum(mag**norm, axis=axis, keepdims=True) ** (1.0 / norm)
    else:
        raise ValueError(f"unsupported norm: {norm!r}")
    length[length < np.finfo(s.dtype).tiny] = 1.0
    out = np.empty_like(s)
    out[:] = s / length
    return out


def chroma_filters(sr: float, n_fft: int, n_chroma: int = 12) -> np.ndarray:
    """The chroma filterbank ``(n_chroma, 1 + n_fft // 2)`` (float32) at A440: ``librosa.filters.chroma`` with
    ``tuning=0`` (its defaults otherwise: octaves centred on 5 with width 2, unit 2-norm columns, C first)."""
    frequencies = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    frqbins = n_chroma * np.log2(frequencies / (440.0 / 16))
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))
    binwidthbins = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1]))
    d = np.subtract.outer(frqbins, np.arange(0, n_chroma, dtype="d")).T
    half = np.round(float(n_chroma) / 2)
    d = np.remainder(d + half + 10 * n_chroma, n_chroma) - half
    wts = np.exp(-0.5 * (2 * d / np.tile(binwidthbins, (n_chroma, 1))) ** 2)
    wts = normalize(wts, norm=2, axis=0)
    wts *= np.tile(np.exp(-0.5 * (((frqbins / n_chroma - 5.0) / 2.0) ** 2)), (n_chroma, 1))
    wts = np.roll(wts, -3 * (n_chroma // 12), axis=0)
    return np.ascontiguousarray(wts[:, : int(1 + n_fft / 2)], dtype=np.float32)


def power_to_db(s: np.ndarray, ref: float = 1.0, amin: float = 1e-10, top_db: float | None = 80.0) -> np.ndarray:
    """Power to decibels, floored at ``amin`` and at ``top_db`` below the peak: ``librosa.power_to_db``."""
    log_spec = 10.0 * np.log10(np.maximum(amin, s))
    log_spec -= 10.0 * np.log10(np.maximum(amin, abs(ref)))
    if top_db is not None:
        log_spec = np.maximum(log_spec, log_spec.max() - top_db)
    return np.asarray(log_spec)


def amplitude_to_db(s: np.ndarray, ref: float = 1.0, amin: float = 1e-5, top_db: float | None = 80.0) -> np.ndarray:
    """Amplitude to decibels: ``librosa.amplitude_to_db``."""
    magnitude = np.abs(s)
    return power_to_db(np.square(magnitude, out=magnitude), ref=abs(ref) ** 2, amin=amin**2, top_db=top_db)


def mfcc(mel_db: np.ndarray, n_mfcc: int = 20) -> np.ndarray:
    """The first ``n_mfcc`` coefficients of the orthonormal DCT-II of a log-mel spectrogram along its bands:
    ``librosa.feature.mfcc(S=mel_db, n_mfcc=n_mfcc)``."""
    import scipy.fft  # here, not at import: every command imports this module, few compute (~0.1 CPU-s)

    return np.asarray(scipy.fft.dct(mel_db, axis=-2, type=2, norm="ortho")[..., :n_mfcc, :])


def onset_strength(mel_db: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """Spectral flux of a log-mel spectrogram ``(bands, frames)``: the mean over bands of each band's rise from
    the frame before, centred on the frames: ``librosa.onset.onset_strength(S=mel_db)`` (lag 1, no maximum
    filter)."""
    rise = np.maximum(0.0, mel_db[..., 1:] - mel_db[..., :-1])
    env = np.mean(rise, axis=-2)
    pad = 1 + n_fft // (2 * hop_length)
    return np.pad(env, (pad, 0), mode="constant")[: mel_db.shape[-1]]


def time_to_frames(seconds: float, sr: float, hop_length: int) -> int:
    """Frames in ``seconds``: ``librosa.time_to_frames``."""
    return int(int(seconds * sr) // hop_length)


def tempo_frequencies(n_bins: int, sr: float, hop_length: int) -> np.ndarray:
    """Tempo (BPM) of each lag of an onset autocorrelation (lag 0: infinity): ``librosa.tempo_frequencies``."""
    bpms = np.zeros(int(n_bins), dtype=np.float64)
    bpms[0] = np.inf
    bpms[1:] = 60.0 * sr / (hop_length * np.arange(1.0, n_bins))
    return bpms


def tempo(mean_tempogram: np.ndarray, sr: float, hop_length: int, start_bpm: float = 120.0, std_bpm: float = 1.0,
          max_tempo: float = 320.0) -> float:
    """The tempo (BPM) of a tempogram's mean over time ``(lags,)``: its strongest lag under a log-normal prior
    around ``start_bpm``: ``librosa.feature.tempo(tg=...)``."""
    bpms = tempo_frequencies(mean_tempogram.shape[0], sr, hop_length)
    logprior = -0.5 * ((np.log2(bpms) - np.log2(start_bpm)) / std_bpm) ** 2
    logprior[: int(np.argmax(bpms < max_tempo))] = -np.inf
    return float(bpms[np.argmax(np.log1p(1e6 * mean_tempogram) + logprior)])


def autocorrelate(y: np.ndarray) -> np.ndarray:
    """The full autocorrelation of real ``y`` (lags 0 to ``len(y) - 1``), through the FFT: ``librosa.autocorrelate``."""
    import scipy.fft

    n_pad = scipy.fft.next_fast_len(2 * y.shape[-1] - 1, real=True)
    spectrum = scipy.fft.rfft(y, n=n_pad)
    return np.asarray(scipy.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=n_pad)[..., : y.shape[-1]])


@functools.lru_cache(maxsize=8)
def hann_float32(n: int) -> np.ndarray:
    """:func:`hann` as float32, computed once (read-only, shared)."""
    window = hann(n).astype(np.float32)
    window.flags.writeable = False
    return window
