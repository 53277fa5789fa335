"""Decoding: every format, resampling, downmix, excerpts, and the typed errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers import SR, make_signal, write_audio
from soundalike import synth
from soundalike.audio import decode as audio
from soundalike.audio.analysis import analyse_file


@pytest.mark.parametrize("ext", [".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".m4a"])
def test_every_format_decodes_to_mono_float32_at_target_rate(tmp_path: Path, ext: str) -> None:
    path = write_audio(tmp_path / f"x{ext}", make_signal(3.0, 440.0, channels=2))
    y = audio.load(path, sr=16000)
    assert y.dtype == np.float32 and y.ndim == 1
    # Lossy codecs add encoder delay/padding; the length stays within 0.1 s of 3 s.
    assert abs(y.size / 16000 - 3.0) < 0.1
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * 16000 / y.size - 440.0) < 5.0
    info = audio.probe(path)
    assert abs(info.duration - 3.0) < 0.1


def test_resampling_keeps_the_pitch_and_downmix_averages_channels(tmp_path: Path) -> None:
    stereo = make_signal(2.0, 1000.0, sr=44100, channels=2, noise=0.0)
    path = write_audio(tmp_path / "s.wav", stereo, sr=44100)
    y = audio.load(path, sr=SR)
    assert y.size == 2 * SR
    ref = 0.75 * make_signal(2.0, 1000.0, sr=SR, noise=0.0)
    assert np.abs(y[1000:-1000] - ref[1000:-1000]).max() < 0.01


@pytest.mark.parametrize("ext", [".flac", ".m4a"])
def test_excerpt_matches_the_slice_of_the_whole(tmp_path: Path, ext: str) -> None:
    path = write_audio(tmp_path / f"e{ext}", make_signal(6.0, 300.0, seed=3))
    whole = audio.load(path)
    part = audio.load(path, offset=2.0, duration=1.5)
    assert abs(part.size - int(1.5 * SR)) <= 2
    start = 2 * SR
    if ext == ".flac":
        np.testing.assert_allclose(part[:1000], whole[start:start + 1000], atol=1e-6)
    else:  # AAC has encoder delay; compare energy instead of samples
        assert abs(np.std(part) - np.std(whole[start:start + part.size])) < 0.02


def test_two_hour_file_is_read_as_bounded_excerpts(tmp_path: Path) -> None:
    # A real 2-hour WAV whose data is sparse on disk: a tone every 10 minutes, digital zeros elsewhere.
    path = tmp_path / "long.wav"
    hours = 2.0
    n = int(hours * 3600 * 8000)
    with sf.SoundFile(path, "w", samplerate=8000, channels=1, subtype="PCM_16") as f:
        f.write(np.zeros(1, np.int16))
    with open(path, "r+b") as fh:  # grow the data chunk to 2 h without writing the bytes (sparse file)
        fh.truncate(44 + 2 * n)
        fh.seek(4)
        fh.write((36 + 2 * n).to_bytes(4, "little"))
        fh.seek(40)
        fh.write((2 * n).to_bytes(4, "little"))
        tone = (make_signal(60.0, 500.0, sr=8000) * 20000).astype("<i2").tobytes()
        for minute in range(0, 120, 10):
            fh.seek(44 + 2 * minute * 60 * 8000)
            fh.write(tone)
    assert abs(audio.probe(path).duration - 7200) < 1
    import tracemalloc

    tracemalloc.start()
    y = audio.load_excerpts(path, sr=8000, max_duration=600.0, excerpts=10)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert y.size == 600 * 8000
    assert peak < 120e6  # the whole file decoded would be 2 h x 8 kHz x float32 = 230 MB


def test_errors_name_the_file_and_pickle(tmp_path: Path) -> None:
    import pickle

    err = audio.TooShortError(tmp_path / "a.wav", "too short (0.50 s < 1 s)")
    assert str(err) == f"{tmp_path / 'a.wav'}: too short (0.50 s < 1 s)"
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is audio.TooShortError and again.reason == err.reason and again.path == err.path


def _ogg_crc(page: bytes) -> int:
    """Ogg's page checksum (CRC-32, polynomial 0x04c11db7, no reflection, over the page with its CRC zeroed)."""
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def test_an_ogg_stream_without_end_of_stream_flag_is_whole(tmp_path: Path) -> None:
    """Some encoders never set the end-of-stream flag (Debian's trackballs music): such files are whole audio,
    unlike a stream cut mid-page."""
    path = write_audio(tmp_path / "no-eos.ogg", make_signal(4.0, 330.0))
    data = bytearray(path.read_bytes())
    at = data.rfind(b"OggS")
    data[at + 5] &= ~0x04  # clear the flag
    data[at + 22:at + 26] = b"\0\0\0\0"
    data[at + 22:at + 26] = _ogg_crc(bytes(data[at:])).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    y = audio.load(path, sr=SR)
    assert abs(y.size / SR - 4.0) < 0.1


