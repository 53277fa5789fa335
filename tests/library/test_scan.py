"""Scans: incremental, moved/renamed/duplicate/re-tagged files, safe deletions, parallel jobs, crashing files,
kill -9 resume, workers that die with the scan."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import make_signal, write_audio
from soundalike import synth
from soundalike.library.catalog import CatalogError, Library
from soundalike.library.scan import FAULT_ENV, scan


def test_first_scan_analyses_everything_and_second_nothing(tmp_path: Path, music_dir: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        first = scan(lib, [music_dir], isolate=False)
        assert (first.found, first.analysed, len(first.problems)) == (8, 8, 0)
        second = scan(lib, [music_dir], isolate=False)
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
        scan(lib, [music_dir], isolate=False)
        t = lib.track_by_path(tagged)
        assert t is not None and (t.artist, t.album, t.title) == ("Ann Artist", "First Album", "Opening")
        untagged = lib.track_by_path(music_dir / "high" / "track5.flac")
        assert untagged is not None and (untagged.title, untagged.album) == ("track5", "high")
        assert lib.search("ann artist - open")[0].id == t.id


def test_changed_file_is_reanalysed_and_old_track_leaves(tmp_path: Path, music_dir: Path) -> None:
    path = music_dir / "low" / "track0.wav"
    with Library.open(tmp_path / "lib") as lib:
        scan(lib, [music_dir], isolate=False)
        old = lib.track_by_path(path)
        write_audio(path, make_signal(5.0, 777.0, seed=42))
        again = scan(lib, [music_dir], isolate=False)
        assert again.analysed == 1 and again.unchanged == 7
        new = lib.track_by_path(path)
        assert old is not None and new is not None and new.audio_hash != old.audio_hash
        assert lib.track(old.id) is None and lib.stats()["tracks"] == 8


def test_moved_file_keeps_its_track_without_reanalysis(tmp_path: Path, music_dir: Path) -> None:
    src = music_dir / "low" / "track2.ogg"
    with Library.open(tmp_path / "lib") as lib:
        scan(lib, [music_dir], isolate=False)
        before = lib.track_by_path(src)
        dest = music_dir / "elsewhere" / "renamed.ogg"
        dest.parent.mkdir()
        shutil.move(src, dest)
        again = scan(lib, [music_dir], isolate=False)
        assert (again.analysed, again.linked, again.removed) == (0, 1, 1)
        after = lib.track_by_path(dest)
        assert before is not None and after is not None and after.id == before.id
        assert lib.track_by_path(src) is None and lib.stats()["tracks"] == 8


def test_byte_identical_copy_is_one_track_with_two_paths(tmp_path: Path, music_dir: Path) -> None:
    shutil.copy(music_dir / "high" / "track4.wav", music_dir / "high" / "copy of track4.wav")
    with Library.open(tmp_path / "lib") as lib:
        summary = scan(lib, [music_dir], isolate=False)
        assert summary.found == 9 and summary.analysed + summary.linked == 9
        t = lib.track_by_path(music_dir / "high" / "track4.wav")
        assert t is not None and len(lib.paths_of(t.id)) == 2 and lib.stats()["tracks"] == 8


def test_deleted_files_leave_the_index_only_under_scanned_roots(tmp_path: Path, music_dir: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        scan(lib, [music_dir / "low"], isolate=False)
        scan(lib, [music_dir / "high"], isolate=False)
        (music_dir / "low" / "track3.mp3").unlink()
        (music_dir / "high" / "track7.mp3").unlink()
        summary = scan(lib, [music_dir / "high"], isolate=False)  # only this folder is re-scanned
        assert summary.removed == 1
        assert lib.track_by_path(music_dir / "high" / "track7.mp3") is None
        assert lib.track_by_path(music_dir / "low" / "track3.mp3") is not None
        assert scan(lib, [music_dir], isolate=False).removed == 1 and lib.stats()["tracks"] == 6


def test_parallel_scan_gives_the_same_catalogue(tmp_path: Path, music_dir: Path) -> None:
    with Library.open(tmp_path / "a") as a, Library.open(tmp_path / "b") as b:
        scan(a, [music_dir], isolate=False, jobs=1)
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
            scan(clean, [music], isolate=False)
            assert lib.fingerprint() == clean.fingerprint()
            assert lib.stats()["tracks"] == clean.stats()["tracks"] == 24


def test_a_missing_root_or_unmounted_folder_removes_nothing(tmp_path: Path, music_dir: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        scan(lib, [music_dir], isolate=False)
        mount = tmp_path / "mnt"
        shutil.move(music_dir, mount)  # the disk is unmounted: the root is gone
        summary = scan(lib, [music_dir], isolate=False)
        assert summary.removed == 0 and lib.stats()["tracks"] == 8
        assert summary.problems[0].kind == "missing" and "nothing under it is removed" in summary.problems[0].reason
        music_dir.mkdir()  # the empty mount point is back, the disk still unmounted
        (music_dir / "low").mkdir()
        summary = scan(lib, [music_dir], isolate=False)
        assert summary.removed == 0 and summary.missing_kept == 8 and lib.stats()["tracks"] == 8
        shutil.rmtree(music_dir)
        shutil.move(mount, music_dir)  # mounted again: nothing to analyse again
        again = scan(lib, [music_dir], isolate=False)
        assert (again.unchanged, again.analysed, again.removed) == (8, 0, 0)


def test_only_files_of_folders_that_were_read_leave_the_index(tmp_path: Path, music_dir: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        scan(lib, [music_dir], isolate=False)
        (music_dir / "low" / "track0.wav").unlink()  # one file deleted from a folder that is read
        shutil.rmtree(music_dir / "high")            # a whole folder gone: kept until pruned
        summary = scan(lib, [music_dir], isolate=False)
        assert (summary.removed, summary.missing_kept) == (1, 4) and lib.stats()["tracks"] == 7


def test_a_retagged_file_shows_its_new_tags(tmp_path: Path) -> None:
    y = synth.render_track("folk", seed=4, duration=4.0)
    path = tmp_path / "music" / "song.flac"
    synth.write_track(path, y, 22050, artist="Old Artist", album="Old Album", title="Old Title")
    with Library.open(tmp_path / "lib") as lib:
        scan(lib, [tmp_path / "music"], isolate=False)
        before = lib.track_by_path(path)
        synth.write_track(path, y, 22050, artist="Beyoncé", album="New Album", title="New Title")
        summary = scan(lib, [tmp_path / "music"], isolate=False)
        after = lib.track_by_path(path)
        assert summary.analysed == 0 and summary.linked == 1
        assert before is not None and after is not None and after.id == before.id
        assert (after.artist, after.album, after.title) == ("Beyoncé", "New Album", "New Title")
        assert [t.id for t in lib.search("beyonce new")] == [after.id] and lib.search("old title") == []


def test_a_file_that_crashes_its_worker_is_recorded_and_the_scan_goes_on(tmp_path: Path, music_dir: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAULT_ENV, "track5")  # the worker analysing track5 dies of SIGSEGV
    with Library.open(tmp_path / "lib") as lib:
        summary = scan(lib, [music_dir], jobs=2)
        assert summary.analysed == 7 and [p.kind for p in summary.problems] == ["crashed"]
        assert "track5" in summary.problems[0].path and "SIGSEGV" in summary.problems[0].reason
        again = scan(lib, [music_dir], jobs=2)  # resumed: no crash again, the file is known bad
        assert (again.known_bad, again.unchanged, again.problems) == (1, 7, [])
        monkeypatch.setenv(FAULT_ENV, "kill:track6")
        os.utime(music_dir / "high" / "track6.ogg")  # changed: analysed again, now killed (out of memory?)
        third = scan(lib, [music_dir], jobs=1)
        assert [p.kind for p in third.problems] == ["crashed"] and "out of memory" in third.problems[0].reason
        assert lib.stats()["errors"] == {"crashed": 2} and lib.stats()["tracks"] == 6


def test_files_a_broken_pool_refuses_go_to_the_next_pool() -> None:
    """A worker can die between two waits of the scan (the crash of a file it took after the last one finished):
    the pool then refuses new files. They are handed back in order, not lost and not raised (a resumed
    `kill -9` campaign saw `index` fail with BrokenProcessPool from `submit`)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from soundalike.library.scan import ScanJob, _submit

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        with pytest.raises(BrokenProcessPool):
            pool.submit(os._exit, 1).result(timeout=60)  # the worker dies: the pool is broken
        jobs = [ScanJob(f"/m/{i}.ogg".encode(), 1, 1) for i in range(3)]
        pending: dict = {}  # type: ignore[type-arg]
        assert _submit(pool, jobs, ("melae",), pending) == jobs and pending == {}


