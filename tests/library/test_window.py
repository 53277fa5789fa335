"""How much of each track a library analyses: its window, set at the first scan and kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import run_cli
from soundalike import synth
from soundalike.audio import decode as audio
from soundalike.audio.analysis import BLAKE2B, DEFAULT_HASH, DEFAULT_WINDOW, LEGACY_WINDOW, XXH3, Window, analyse_file
from soundalike.library.catalog import CatalogError, Library
from soundalike.library.scan import WINDOW_KEY, library_window, scan


@pytest.fixture(scope="module")
def long_track(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 40 s track (longer than the 30 s window below)."""
    path = tmp_path_factory.mktemp("window") / "music" / "long.wav"
    path.parent.mkdir()
    synth.write_track(path, synth.render_track("ambient", 7, 40.0), 22050, artist="a", album="b", title="long")
    return path


def _analysed(lib: Library) -> float:
    return float(lib.conn.execute("SELECT analysed_seconds FROM tracks").fetchone()[0])


def test_windows_from_seconds() -> None:
    assert Window.of_seconds(105) == DEFAULT_WINDOW == Window(105.0, 7)
    assert Window.of_seconds(120) == Window(120.0, 8)
    assert Window.of_seconds(0) == Window.of_seconds(600) == LEGACY_WINDOW
    assert Window.of_seconds(30) == Window(30.0, 2)
    with pytest.raises(ValueError, match="at least 15"):
        Window.of_seconds(5)


