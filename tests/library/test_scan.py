"""Catalogue and scans: incremental, moved/renamed/duplicate files, deletions, parallel jobs, kill -9 resume."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from helpers import make_signal, write_audio
from soundalike.library.catalog import CatalogError, Library
from soundalike.library.scan import scan


def test_first_scan_analyses_everything_and_second_nothing(tmp_path: Path, music_dir: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        first = scan(lib, [music_dir])
        assert (first.found, first.analysed, len(first.problems)) == (8, 8, 0)
        second = scan(lib, [music_dir])
        assert (second.analysed, second.unchanged, second.linked) == (0, 8, 0)
        stats = lib.stats()
        assert stats["tracks"] == 8 and stats["models"] == ["descriptor"]
        ids, vectors = lib.vectors()
        assert vectors.shape[0] == 8 and np.isfinite(vectors).all()
        spec = lib.spectrogram(int(ids[0]))
        assert spec.dtype == np.float16 and spec.shape[0] == 128 and spec.shape[1] > 100


def test_tags_are_read_and_fall_back_to_names(tmp_path: Path, music_dir: Path) -> None:
    import mutagen

    tagged = music_dir / "low" / "track1.flac"
    f = mutagen.File(tagged, easy=True)
    f["artist"], f["album"], f["title"] = "Ann Artist", "First Album", "Opening"
    f.save()
    with Library.open(tmp_path / "lib") as lib:
        scan(lib, [music_dir])
        t = lib.track_by_path(tagged)
        assert t is not None and (t.artist, t.album, t.title) == ("Ann Artist", "First Album", "Opening")
        untagged = lib.track_by_path(music_dir / "high" / "track5.flac")
        assert untagged is not None and (untagged.title, untagged.album) == ("track5", "high")
        assert lib.search("ann artist - open")[0].id == t.id


def test_changed_file_is_reanalysed_and_old_track_leaves(tmp_path: Path, music_dir: Path) -> None:
    path = music_dir / "low" / "track0.wav"
    with Library.open(tmp_path / "lib") as lib:
        scan(lib, [music_dir])
        old = lib.track_by_path(path)
        write_audio(path, make_signal(5.0, 777.0, seed=42))
        again = scan(lib, [music_dir])
        assert again.analysed == 1 and again.unchanged == 7
        new = lib.track_by_path(path)
        assert old is not None and new is not None and new.audio_hash != old.audio_hash
        assert lib.track(old.id) is None and lib.stats()["tracks"] == 8


def test_moved_file_keeps_its_track_without_reanalysis(tmp_path: Path, music_dir: Path) -> None:
    src = music_dir / "low" / "track2.ogg"
    with Library.open(tmp_path / "lib") as lib:
        scan(lib, [music_dir])
        before = lib.track_by_path(src)
        dest = music_dir / "elsewhere" / "renamed.ogg"
        dest.parent.mkdir()
        shutil.move(src, dest)
        again = scan(lib, [music_dir])
        assert (again.analysed, again.linked, again.removed) == (0, 1, 1)
        after = lib.track_by_path(dest)
        assert before is not None and after is not None and after.id == before.id
        assert lib.track_by_path(src) is None and lib.stats()["tracks"] == 8


def test_byte_identical_copy_is_one_track_with_two_paths(tmp_path: Path, music_dir: Path) -> None:
    shutil.copy(music_dir / "high" / "track4.wav", music_dir / "high" / "copy of track4.wav")
    with Library.open(tmp_path / "lib") as lib:
        summary = scan(lib, [music_dir])
        assert summary.found == 9 and summary.analysed + summary.linked == 9
        t = lib.track_by_path(music_dir / "high" / "track4.wav")
        assert t is not None and len(lib.paths_of(t.id)) == 2 and lib.stats()["tracks"] == 8


def test_deleted_files_leave_the_index_only_under_scanned_roots(tmp_path: Path, music_dir: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        scan(lib, [music_dir / "low"])
        scan(lib, [music_dir / "high"])
        (music_dir / "low" / "track3.mp3").unlink()
        (music_dir / "high" / "track7.mp3").unlink()
        summary = scan(lib, [music_dir / "high"])  # only this folder is re-scanned
        assert summary.removed == 1
        assert lib.track_by_path(music_dir / "high" / "track7.mp3") is None
        assert lib.track_by_path(music_dir / "low" / "track3.mp3") is not None
        assert scan(lib, [music_dir]).removed == 1 and lib.stats()["tracks"] == 6


def test_parallel_scan_gives_the_same_catalogue(tmp_path: Path, music_dir: Path) -> None:
    with Library.open(tmp_path / "a") as a, Library.open(tmp_path / "b") as b:
        scan(a, [music_dir], jobs=1)
        summary = scan(b, [music_dir], jobs=2)
        assert summary.analysed == 8
        assert a.fingerprint() == b.fingerprint()
        ia, va = a.vectors()
        ib, vb = b.vectors()
        order_a = np.argsort([a.track(int(i)).audio_hash for i in ia])
        order_b = np.argsort([b.track(int(i)).audio_hash for i in ib])
        np.testing.assert_allclose(va[order_a], vb[order_b], rtol=1e-5, atol=1e-5)


def test_kill_9_mid_scan_then_resume_equals_uninterrupted(tmp_path: Path) -> None:
    music = tmp_path / "music"
    for i in range(24):
        write_audio(music / f"t{i:02d}.flac", make_signal(12.0, 100.0 + 37 * i, seed=i))
    library = tmp_path / "killed"
    cmd = [sys.executable, "-m", "soundalike", "index", str(music), "--library", str(library), "--jobs", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        committed = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if (library / "catalog.sqlite").exists():
                try:
                    with Library.open(library, create=False, readonly=True) as peek:
                        committed = peek.stats()["tracks"]
                except CatalogError:  # the file exists, its schema is not committed yet
                    pass
                if committed >= 3:
                    break
            time.sleep(0.05)
        assert proc.poll() is None, "scan finished before it could be killed; make the test library bigger"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    with Library.open(library) as lib:
        partial = lib.stats()["tracks"]
        assert 3 <= partial < 24
        resumed = scan(lib, [music])
        assert resumed.unchanged >= partial and resumed.analysed == 24 - resumed.unchanged
        with Library.open(tmp_path / "clean") as clean:
            scan(clean, [music])
            assert lib.fingerprint() == clean.fingerprint()
            assert lib.stats()["tracks"] == clean.stats()["tracks"] == 24
