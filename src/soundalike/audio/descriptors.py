"""Handcrafted audio descriptors: the embedding that needs no training, and the seeds' "audio features" baseline.

Means and spreads over time of MFCC, chroma, spectral centroid/bandwidth/contrast/flatness/rolloff,
zero-crossing rate, onset strength, tempo and loudness — the kind of per-track vector seed 000 §5 compares
against ("Spfy" features) and seed 001 feeds its autoencoder. Standardised across the library before search.
"""

from __future__ import annotations

import functools

import numpy as np

from . import dsp
from .features import MelPreset, get_preset, log_mel, power_spectrogram

N_MFCC = 20
DESCRIPTOR_VERSION = 2
"""The version of :func:`describe`: bump it with any change to what it computes. Stored vectors carry the version
that made them; a scan re-analyses tracks whose descriptors are older, and older ones are never searched.
Version 2: the spectral statistics over every :data:`FRAME_STEP`-th frame (version 1: every frame). The tempogram's
:data:`TEMPO_STEP` kept it: it gave every development and training track the same vector (a version forces every
library to decode every track again; a change that moves no value does not need one)."""
FRAME_STEP = 2
"""Chroma, spectral contrast, centroid, bandwidth, roll-off, flatness and loudness are averaged (mean and spread) over
every ``FRAME_STEP``-th STFT frame: at a hop of 23 ms neighbouring frames overlap by three quarters and their
means and spreads over minutes of music barely change (standardised vectors within cosine 0.9998 of every frame's
on 30 development tracks), for about a quarter less descriptor CPU (benchmarks/descriptors.py). The MFCC, onset,
tempo and zero-crossing statistics, which read the mel spectrogram or the samples, keep every frame (onsets and
tempo need consecutive frames). Chosen on validation and reported on test: docs/performance.md."""
TEMPO_STEP = 8
"""The tempo is estimated from the mean of every ``TEMPO_STEP``-th column of the tempogram: its 8 s windows
taken 0.19 s apart instead of 23 ms (each still overlaps the next by 98 %). On all 349 development and training
tracks the estimate is the one every column gives, for about a sixth of its CPU (benchmarks/tempo.py,
benchmarks/results/tempo.json)."""
TOP_DB = 60.0
# Frames of a spectrogram spectral_shape takes at once (~46 s at hop 512 and 22.05 kHz).
SHAPE_BLOCK = 2048


def _names() -> list[str]:
    names: list[str] = []
    for stat in ("mean", "std"):
        names += [f"mfcc{i:02d}_{stat}" for i in range(N_MFCC)]
    for stat in ("mean", "std"):
        names += [f"dmfcc{i:02d}_{stat}" for i in range(13)]
    for stat in ("mean", "std"):
        names += [f"chroma_{n}_{stat}" for n in ("C", "Cs", "D", "Ds", "E", "F", "Fs", "G", "Gs", "A", "As", "B")]
    for stat in ("mean", "std"):
        names += [f"contrast{i}_{stat}" for i in range(7)]
    for feat in ("centroid", "bandwidth", "rolloff", "flatness", "zcr", "onset", "loudness_db"):
        names += [f"{feat}_mean", f"{feat}_std"]
    names += ["tempo_log2", "pulse_clarity"]
    return names


DESCRIPTOR_NAMES: tuple[str, ...] = tuple(_names())
DESCRIPTOR_DIM = len(DESCRIPTOR_NAMES)


def _mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.atleast_2d(x)
    return x.mean(axis=1), x.std(axis=1)