def test_workers_die_with_a_killed_scan(tmp_path: Path) -> None:
    music = tmp_path / "music"
    for i in range(16):
        write_audio(music / f"t{i:02d}.flac", make_signal(15.0, 100.0 + 37 * i, seed=i))
    cmd = [sys.executable, "-m", "soundalike", "index", str(music), "--library", str(tmp_path / "lib"),
           "--jobs", "2", "--model", "descriptor"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        workers: list[int] = []
        while time.monotonic() < deadline and len(workers) < 2 and proc.poll() is None:
            workers = _children(proc.pid)
            time.sleep(0.1)
        assert len(workers) >= 2, "the scan did not start its workers"
        os.kill(proc.pid, signal.SIGKILL)  # only the scan, not its process group
        proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers), "orphaned workers outlived the scan"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    """Pids of the processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


_REUSE_PROBE = """
import resource, sys
import numpy as np
from soundalike.library.scan import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else False
np._core.multiarray._set_madvise_hugepage(False)  # count 4 kB pages (numpy asks for 2 MB ones when it can)
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
np.ones(64 << 20, dtype=np.uint8).sum()  # a 64 MB array, freed
before = faults()
for _ in range(5):
    np.ones(64 << 20, dtype=np.uint8).sum()  # the same size again, five times
print(int(applied), faults() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_workers_reuse_freed_memory_instead_of_fresh_pages_per_file() -> None:
    """keep_freed_memory (called in every scan worker) makes a freed 64 MB block come back without page faults;
    without it each allocation faults in all its pages again."""
    def run(mode: str) -> tuple[int, int]:
        out = subprocess.run([sys.executable, "-c", _REUSE_PROBE, mode], capture_output=True, text=True, check=True)
        applied, faults = out.stdout.split()
        return int(applied), int(faults)

    applied, kept = run("keep")
    _, plain = run("plain")
    if not applied:
        pytest.skip("not glibc")
    pages = 5 * (64 << 20) // 4096
    assert plain > pages // 2  # fresh pages every time
    assert kept < pages // 20