@pytest.mark.parametrize("ext,rate", [(".ogg", 44100), (".opus", 48000)])
def test_ffmpeg_decodes_ogg_as_libsndfile_does(tmp_path: Path, ext: str, rate: int) -> None:
    """Ogg Vorbis / Opus go to ffmpeg's decoders (cheaper; docs/performance.md): the same samples as libsndfile's
    within float rounding, whole and in excerpts, from one opening of the file."""
    path = write_audio(tmp_path / f"long{ext}", make_signal(40.0, 330.0, sr=rate, seed=5, channels=2), sr=rate)
    for window in ((60.0, 1), (16.0, 4)):  # the whole file; four excerpts of 4 s
        old, old_info = audio.load_window(path, SR, max_duration=window[0], excerpts=window[1],
                                          decoder=audio.LIBSNDFILE)
        new, new_info = audio.load_window(path, SR, max_duration=window[0], excerpts=window[1])
        assert (old_info.backend, new_info.backend) == ("soundfile", "av")
        assert new.size == old.size and abs(new.size / SR - min(window[0], 40.0)) < 0.1
        np.testing.assert_allclose(new, old, atol=1e-5)
        assert new_info.channels == 2 and abs(new_info.duration - old_info.duration) < 0.01
    np.testing.assert_allclose(audio.load(path, offset=10.0, duration=2.0),
                               audio.load(path, offset=10.0, duration=2.0, decoder=audio.LIBSNDFILE), atol=1e-5)
    with pytest.raises(ValueError, match="unknown decoder"):
        audio.load(path, decoder="gstreamer")


def test_the_short_path_for_stereo_frames_keeps_every_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    """Steady runs of stereo Vorbis frames take a short path: the very samples of the general one, in spans that
    start and end anywhere — also where ffmpeg's timestamps jump around short blocks (drums), which the general
    path follows (audio hashes are taken from these samples)."""
    import av
    import soxr

    y = soxr.resample(synth.render_track("rock", seed=1, duration=30.0), 22050, 44100)  # libvorbis's 44.1 kHz blocks
    path = write_audio(tmp_path / "drums.ogg", np.stack([y, y[::-1]], axis=1), sr=44100)
    with av.open(str(path)) as container:
        stamps = [(f.pts, f.samples) for f in container.decode(container.streams.audio[0])]
    ahead = [(pts, n) for (at, m), (pts, n) in zip(stamps, stamps[1:], strict=False) if pts > at + m]
    assert len(ahead) > 20  # frames stamped ahead of their place
    # spans that start anywhere, and on the last sample of a frame stamped ahead (the frames after it are stamped
    # before the span's start again: the general path skips them)
    spans = [(0.0, 30.0), *((float(s), 1.7) for s in np.linspace(0.05, 27.0, 20)),
             *(((pts + n - 1) / 44100, 0.5) for pts, n in ahead[:20])]
    fast = audio._ffmpeg_spans(str(path), 16000, lambda _: spans)
    monkeypatch.setattr(audio, "SHORT_PATH", False)
    slow = audio._ffmpeg_spans(str(path), 16000, lambda _: spans)
    assert fast is not None and slow is not None and len(fast) == len(slow) == 41
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_ffmpeg_mixes_every_layout_as_libsndfile_does(tmp_path: Path, channels: int) -> None:
    """ffmpeg's frames are mixed down as they come, planar (Vorbis, Opus) or packed (float WAV): the samples of
    libsndfile's path, whole and in excerpts that start and end inside frames."""
    x = make_signal(8.0, 330.0, sr=44100, seed=channels)
    y = np.stack([x * (1 - c / 4) for c in range(channels)], axis=1)
    ogg = write_audio(tmp_path / "x.ogg", y, sr=44100)
    wav = tmp_path / "x.wav"
    sf.write(wav, y, 44100, subtype="FLOAT")
    for window in ((60.0, 1), (6.0, 3)):
        ours, info = audio.load_window(ogg, SR, max_duration=window[0], excerpts=window[1])
        theirs, _ = audio.load_window(ogg, SR, max_duration=window[0], excerpts=window[1], decoder=audio.LIBSNDFILE)
        assert info.backend == "av" and info.channels == channels and ours.size == theirs.size
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
    packed = audio._ffmpeg_spans(str(wav), SR, lambda _: [(0.0, None), (1.3, 2.0)])  # ffmpeg's float WAV: packed
    assert packed is not None
    np.testing.assert_array_equal(packed[0], audio.load(wav, SR, decoder=audio.LIBSNDFILE))
    np.testing.assert_array_equal(packed[1], audio.load(wav, SR, offset=1.3, duration=2.0,
                                                        decoder=audio.LIBSNDFILE))


