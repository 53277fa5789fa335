"""The handcrafted descriptor: 120 named values, shared work with indexing, and the "Spfy" columns."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from helpers import SR, make_signal
from soundalike import synth
from soundalike.audio.descriptors import (
    DESCRIPTOR_DIM,
    DESCRIPTOR_NAMES,
    SPFY_COLUMNS,
    chroma_stft,
    describe,
    estimate_tempo,
    mean_tempogram,
    rolloff_bins,
    spectral_contrast,
    spectral_shape,
    spfy_features,
    zero_crossing_rate,
)
from soundalike.audio.features import get_preset, log_mel, power_spectrogram


def test_names_values_and_shared_work_agree() -> None:
    y = make_signal(5.0, 330.0)
    v = describe(y)
    assert v.dtype == np.float32 and v.shape == (DESCRIPTOR_DIM,) == (len(DESCRIPTOR_NAMES),) == (120,)
    assert np.isfinite(v).all() and len(set(DESCRIPTOR_NAMES)) == DESCRIPTOR_DIM
    preset = get_preset("melae")
    power = power_spectrogram(y, preset)
    np.testing.assert_allclose(describe(y, preset, power=power, mel_db=log_mel(y, preset, power=power)), v, rtol=1e-5)


def test_spectral_statistics_read_every_other_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    y = synth.render_track("jazz", seed=2, duration=20.0, sr=SR)
    preset = get_preset("melae")
    power = power_spectrogram(y, preset)
    v2 = describe(y, preset, power=power)
    monkeypatch.setattr("soundalike.audio.descriptors.FRAME_STEP", 1)  # version 1: every frame
    v1 = describe(y, preset, power=power)
    spectral = [i for i, n in enumerate(DESCRIPTOR_NAMES)
                if n.split("_")[0] in ("chroma", "centroid", "bandwidth", "rolloff", "flatness", "loudness")
                or n.startswith("contrast")]
    others = [i for i in range(DESCRIPTOR_DIM) if i not in spectral]
    assert len(spectral) == 24 + 14 + 10
    np.testing.assert_array_equal(v2[others], v1[others])  # MFCC, onsets, tempo, zero crossings: every frame
    assert not np.array_equal(v2[spectral], v1[spectral])  # half the frames: close, not the same
    np.testing.assert_allclose(v2[spectral], v1[spectral], rtol=0.05, atol=0.02)


def test_columns_mean_what_their_names_say() -> None:
    quiet, loud = 0.05 * make_signal(5.0, 330.0, noise=0.0), make_signal(5.0, 330.0, noise=0.0)
    low, high = make_signal(5.0, 110.0, noise=0.0), make_signal(5.0, 2500.0, noise=0.0)
    col = DESCRIPTOR_NAMES.index
    assert describe(loud)[col("loudness_db_mean")] > describe(quiet)[col("loudness_db_mean")] + 20
    assert describe(high)[col("centroid_mean")] > describe(low)[col("centroid_mean")]
    fast = synth.render_track("techno", seed=1, duration=10.0, sr=SR)
    assert 70 <= 2 ** describe(fast)[col("tempo_log2")] <= 200  # a beat, in BPM


def test_spfy_features_are_the_ten_named_columns() -> None:
    rows = np.arange(2 * DESCRIPTOR_DIM, dtype=np.float32).reshape(2, DESCRIPTOR_DIM)
    picked = spfy_features(rows)
    assert picked.shape == (2, 10)
    np.testing.assert_array_equal(picked[0], [DESCRIPTOR_NAMES.index(c) for c in SPFY_COLUMNS])


def test_spectral_shape_equals_librosa() -> None:
    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(22050 * 3) + np.sin(np.arange(22050 * 3) * 0.2)).astype(np.float32)
    magnitude = np.abs(librosa.stft(y, n_fft=2048, hop_length=512))
    magnitude = np.maximum(magnitude, magnitude.max() * 1e-3)  # describe's floor
    ours = spectral_shape(magnitude**2, 22050, 2048)
    theirs = {"centroid": librosa.feature.spectral_centroid(S=magnitude, sr=22050, n_fft=2048),
              "bandwidth": librosa.feature.spectral_bandwidth(S=magnitude, sr=22050, n_fft=2048),
              "rolloff": librosa.feature.spectral_rolloff(S=magnitude, sr=22050, n_fft=2048),
              "flatness": librosa.feature.spectral_flatness(S=magnitude),
              "rms": librosa.feature.rms(S=magnitude, frame_length=2048)}
    for name, expected in theirs.items():
        np.testing.assert_allclose(ours[name], expected[0], rtol=1e-5, err_msg=name)


def test_zero_crossing_rate_equals_librosa() -> None:
    rng = np.random.default_rng(1)
    signals = [rng.standard_normal(22050 * 3).astype(np.float32), np.sin(np.arange(40000) * 0.01).astype(np.float32),
               np.zeros(30000, np.float32),
               np.concatenate([np.full(3000, -0.0), np.full(3000, 1e-12), np.full(3000, -1.0)]).astype(np.float32),
               rng.standard_normal(512 * 40).astype(np.float32),  # the last frame ends on the padded signal's end
               rng.standard_normal(100).astype(np.float32)]  # shorter than a frame
    for y in signals:
        for length, hop in ((2048, 512), (2048, 300), (1024, 1024)):  # hop dividing the frame length, or not
            expected = librosa.feature.zero_crossing_rate(y, frame_length=length, hop_length=hop)[0]
            np.testing.assert_array_equal(zero_crossing_rate(y, length, hop), expected)


def test_spectral_shape_in_blocks_equals_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    power = (rng.random((1025, 700), dtype=np.float32) + 1e-3) ** 2
    whole = spectral_shape(power, 22050, 2048)
    monkeypatch.setattr("soundalike.audio.descriptors.SHAPE_BLOCK", 64)  # 11 blocks, the last one short
    blocked = spectral_shape(power, 22050, 2048, np.sqrt(power))
    for name, expected in whole.items():
        assert blocked[name].shape == expected.shape
        np.testing.assert_allclose(blocked[name], expected, rtol=1e-5, err_msg=name)  # float32 sums


def test_tempo_in_blocks_equals_librosa() -> None:
    preset = get_preset("melae")
    for i, style in enumerate(("techno", "reggae", "classical", "chiptune")):
        y = synth.render_track(style, i, duration=40.0, sr=SR)
        onset = librosa.onset.onset_strength(S=log_mel(y, preset), sr=SR, hop_length=512)
        expected = float(librosa.feature.tempo(onset_envelope=onset, sr=SR, hop_length=512)[0])
        for block in (100, 4096):  # many blocks (the last one short), and one
            assert estimate_tempo(onset, SR, 512, block=block) == expected, (style, block)


def test_tempo_from_every_nth_tempogram_column() -> None:
    preset = get_preset("melae")
    for i, style in enumerate(("techno", "reggae", "chiptune")):
        y = synth.render_track(style, i, duration=40.0, sr=SR)
        onset = librosa.onset.onset_strength(S=log_mel(y, preset), sr=SR, hop_length=512)
        win = int(librosa.time_to_frames(8.0, sr=SR, hop_length=512))  # feature.tempo's ac_size
        tempogram = librosa.feature.tempogram(onset_envelope=onset, sr=SR, hop_length=512, win_length=win)
        every = float(librosa.feature.tempo(tg=tempogram.mean(axis=1, keepdims=True), sr=SR, hop_length=512)[0])
        for step in (3, 8):
            picked = tempogram[:, ::step].mean(axis=1)
            for block in (100, 4096):  # blocks that are not a multiple of the step (the last one short), and one
                ours = mean_tempogram(onset, SR, 512, block=block, step=step)
                np.testing.assert_allclose(ours, picked, atol=1e-6, rtol=0, err_msg=f"{style} {step} {block}")
            assert estimate_tempo(onset, SR, 512, step=step) == every, (style, step)  # skipped columns: same tempo


@pytest.mark.parametrize("block", [2048, 100])  # one block; many, the last one short
def test_spectral_contrast_equals_librosa(block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("soundalike.audio.descriptors.SHAPE_BLOCK", block)
    y = synth.render_track("jazz", 3, duration=12.0, sr=SR)
    magnitude = np.abs(librosa.stft(y, n_fft=2048, hop_length=512))
    magnitude = np.maximum(magnitude, magnitude.max() * 1e-3)  # describe's floor
    expected = librosa.feature.spectral_contrast(S=magnitude, sr=SR, n_fft=2048, hop_length=512)
    ours = spectral_contrast(magnitude, SR, 2048)
    assert ours.shape == expected.shape == (7, magnitude.shape[1])
    np.testing.assert_allclose(ours, expected, atol=1e-4)


def test_rolloff_bins_are_those_of_an_exact_running_sum() -> None:
    rng = np.random.default_rng(4)
    tilt = np.linspace(1, 0.01, 1025, dtype=np.float32)[:, None]
    magnitude = (rng.random((1025, 3000), dtype=np.float32) ** 4) * tilt
    magnitude[:, 0] = 0.0  # silence: bin 0, as librosa
    magnitude[:1000, 1] = 0.0  # everything in the last, short block
    exact = np.cumsum(magnitude.astype(np.float64), axis=0)
    want = np.argmax(exact >= 0.85 * exact[-1], axis=0)
    np.testing.assert_array_equal(rolloff_bins(magnitude, 0.85), want)
    # librosa's float32 running sum agrees but for a bin in rare frames
    theirs = np.argmax(np.cumsum(magnitude, axis=0) >= 0.85 * np.cumsum(magnitude, axis=0)[-1], axis=0)
    assert np.abs(theirs - want).max() <= 1 and (theirs != want).mean() < 0.005
    assert rolloff_bins(magnitude[:, :0], 0.85).shape == (0,)


def test_chroma_equals_librosa() -> None:
    y = synth.render_track("jazz", 4, duration=8.0, sr=SR)
    power = power_spectrogram(y, get_preset("melae"))
    for spectrum in (power, power[:, ::2], np.zeros((1025, 5), np.float32)):  # every frame, every other, silence
        expected = librosa.feature.chroma_stft(S=spectrum, sr=SR, n_fft=2048, hop_length=512, tuning=0.0)
        np.testing.assert_array_equal(chroma_stft(spectrum, SR, 2048), expected)
    # every other frame of the whole spectrogram (as describe takes it), laid out frame by frame (as
    # power_spectrogram makes it) or bin by bin: the same chroma
    for layout in (power, np.ascontiguousarray(power)):
        np.testing.assert_allclose(chroma_stft(layout, SR, 2048, step=2), chroma_stft(power[:, ::2], SR, 2048),
                                   rtol=1e-5, atol=1e-7)
        assert chroma_stft(layout, SR, 2048, step=2).shape == (12, power[:, ::2].shape[1])
