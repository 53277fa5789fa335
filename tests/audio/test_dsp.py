"""soundalike.audio.dsp gives librosa's (and scipy.signal's) values, and an analysis no longer imports librosa."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import librosa
import numpy as np
import pytest
import scipy.signal

from soundalike.audio import dsp
from soundalike.audio.features import PRESETS


@pytest.mark.parametrize("n", [1, 2, 7, 344, 512, 882, 2048])
def test_hann_is_scipys_periodic_window(n: int) -> None:
    np.testing.assert_array_equal(dsp.hann(n), scipy.signal.get_window("hann", n, fftbins=True))


def test_pad_center_fft_frequencies_and_frames_are_librosas() -> None:
    np.testing.assert_array_equal(dsp.pad_center(np.arange(5.0), 10), librosa.util.pad_center(np.arange(5.0), size=10))
    np.testing.assert_array_equal(dsp.fft_frequencies(22050, 2048), librosa.fft_frequencies(sr=22050, n_fft=2048))
    for seconds, sr, hop in ((8.0, 22050, 512), (8.0, 16000, 256), (3.3, 44100, 441)):
        assert dsp.time_to_frames(seconds, sr, hop) == int(librosa.time_to_frames(seconds, sr=sr, hop_length=hop))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_mel_filters_are_librosas_for_every_preset(name: str) -> None:
    p = PRESETS[name]
    want = librosa.filters.mel(sr=p.sr, n_fft=p.n_fft, n_mels=p.n_mels, fmin=p.fmin, fmax=p.fmax)
    np.testing.assert_array_equal(dsp.mel_filters(p.sr, p.n_fft, p.n_mels, p.fmin, p.fmax), want)
    np.testing.assert_array_equal(dsp.hz_to_mel(np.array([0.0, 440.0, 1000.0, 8000.0])),
                                  librosa.hz_to_mel(np.array([0.0, 440.0, 1000.0, 8000.0])))
    assert dsp.hz_to_mel(2000.0) == librosa.hz_to_mel(2000.0) and dsp.hz_to_mel(500.0) == librosa.hz_to_mel(500.0)


@pytest.mark.parametrize(("sr", "n_fft"), [(22050, 2048), (22050, 1024), (16000, 512)])
def test_chroma_filters_are_librosas(sr: int, n_fft: int) -> None:
    want = librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=0.0)
    np.testing.assert_array_equal(dsp.chroma_filters(sr, n_fft), want)


def test_normalize_and_decibels_are_librosas() -> None:
    rng = np.random.default_rng(0)
    s = rng.random((12, 50), dtype=np.float32)
    s[:, 3] = 0.0  # an all-zero frame stays as it is
    np.testing.assert_array_equal(dsp.normalize(s, np.inf, -2), librosa.util.normalize(s, norm=np.inf, axis=-2))
    np.testing.assert_array_equal(dsp.normalize(s, 2, 0), librosa.util.normalize(s, norm=2, axis=0))
    power = rng.random((7, 40)) * 10.0 ** rng.uniform(-14, 2, (7, 40))
    np.testing.assert_array_equal(dsp.power_to_db(power), librosa.power_to_db(power))
    rms = (rng.random(300, dtype=np.float32) * 10.0 ** rng.uniform(-7, 0, 300)).astype(np.float32)
    np.testing.assert_array_equal(dsp.amplitude_to_db(rms.copy(), ref=1.0, amin=1e-5),
                                  librosa.amplitude_to_db(rms, ref=1.0, amin=1e-5))


def test_mfcc_onsets_tempo_and_autocorrelation_are_librosas() -> None:
    from soundalike import synth
    from soundalike.audio.descriptors import mean_tempogram
    from soundalike.audio.features import log_mel

    for style in ("techno", "ambient"):
        y = synth.render_track(style, 4, duration=20.0, sr=22050)
        mel_db = log_mel(y, "melae")
        np.testing.assert_array_equal(dsp.mfcc(mel_db, 20), librosa.feature.mfcc(S=mel_db, n_mfcc=20))
        onset = dsp.onset_strength(mel_db, 2048, 512)
        np.testing.assert_array_equal(onset, librosa.onset.onset_strength(S=mel_db, sr=22050, hop_length=512))
        centred = onset - onset.mean()
        np.testing.assert_array_equal(dsp.autocorrelate(centred), librosa.autocorrelate(centred))
        mean = mean_tempogram(onset, 22050, 512)
        want = librosa.feature.tempo(tg=mean[:, None], sr=22050, hop_length=512)
        assert dsp.tempo(mean, 22050, 512) == float(np.atleast_1d(want)[0])
        np.testing.assert_array_equal(dsp.tempo_frequencies(344, 22050, 512),
                                      librosa.tempo_frequencies(344, sr=22050, hop_length=512))


def test_an_analysis_imports_neither_librosa_nor_numba(tmp_path: Path) -> None:
    # a scan worker's, and a command's, first analysis: no librosa import and its numba compilation (~1.2 CPU-s)
    import soundfile as sf

    from soundalike import synth

    path = tmp_path / "t.wav"
    sf.write(path, synth.render_track("techno", 1, duration=8.0, sr=22050), 22050)
    code = textwrap.dedent(f"""
        import sys
        from soundalike.audio.analysis import analyse_file
        from soundalike.library.scan import init_worker_process
        import os
        init_worker_process(os.getppid())
        result = analyse_file({str(path)!r}, ("melae", "musicnn-p4"))
        assert result.descriptor is not None and result.spectrograms["musicnn-p4"].shape[0] == 96
        print(sorted(m for m in ("librosa", "numba", "scipy.signal", "scipy.stats") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
