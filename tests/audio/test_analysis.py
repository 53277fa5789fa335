"""Analysing one file: hashes, tags (with fallbacks), spectrograms and the descriptor."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from helpers import make_signal, write_audio
from soundalike import synth
from soundalike.audio.analysis import (
    BLAKE2B,
    DEFAULT_HASH,
    DEFAULT_WINDOW,
    HASH_BLOCK,
    XXH3,
    analyse_file,
    audio_hash,
    file_hash,
    read_tags,
)
from soundalike.audio.decode import AudioError


def test_audio_hash_survives_retagging_and_file_hash_does_not(tmp_path: Path) -> None:
    y = synth.render_track("jazz", seed=2, duration=4.0)
    path = tmp_path / "a.flac"
    synth.write_track(path, y, 22050, artist="A", album="B", title="C")
    first = analyse_file(path)
    bytes_before = file_hash(path)
    synth.write_track(path, y, 22050, artist="Other", album="Tags", title="Now")
    again = analyse_file(path)
    assert again.audio_hash == first.audio_hash and file_hash(path) != bytes_before
    assert (again.tags.artist, again.tags.album, again.tags.title) == ("Other", "Tags", "Now")
    assert set(again.spectrograms) == {"melae"} and again.spectrograms["melae"].dtype == np.float16
    assert again.descriptor is not None and again.duration == pytest.approx(4.0, abs=0.05)
    assert audio_hash(np.zeros(10, np.float32)) != audio_hash(np.full(10, 0.5, np.float32))


def test_untagged_files_take_their_title_and_album_from_names(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "My Album" / "01 A Song.wav", make_signal(2.0))
    tags = read_tags(path)
    assert (tags.artist, tags.album, tags.title) == ("", "My Album", "01 A Song")
    extra = analyse_file(path, presets=("melae", "stollery"))
    assert extra.spectrograms["stollery"].shape[0] == 60  # seed 002's 60 mel bands


def test_unusable_audio_raises_a_typed_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ogg"
    bad.write_bytes(b"OggS not really")
    with pytest.raises(AudioError) as caught:
        analyse_file(bad)
    assert str(bad) in str(caught.value)


def _tone(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(22050 * seconds)) / 22050
    return (0.3 * np.sin(2 * np.pi * 440 * t * (1 + 0.1 * np.sin(t))) + 0.05 * rng.standard_normal(t.size)
            ).astype(np.float32)


@pytest.mark.parametrize("seconds", [95.0, 41.3, 120.0])
def test_a_few_patches_equal_those_of_the_whole_spectrogram(seconds: float) -> None:
    from soundalike.audio.analysis import at_rate, patch_log_mel
    from soundalike.audio.features import get_preset, log_mel, segment
    from soundalike.models.base import spread_segments

    y = _tone(seconds)
    preset = get_preset("musicnn")
    whole = log_mel(at_rate(y, 22050, preset.sr), preset)
    assert round(y.size * preset.sr / 22050) == at_rate(y, 22050, preset.sr).size  # the length patch_log_mel assumes
    want = spread_segments(segment(whole, 187, 187), 4)
    got = patch_log_mel(y, 22050, "musicnn-p4")
    assert got.shape == (96, 4 * 187)  # only what the model reads
    # dB; float32 rounding only (up to ~0.015 dB in bins 30-90 dB down on other signals; a margin 4x wider: the same)
    np.testing.assert_allclose(segment(got, 187, 187), want, atol=2e-2)


def test_short_tracks_keep_their_whole_spectrogram() -> None:
    from soundalike.audio.analysis import at_rate, patch_log_mel
    from soundalike.audio.features import get_preset, log_mel

    y = _tone(10.0)  # three 3 s patches: every one is read
    whole = log_mel(at_rate(y, 22050, 16000), get_preset("musicnn"))
    np.testing.assert_array_equal(patch_log_mel(y, 22050, "musicnn-p4"), whole)
    np.testing.assert_array_equal(patch_log_mel(y, 22050, "musicnn"), whole)


def test_feature_store_keys_name_their_preset_and_patches() -> None:
    from soundalike.audio.features import ParameterError, patches_key, split_key

    assert patches_key("musicnn", 4) == "musicnn-p4" and patches_key("musicnn", 0) == "musicnn"
    assert split_key("musicnn-p4")[0].name == "musicnn" and split_key("musicnn-p4")[1] == 4
    assert split_key("melae")[1] == 0
    with pytest.raises(ParameterError):
        split_key("nothing-p4")


def test_audio_hash_is_the_hash_libraries_store() -> None:
    """Stored audio hashes find moved files: the quantisation (round half to even, clipped to 16 bits) and each
    algorithm's digest must never change, whatever the code computing them."""
    import xxhash

    y = np.concatenate([np.linspace(-1.5, 1.5, 20001, dtype=np.float32),
                        np.array([0.5, 1.5, -2.5], np.float32) / np.float32(32767)])  # beyond full scale; ties
    expected = np.clip(np.round(y * 32767.0), -32768, 32767).astype("<i2")
    assert audio_hash(y, BLAKE2B) == hashlib.blake2b(expected.tobytes(), digest_size=16).hexdigest()
    assert audio_hash(y, BLAKE2B) == "55fc1a27d3756328d078eb8cf4b72667"  # as every version before computed it
    assert audio_hash(y, XXH3) == xxhash.xxh3_128_hexdigest(expected.tobytes())
    assert audio_hash(y, XXH3) == "d39f15f3d30c48d9ea36eeb1f8f95336" == audio_hash(y)  # new libraries' since 2026-12
    with pytest.raises(ValueError, match="unknown hash"):
        audio_hash(y, "md5")
    long = np.tile(y, 11)  # several hash blocks and a part of one: one digest of all the samples
    assert long.size > 3 * HASH_BLOCK
    expected = np.clip(np.round(long * 32767.0), -32768, 32767).astype("<i2")
    assert audio_hash(long) == xxhash.xxh3_128_hexdigest(expected.tobytes())
    assert audio_hash(long, BLAKE2B) == hashlib.blake2b(expected.tobytes(), digest_size=16).hexdigest()
    assert audio_hash(np.zeros(0, np.float32)) == xxhash.xxh3_128_hexdigest(b"")
    # any shape in C order, each dtype's own precision (float16 products overflow to the clip), as before the blocks
    assert audio_hash(long.reshape(11, -1)) == audio_hash(long)
    half = np.linspace(-1.5, 1.5, 1001, dtype=np.float16)
    assert audio_hash(half, BLAKE2B) == hashlib.blake2b(
        np.clip(np.rint(half * 32767.0), -32768, 32767).astype("<i2").tobytes(), digest_size=16).hexdigest()
    assert audio_hash(half) != audio_hash(half.astype(np.float32))


def test_file_hash_reads_every_byte_in_blocks(tmp_path: Path) -> None:
    """Both algorithms hash the whole file, however it falls into blocks (an empty file too)."""
    import xxhash

    data = np.random.default_rng(3).integers(0, 256, 3 * 1024 + 17, dtype=np.uint8).tobytes()
    path = tmp_path / "bytes.bin"
    path.write_bytes(data)
    for block in (1024, 1 << 20):
        assert file_hash(path, BLAKE2B, block) == hashlib.blake2b(data, digest_size=16).hexdigest()
        assert file_hash(path, XXH3, block) == xxhash.xxh3_128_hexdigest(data)
    path.write_bytes(b"")
    assert file_hash(path) == xxhash.xxh3_128_hexdigest(b"") and DEFAULT_HASH == DEFAULT_WINDOW.hashes == XXH3
