"""Mel presets against the seed texts and against librosa, and segmenting."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soundalike.audio import features as F

SR = 22050
THIRTY_S = np.random.default_rng(0).standard_normal(30 * SR).astype(np.float32) * 0.1


@pytest.mark.parametrize("name", sorted(F.PRESETS))
def test_preset_matches_librosa_melspectrogram(name: str) -> None:
    p = F.PRESETS[name]
    y = THIRTY_S[: 5 * SR]
    ours = F.log_mel(y, p)
    ref = librosa.power_to_db(
        librosa.feature.melspectrogram(y=y, sr=p.sr, n_fft=p.n_fft, hop_length=p.hop_length, win_length=p.win_length,
                                       n_mels=p.n_mels),
        ref=1.0, amin=1e-10, top_db=None)
    assert ours.shape == ref.shape == (p.n_mels, 1 + y.size // p.hop_length)
    np.testing.assert_allclose(ours, ref, atol=1e-3)


@pytest.mark.parametrize("name", sorted(F.PRESETS))
@pytest.mark.filterwarnings("ignore:n_fft=.*is too large")  # the reference, on the shortest input
@pytest.mark.parametrize("seconds", [0.01, 0.3, 5.0])  # shorter than one FFT window, a few blocks, many blocks
def test_power_spectrogram_equals_librosa_stft(name: str, seconds: float) -> None:
    p = F.PRESETS[name]
    y = THIRTY_S[: int(seconds * p.sr)]
    ours = F.power_spectrogram(y, p)
    ref = np.abs(librosa.stft(y, n_fft=p.n_fft, hop_length=p.hop_length, win_length=p.win_length)) ** 2
    assert ours.dtype == np.float32 and ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6 * float(ref.max()))


def test_melae_seed_000_section_4() -> None:
    p = F.get_preset("melae")
    assert (p.sr, p.n_fft, p.hop_length, p.n_mels) == (22050, 2048, 512, 128)
    assert F.log_mel(THIRTY_S, p).shape == (128, 1292)
    # 000 §4.2.1: a 1296-frame spectrogram gives 14 patches of 128x128 at stride 0.7.
    assert p.segment_hop == int(0.7 * 128)
    patches = F.segment_preset(np.zeros((128, 1296), np.float32), p)
    assert patches.shape == (14, 128, 128)


def test_stollery_seed_002_section_3() -> None:
    p = F.get_preset("stollery")
    assert p.n_mels == 60 and p.frames_per_second == 50.0
    assert abs(p.win_length / p.sr - 0.040) < 1e-9  # 40 ms windows, 50 % overlap
    spec = F.log_mel(THIRTY_S, p)
    segments = F.segment_preset(spec, p)
    assert segments.shape == (14, 60, 200)  # 14 segments of 4 s overlapping by 2 s per 30 s
    assert p.segment_seconds == 4.0


def test_clothier_seed_003() -> None:
    p = F.get_preset("clothier")
    spec = F.log_mel(THIRTY_S, p)
    assert spec.shape == (128, 1292)  # "128 bins ... 1292 frames per 30 second preview"
    assert F.segment_preset(spec, p).shape[1:] == (128, 256)
    assert 5.5 < p.segment_seconds < 6.5  # "4 segments lasting around 6 seconds"


def test_dieleman_seed_004() -> None:
    p = F.get_preset("dieleman")
    assert F.log_mel(THIRTY_S, p).shape == (128, 599)  # "599 frames and 128 frequency bins"


def test_unknown_preset_lists_known_ones() -> None:
    with pytest.raises(F.ParameterError, match="melae"):
        F.get_preset("nope")


@settings(max_examples=40, deadline=None)
@given(frames=st.integers(1, 700), size=st.integers(1, 200), hop=st.integers(1, 150))
def test_segments_are_the_windows_of_the_spectrogram(frames: int, size: int, hop: int) -> None:
    spec = np.arange(3 * frames, dtype=np.float32).reshape(3, frames)
    seg = F.segment(spec, size, hop)
    assert seg.shape[1:] == (3, size)
    if frames >= size:
        assert seg.shape[0] == 1 + (frames - size) // hop
        for i in (0, seg.shape[0] - 1):
            np.testing.assert_array_equal(seg[i], spec[:, i * hop: i * hop + size])
    else:  # shorter than one window: looped, not padded with silence
        assert seg.shape[0] == 1
        np.testing.assert_array_equal(seg[0][:, :frames], spec)
        looped = min(size, 2 * frames)
        np.testing.assert_array_equal(seg[0][:, frames:looped], spec[:, : looped - frames])


@pytest.mark.parametrize("name", sorted(F.PRESETS))
def test_the_banded_and_sparse_mel_products_equal_the_dense_one(name: str) -> None:
    p = F.PRESETS[name]
    power = F.power_spectrogram(THIRTY_S[: 3 * SR], p)
    assert power.T.flags.c_contiguous  # frame by frame: the banded product
    dense = F.mel_filterbank(p) @ power
    for layout in (power, np.ascontiguousarray(power)):  # banded; bin by bin: the sparse product
        ours = F.mel_power(layout, p)
        assert ours.dtype == np.float32 and ours.shape == dense.shape and ours.flags.c_contiguous
        np.testing.assert_allclose(ours, dense, rtol=1e-5, atol=1e-7 * float(dense.max()))


def test_to_db_equals_librosa_bit_for_bit() -> None:
    power = np.random.default_rng(3).random((128, 700), dtype=np.float32) ** 6
    power[0, :5] = 0.0  # the floor
    for s in (power, power.astype(np.float64)):
        want = librosa.power_to_db(s, ref=1.0, amin=1e-10, top_db=None).astype(np.float32)
        np.testing.assert_array_equal(F.to_db(s), want)


def test_power_is_re_squared_plus_im_squared_bit_for_bit() -> None:
    import scipy.fft

    p = F.PRESETS["melae"]
    y = THIRTY_S[: 3 * SR]
    half = p.n_fft // 2
    x = np.pad(y, (half, half))
    count = 1 + (x.size - p.n_fft) // p.hop_length
    frames = np.lib.stride_tricks.sliding_window_view(x, p.n_fft)[::p.hop_length][:count]
    spectrum = scipy.fft.rfft(frames * F._window(p), axis=-1)
    np.testing.assert_array_equal(F.power_spectrogram(y, p), (spectrum.real**2 + spectrum.imag**2).T)