def spectral_shape(power: np.ndarray, sr: int, n_fft: int, magnitude: np.ndarray | None = None
                   ) -> dict[str, np.ndarray]:
    """Per-frame centroid, bandwidth, 85 % roll-off (Hz), flatness and RMS of a power spectrogram ``(bins, frames)``,
    equal to librosa's ``spectral_centroid``/``_bandwidth``/``_rolloff``/``_flatness`` and ``rms`` on its magnitude.

    Written here because librosa normalises the whole spectrogram again for each of them (``util.normalize``:
    ~40 % of the descriptor time, docs/performance.md); one pass of matrix products over the power gives the same
    values within float32 rounding (tests/audio/test_descriptors.py compares them). ``magnitude`` is
    ``sqrt(power)`` when the caller has it already. Long spectrograms go through in blocks of ``SHAPE_BLOCK``
    frames (every value is per frame), so the temporaries stay small on a 10-minute analysis
    (benchmarks/memory.py).
    """
    frames = power.shape[1]
    if frames > SHAPE_BLOCK:
        blocks = [spectral_shape(power[:, i:i + SHAPE_BLOCK], sr, n_fft,
                                 None if magnitude is None else magnitude[:, i:i + SHAPE_BLOCK])
                  for i in range(0, frames, SHAPE_BLOCK)]
        return {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
    magnitude = np.sqrt(power) if magnitude is None else magnitude
    freq = dsp.fft_frequencies(sr, n_fft).astype(np.float32)
    total = magnitude.sum(axis=0)
    safe = np.where(total > 0, total, 1.0)
    centroid = (freq @ magnitude) / safe
    # sum_f S_f (f - c)^2 / sum_f S_f = E[(f - a)^2] - (c - a)^2 for any a: with a the median centroid the two
    # terms stay of the bandwidth's size on the floored spectra describe passes (at most 60 dB below the peak), so
    # float32 keeps it within 1e-4 relative of exact (the float64 form it replaced: 2e-5; benchmarks/descriptors.py)
    # without a float64 copy of the spectrogram (a tenth of the descriptor time; tests/audio/test_descriptors.py
    # compares with librosa). Unfloored narrowband frames far from
    # the median lose digits in either form (a review measured 2-21 % on a lone 9 kHz tone; the float64 form: 23 %)
    shift = np.float32(np.median(centroid)) if frames else np.float32(0.0)
    second = ((freq - shift) ** 2) @ magnitude / safe
    bandwidth = np.sqrt(np.maximum(second - (centroid - shift) ** 2, 0.0)).astype(np.float32)
    rolloff = freq[rolloff_bins(magnitude, 0.85)]
    floored = np.maximum(power, 1e-10)
    flatness = np.exp(np.log(floored).mean(axis=0)) / floored.mean(axis=0)
    weights = np.ones(power.shape[0], dtype=np.float32)
    weights[0] = 0.5
    if n_fft % 2 == 0:
        weights[-1] = 0.5
    rms = np.sqrt(2.0 * (weights @ power) / n_fft**2)
    return {"centroid": centroid, "bandwidth": bandwidth, "rolloff": rolloff, "flatness": flatness, "rms": rms}


ROLLOFF_BLOCK = 32


def rolloff_bins(magnitude: np.ndarray, fraction: float) -> np.ndarray:
    """The first bin of each frame of ``magnitude`` ``(bins, frames)`` where the running sum over bins reaches
    ``fraction`` of the frame's total: librosa's ``spectral_rolloff`` bin, with the sums in float64.

    Written here because librosa takes a float32 running sum over every bin of every frame: sums of
    :data:`ROLLOFF_BLOCK` bins first, then the running sum inside the one block that crosses the threshold — a
    quarter of the CPU, and exact where float32's running sum strays by a bin in about one frame in a thousand
    (tests/audio/test_descriptors.py)."""
    bins, frames = magnitude.shape
    if frames == 0:
        return np.zeros(0, dtype=np.int64)
    width = ROLLOFF_BLOCK
    whole = bins // width * width
    sums = magnitude[:whole].reshape(-1, width, frames).sum(axis=1, dtype=np.float64)
    if whole < bins:
        sums = np.concatenate([sums, magnitude[whole:].sum(axis=0, dtype=np.float64)[None]])
    running = np.cumsum(sums, axis=0)
    threshold = fraction * running[-1]
    block = np.argmax(running >= threshold, axis=0)
    columns = np.arange(frames)
    before = np.where(block > 0, running[np.maximum(block - 1, 0), columns], 0.0)
    rows = block[None, :] * width + np.arange(width)[:, None]
    inside = np.where(rows < bins, magnitude[np.minimum(rows, bins - 1), columns[None, :]], 0.0)
    reached = before + np.cumsum(inside, axis=0, dtype=np.float64) >= threshold
    # (a block's sum and its running sum can differ in the last bit: then the block's last bin)
    offset = np.where(reached.any(axis=0), np.argmax(reached, axis=0), width - 1)
    return np.asarray(np.minimum(block * width + offset, bins - 1))


def zero_crossing_rate(y: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """librosa's ``feature.zero_crossing_rate`` (centred, edge-padded frames, |x| <= 1e-10 taken as 0) from counts
    of sign changes instead of framing the signal (4x overlap at hop = length / 4).

    When the hop divides the frame length, the changes are summed a hop at a time and a frame adds up its hops:
    integer sums, so the same values, at a third of the CPU of one running count over every sample."""
    half = frame_length // 2
    # librosa's sign with |x| <= 1e-10 as 0 and 0 as positive, edge-padded as bytes (not a padded float copy)
    negative = np.pad(np.asarray(y) < -1e-10, (half, half), mode="edge")
    changes = np.zeros(len(negative), dtype=bool)  # changes[j - 1]: a crossing at sample j (the last one: none)
    np.not_equal(negative[1:], negative[:-1], out=changes[:-1])
    count = 1 + (len(negative) - frame_length) // hop_length
    starts = np.arange(max(count, 0)) * hop_length
    if count > 0 and frame_length % hop_length == 0:
        # crossings at samples start+1 .. start+L-1 of a frame are changes[start : start+L-1]: its L / hop hops'
        # changes less the last one
        per = frame_length // hop_length
        hops = count - 1 + per
        sums = changes[: hops * hop_length].reshape(hops, hop_length).sum(axis=1, dtype=np.int32)
        window = np.lib.stride_tricks.sliding_window_view(sums, per).sum(axis=1, dtype=np.int32)
        return (window - changes[starts + frame_length - 1]) / frame_length
    counts = np.empty(len(negative), dtype=np.int32)
    counts[0] = 0
    np.cumsum(changes[:-1], dtype=np.int32, out=counts[1:])
    # crossings at samples start+1 .. start+L-1 of each frame (its first sample never counts: pad=False)
    return (counts[starts + frame_length - 1] - counts[starts]) / frame_length


def estimate_tempo(onset: np.ndarray, sr: int, hop: int, ac_size: float = 8.0, block: int = SHAPE_BLOCK,
                   step: int = 1) -> float:
    """librosa's ``feature.tempo`` (BPM) of an onset envelope, from :func:`mean_tempogram` (every ``step``-th
    column): with ``step`` 1 the same estimate as librosa's (tests/audio/test_descriptors.py)."""
    return dsp.tempo(mean_tempogram(onset, sr, hop, ac_size, block, step), sr, hop)


def mean_tempogram(onset: np.ndarray, sr: int, hop: int, ac_size: float = 8.0, block: int = SHAPE_BLOCK,
                   step: int = 1) -> np.ndarray:
    """The mean over time (float32, ``(win,)``) of librosa's ``tempogram`` of an onset envelope — of every
    ``step``-th column of it — summed ``block`` columns at a time.

    librosa builds the whole tempogram first — an ``ac_size`` autocorrelation window for every frame, in complex128:
    ~420 MB for a 10-minute analysis, the largest allocation of a scan worker (benchmarks/memory.py) — and then
    ``feature.tempo`` only uses its mean over time. Each column depends on its own window alone, so the columns are
    summed a block at a time. They are computed as librosa's ``tempogram`` does (Hann-windowed frames of the
    once-padded envelope, autocorrelated through the FFT, each scaled by its largest value), but in float32 with the
    FFT along contiguous rows (scipy.fft): 2.5x less CPU, the mean within 1e-7 of librosa's.
    """
    import scipy.fft

    onset = np.asarray(onset, dtype=np.float32)
    n = onset.shape[-1]
    win = dsp.time_to_frames(ac_size, sr, hop)
    half = win // 2
    padded = np.pad(onset, (half, half), mode="linear_ramp", end_values=(0, 0))  # as tempogram(center=True)
    window = dsp.hann_float32(win)
    n_fft = scipy.fft.next_fast_len(2 * win - 1, real=True)  # >= 2 win - 1: the linear autocorrelation
    tiny = np.finfo(np.float32).tiny
    total = np.zeros(win, dtype=np.float64)
    block = max(step, block - block % step)  # every block starts on a kept column
    for start in range(0, n, block):
        stop = min(start + block, n)
        frames = np.lib.stride_tricks.sliding_window_view(padded[start:stop + win - 1], win)[: stop - start:step]
        spectrum = scipy.fft.rfft(frames * window, n=n_fft, axis=-1)
        ac = scipy.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=n_fft, axis=-1)[:, :win]
        peak = np.abs(ac).max(axis=-1, keepdims=True)
        peak[peak < tiny] = 1.0  # librosa's util.normalize leaves an all-zero column as it is
        total += (ac / peak).sum(axis=0, dtype=np.float64)
    return (total / max(len(range(0, n, step)), 1)).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _chroma_filterbank(sr: int, n_fft: int) -> np.ndarray:
    """librosa's chroma filterbank at A440 (``tuning=0``), computed once (read-only, shared)."""
    bank = dsp.chroma_filters(sr, n_fft)
    bank.flags.writeable = False
    return bank


def chroma_stft(power: np.ndarray, sr: int, n_fft: int, step: int = 1) -> np.ndarray:
    """librosa's ``feature.chroma_stft(S=power[..., ::step], tuning=0.0)`` (each frame scaled to its peak), its own
    product with the filterbank made once instead of on every call (about 40 % of its CPU): the same values
    (tests/audio/test_descriptors.py). With ``step``, a spectrogram laid out frame by frame (as
    :func:`~soundalike.audio.features.power_spectrogram` makes it) gives the product its every ``step``-th frame in
    place (half the CPU at step 2, the same values); one laid out bin by bin, whose strided frames the product
    would copy first, takes every frame and keeps every ``step``-th column (a fifth less than the copy)."""
    bank = _chroma_filterbank(sr, n_fft)
    frame_major = power.ndim == 2 and power.T.flags.c_contiguous
    raw = np.matmul(bank, power[..., ::step]) if frame_major else np.matmul(bank, power)[..., ::step]
    return dsp.normalize(raw, norm=np.inf, axis=-2)


def spectral_contrast(magnitude: np.ndarray, sr: int, n_fft: int, fmin: float = 200.0, n_bands: int = 6,
                      quantile: float = 0.02) -> np.ndarray:
    """librosa's ``feature.spectral_contrast`` ``(n_bands + 1, frames)`` of a magnitude spectrogram, sorting each
    band along contiguous rows of the transposed spectrogram (librosa sorts down the strided frequency axis): half
    the CPU, equal within float rounding (tests/audio/test_descriptors.py)."""
    freq = dsp.fft_frequencies(sr, n_fft)
    octaves = np.zeros(n_bands + 2)
    octaves[1:] = fmin * (2.0 ** np.arange(0, n_bands + 1))
    bands = []  # (first bin, end bin, bins averaged at each end) of each band
    for k, (f_low, f_high) in enumerate(zip(octaves[:-1], octaves[1:], strict=True)):
        inside = np.flatnonzero((freq >= f_low) & (freq <= f_high))
        low = inside[0] - 1 if k > 0 else inside[0]  # librosa adds the bin below (and all above to the last band)
        high = len(freq) if k == n_bands else inside[-1] + 1
        count = int(max(np.rint(quantile * (high - low)), 1))
        bands.append((low, high - 1 if k < n_bands else high, count))  # and drops a band's top bin
    frames = magnitude.shape[1]
    valley = np.zeros((n_bands + 1, frames))
    peak = np.zeros_like(valley)
    for start in range(0, frames, SHAPE_BLOCK):  # blocks bound the transposed copy (8 MB at n_fft 2048)
        rows = np.ascontiguousarray(magnitude[:, start:start + SHAPE_BLOCK].T)
        for k, (low, end, count) in enumerate(bands):
            ordered = np.sort(rows[:, low:end], axis=-1)
            valley[k, start:start + SHAPE_BLOCK] = ordered[:, :count].mean(axis=-1)
            peak[k, start:start + SHAPE_BLOCK] = ordered[:, -count:].mean(axis=-1)
    return dsp.power_to_db(peak) - dsp.power_to_db(valley)


def describe(
    y: np.ndarray,
    preset: MelPreset | str = "melae",
    *,
    power: np.ndarray | None = None,
    mel_db: np.ndarray | None = None,
) -> np.ndarray:
    """The descriptor vector (float32, ``DESCRIPTOR_DIM`` values, names in ``DESCRIPTOR_NAMES``) of mono ``y``.

    ``power`` (|STFT|²) and ``mel_db`` (log-mel) of the same preset may be passed to share work with indexing.
    """
    p = get_preset(preset) if isinstance(preset, str) else preset
    sr, hop = p.sr, p.hop_length
    if power is None:
        power = power_spectrogram(y, p)
    if mel_db is None:
        mel_db = log_mel(y, p, power=power)
    # Bands a lossy codec empties (everything above its low-pass) would otherwise sit near the -100 dB floor and
    # dominate cepstrum, contrast and flatness; clip TOP_DB below the track's peak so an mp3 and its lossless
    # source agree (measured on synthetic tracks: median cosine 0.94 -> 0.97, same-style precision up too).
    mel_db = np.maximum(mel_db, mel_db.max() - TOP_DB)
    spectral = power[:, ::FRAME_STEP]  # a view; the floor is still the whole spectrogram's peak
    floored = np.maximum(spectral, power.max() * 10.0 ** (-TOP_DB / 10.0))
    magnitude = np.sqrt(floored)

    mfcc = dsp.mfcc(mel_db, N_MFCC)
    dmfcc = np.diff(mfcc, axis=1) if mfcc.shape[1] > 1 else np.zeros_like(mfcc)
    # tuning=0: A440 reference. librosa's tuning estimate (piptrack) took ~40 % of the descriptor time and a
    # per-track tuning shift would make two recordings of one piece in different tunings look less alike anyway.
    chroma = chroma_stft(power, sr, p.n_fft, step=FRAME_STEP)
    contrast = spectral_contrast(magnitude, sr, p.n_fft)
    shape = spectral_shape(floored, sr, p.n_fft, magnitude)
    centroid, bandwidth, rolloff = shape["centroid"], shape["bandwidth"], shape["rolloff"]
    flatness = shape["flatness"]
    zcr = zero_crossing_rate(y, p.n_fft, hop)
    onset = dsp.onset_strength(mel_db, 2048, hop)  # centred as librosa's default n_fft, whatever the preset
    loudness = dsp.amplitude_to_db(shape["rms"], ref=1.0, amin=1e-5)

    tempo = estimate_tempo(onset, sr, hop, step=TEMPO_STEP)
    # Pulse clarity: how peaked the onset autocorrelation is (steady beat vs. none), in [0, 1].
    ac = dsp.autocorrelate(onset - onset.mean())
    pulse = float(np.max(ac[4:]) / ac[0]) if ac.size > 5 and ac[0] > 0 else 0.0

    parts: list[np.ndarray] = []
    for block in (mfcc, dmfcc[:13]):
        m, s = _mean_std(block)
        parts += [m, s]
    parts += list(_mean_std(chroma))
    parts += list(_mean_std(contrast))
    for block in (centroid / 1000.0, bandwidth / 1000.0, rolloff / 1000.0, np.log10(flatness + 1e-8), zcr,
                  onset, loudness):
        m, s = _mean_std(block)
        parts += [m, s]
    parts.append(np.array([np.log2(max(tempo, 1.0)), pulse]))
    vector = np.concatenate([np.ravel(x) for x in parts]).astype(np.float32)
    if vector.shape[0] != DESCRIPTOR_DIM:  # pragma: no cover - guards the names table against drift
        raise AssertionError(f"descriptor has {vector.shape[0]} values, names table {DESCRIPTOR_DIM}")
    return np.nan_to_num(vector, nan=0.0, posinf=0.0, neginf=0.0)


# Ten descriptor columns standing in for the 10 Spotify audio features of seed 000's "Spfy" baseline (§5.2):
# tempo -> tempo, danceability -> pulse clarity, loudness -> mean loudness, energy -> onset strength and loudness
# spread, acousticness -> spectral flatness, speechiness -> zero-crossing rate, brightness-like (valence has no
# audio equivalent here) -> centroid, rolloff and bandwidth.
SPFY_COLUMNS: tuple[str, ...] = ("tempo_log2", "pulse_clarity", "loudness_db_mean", "loudness_db_std", "onset_mean",
                                 "flatness_mean", "zcr_mean", "centroid_mean", "rolloff_mean", "bandwidth_mean")


def spfy_features(descriptors: np.ndarray) -> np.ndarray:
    """The 10-feature "Spfy"-like vectors ``(n, 10)`` taken from full descriptor vectors ``(n, DESCRIPTOR_DIM)``."""
    cols = [DESCRIPTOR_NAMES.index(name) for name in SPFY_COLUMNS]
    return np.asarray(descriptors, dtype=np.float32)[:, cols]