def test_chained_ogg_streams_decode_within_the_window(tmp_path: Path) -> None:
    """Ogg files joined end to end (a chained stream, as recorders and radio dumps write them), whose headers give
    the first link's length or none: ffmpeg decodes a chain of stereo links whole; a link with more channels stops
    ffmpeg and libsndfile decodes the first link — whose length it cannot tell (SF_COUNT_MAX frames, once taken as
    a duration of millions of years that made the excerpts' seeks overflow). Either way no more than the window."""
    x = make_signal(3.0, 330.0, sr=44100)
    links = {name: write_audio(tmp_path / f"{name}.ogg", np.stack([x * g for g in gains], axis=1), sr=44100)
             for name, gains in (("a", (1.0, 0.5)), ("b", (0.3, 1.0)), ("c", (1.0, 0.5, 0.25)))}
    stereo, more = tmp_path / "stereo.ogg", tmp_path / "more-channels.ogg"
    stereo.write_bytes(links["a"].read_bytes() + links["b"].read_bytes())
    more.write_bytes(links["a"].read_bytes() + links["c"].read_bytes())
    assert audio.probe(stereo).duration == pytest.approx(3.0, abs=0.05)  # the first link's header
    assert np.isnan(audio.probe(more).duration) and audio.probe(more).channels == 2
    for path, whole in ((stereo, 6.0), (more, 3.0)):
        y, _ = audio.load_window(path, SR)
        assert abs(y.size / SR - whole) < 0.05 and np.isfinite(y).all()
        short, _ = audio.load_window(path, SR, max_duration=2.5, excerpts=1)  # longer than its header says
        assert abs(short.size / SR - 2.5) < 0.01
        np.testing.assert_allclose(short[: SR * 2], y[: SR * 2], atol=1e-6)  # the resampler sees less audio
        analysis = analyse_file(path)
        assert analysis.analysed_seconds == pytest.approx(y.size / SR) and np.isfinite(analysis.duration)
    tail, _ = audio.load_window(stereo, SR, max_duration=4.5, excerpts=1)
    assert abs(tail.size / SR - 4.5) < 0.01  # past its header's 3 s, but not past the window


def test_what_ffmpeg_cannot_open_libsndfile_still_decodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Some real Ogg files open in libsndfile but not in ffmpeg (three of the development set's): ffmpeg's failure
    is never the file's error."""
    import av

    path = write_audio(tmp_path / "x.ogg", make_signal(5.0, channels=2), sr=44100)
    expected = audio.load(path, decoder=audio.LIBSNDFILE)

    def refuse(*args: object, **kwargs: object) -> None:
        raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")

    monkeypatch.setattr(av, "open", refuse)
    y, info = audio.load_window(path, SR)
    assert info.backend == "soundfile"
    np.testing.assert_array_equal(y, expected)