def test_a_library_keeps_the_window_of_its_first_scan(long_track: Path, tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        scan(lib, [long_track.parent], window=Window.of_seconds(30), isolate=False)
        assert _analysed(lib) == pytest.approx(30.0, abs=0.1)  # two 15 s excerpts of 40 s
        assert json.loads(lib.conn.execute("SELECT value FROM meta WHERE key=?", (WINDOW_KEY,)).fetchone()[0]) == \
            {"seconds": 30.0, "excerpts": 2, "decoder": audio.DEFAULT_DECODER, "hash": DEFAULT_HASH}
        assert library_window(lib) == Window(30.0, 2)
        assert scan(lib, [long_track.parent], isolate=False).unchanged == 1  # no window given: the library's
        with pytest.raises(CatalogError, match="analyses 30 s of each track"):
            scan(lib, [long_track.parent], window=DEFAULT_WINDOW, isolate=False)
    # the same file analysed whole (a cold-start query of another library) is a different, longer analysis
    assert analyse_file(long_track, window=LEGACY_WINDOW).analysed_seconds == pytest.approx(40.0, abs=0.1)


def test_libraries_from_before_windows_analyse_whole_tracks(long_track: Path, tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        scan(lib, [long_track.parent], window=LEGACY_WINDOW, isolate=False)
        lib.conn.execute("DELETE FROM meta WHERE key=?", (WINDOW_KEY,))  # as a library indexed before
        lib.conn.commit()
        assert library_window(lib) == LEGACY_WINDOW
        assert library_window(lib).decoder == audio.LIBSNDFILE  # and libsndfile's samples, as then
        assert library_window(lib).hashes == BLAKE2B  # and BLAKE2b's digests
        assert _analysed(lib) == pytest.approx(40.0, abs=0.1)
    with Library.open(tmp_path / "empty") as lib:
        assert library_window(lib) == DEFAULT_WINDOW  # a new library: the default
        assert library_window(lib).decoder == audio.DEFAULT_DECODER == audio.FFMPEG_OGG
        assert library_window(lib).hashes == DEFAULT_HASH == XXH3


def test_index_option(long_track: Path, tmp_path: Path) -> None:
    code, _, err = run_cli("index", str(long_track.parent), "--library", str(tmp_path / "lib"), "--model",
                           "descriptor", "--analyse-seconds", "5")
    assert code == 2 and "--analyse-seconds: analysing 5 s per track is too little" in err
    code, _, err = run_cli("index", str(long_track.parent), "--library", str(tmp_path / "lib"), "--model",
                           "descriptor", "--analyse-seconds", "0", "--jobs", "1")
    assert code == 0, err
    code, _, err = run_cli("index", str(long_track.parent), "--library", str(tmp_path / "lib"), "--model",
                           "descriptor", "--analyse-seconds", "30")
    assert code == 2 and "analyses whole tracks (up to 10 min) of each track" in err and "new --library" in err


def test_a_library_keeps_the_decoder_of_its_first_scan(tmp_path: Path) -> None:
    """A library indexed before ffmpeg decoded Ogg files keeps libsndfile's samples: audio hashes come from them, so
    a re-tagged file must keep its track (and its history) rather than become a new one."""
    import mutagen

    from helpers import make_signal, write_audio

    ogg = write_audio(tmp_path / "music" / "a.ogg", make_signal(20.0, channels=2), sr=44100)
    old = DEFAULT_WINDOW.decoded_by(audio.LIBSNDFILE).hashed_by(BLAKE2B)  # as libraries were then
    samples = DEFAULT_WINDOW.hashed_by(BLAKE2B)
    assert analyse_file(ogg, window=samples).audio_hash != analyse_file(ogg, window=old).audio_hash  # the decoders'
    # samples differ
    with Library.open(tmp_path / "lib") as lib:
        scan(lib, [ogg.parent], window=old, isolate=False)
        lib.set_meta(WINDOW_KEY, {"seconds": 120.0, "excerpts": 8})  # as recorded before decoders were
        assert library_window(lib).decoder == audio.LIBSNDFILE
        (before,) = lib.conn.execute("SELECT id FROM tracks").fetchall()
        tagged = mutagen.File(ogg, easy=True)
        tagged["title"] = "re-tagged"
        tagged.save()
        assert scan(lib, [ogg.parent], isolate=False).linked == 1  # the same audio: its track, new tags
        assert lib.conn.execute("SELECT id, title FROM tracks").fetchall() == [(before[0], "re-tagged")]


def test_a_library_keeps_the_hashes_of_its_first_scan(tmp_path: Path) -> None:
    """A library indexed before XXH3 keeps BLAKE2b: its stored hashes are how a re-tagged file keeps its track and
    how a copy of known bytes is linked without decoding."""
    import shutil

    import mutagen

    from helpers import make_signal, write_audio

    ogg = write_audio(tmp_path / "music" / "a.ogg", make_signal(20.0, channels=2), sr=44100)
    old = DEFAULT_WINDOW.hashed_by(BLAKE2B)
    assert analyse_file(ogg).audio_hash != analyse_file(ogg, window=old).audio_hash
    with Library.open(tmp_path / "lib") as lib:
        scan(lib, [ogg.parent], window=old, isolate=False)
        lib.set_meta(WINDOW_KEY, {"seconds": 105.0, "excerpts": 7, "decoder": audio.FFMPEG_OGG})  # as recorded then
        assert library_window(lib).hashes == BLAKE2B
        (before,) = lib.conn.execute("SELECT id FROM tracks").fetchall()
        shutil.copy(ogg, tmp_path / "music" / "copy.ogg")
        tagged = mutagen.File(ogg, easy=True)
        tagged["title"] = "re-tagged"
        tagged.save()
        assert scan(lib, [ogg.parent], isolate=False).linked == 2  # the copy by its bytes, the original by its audio
        assert lib.conn.execute("SELECT id, title FROM tracks").fetchall() == [(before[0], "re-tagged")]
    with Library.open(tmp_path / "new") as lib:  # a new library: XXH3, recorded
        scan(lib, [ogg.parent], isolate=False)
        assert library_window(lib).hashes == XXH3
        assert json.loads(lib.conn.execute("SELECT value FROM meta WHERE key=?", (WINDOW_KEY,)).fetchone()[0])[
            "hash"] == XXH3
        assert lib.conn.execute("SELECT audio_hash FROM tracks").fetchone()[0] == analyse_file(ogg).audio_hash
    with Library.open(tmp_path / "future") as lib:  # an algorithm this version does not know: said, not guessed
        scan(lib, [ogg.parent], isolate=False)
        lib.set_meta(WINDOW_KEY, {"seconds": 105.0, "excerpts": 7, "decoder": audio.FFMPEG_OGG, "hash": "xxh4"})
        with pytest.raises(CatalogError, match="hashes .xxh4., which this soundalike does not know"):
            scan(lib, [ogg.parent], isolate=False)
