"""Analysing one file: hashes, tags (with fallbacks), spectrograms and the descriptor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import make_signal, write_audio
from soundalike import synth
from soundalike.audio.analysis import analyse_file, audio_hash, file_hash, read_tags
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
