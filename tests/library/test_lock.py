"""One library, one writer: a second writer waits or refuses with one clear line; the lock is reentrant."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from soundalike.library.catalog import Library
from soundalike.library.lock import writer_lock
from soundalike.library.scan import scan


def _index(music: Path, library: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "soundalike", "index", str(music), "--library", str(library),
                             "--model", "descriptor", "--jobs", "1", *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_second_writer_refuses_or_waits(tmp_path: Path, music_dir: Path) -> None:
    library = tmp_path / "lib"
    Library.open(library).close()
    with writer_lock(library):
        refused = _index(music_dir, library, "--no-wait")
        _, err = refused.communicate(timeout=120)
        assert refused.returncode == 2 and "another soundalike is writing this library" in err
        assert len(err.strip().splitlines()) == 1 and "pid " in err
        log = tmp_path / "waiting.err"
        with log.open("w") as err_file:
            waiting = subprocess.Popen([sys.executable, "-m", "soundalike", "index", str(music_dir), "--library",
                                        str(library), "--model", "descriptor", "--jobs", "1"],
                                       stdout=subprocess.PIPE, stderr=err_file, text=True)
        # Hold the lock until the second writer says it waits (its start-up may take seconds on a loaded machine).
        deadline = time.monotonic() + 120
        while "waiting: another soundalike is writing" not in log.read_text() and time.monotonic() < deadline:
            assert waiting.poll() is None, log.read_text()  # it must wait, not fail or go ahead
            time.sleep(0.1)
        assert "waiting: another soundalike is writing" in log.read_text()
        time.sleep(0.5)
        assert waiting.poll() is None  # still waiting for the lock
    out, _ = waiting.communicate(timeout=300)
    assert waiting.returncode == 0 and "8 analysed" in out


def test_the_lock_is_reentrant_and_refuses_another_process_only(tmp_path: Path, music_dir: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        with lib.writing(), lib.writing():
            scan(lib, [music_dir], isolate=False)  # takes the lock again inside: no deadlock
        probe = [sys.executable, "-c", "import sys; from soundalike.library.lock import writer_lock\n"
                 f"with writer_lock({str(tmp_path / 'lib')!r}, wait=False): sys.exit(0)"]
        with lib.writing():
            assert subprocess.run(probe, capture_output=True).returncode != 0
        assert subprocess.run(probe, capture_output=True).returncode == 0  # released
        with lib.writing():
            timed_out = subprocess.run([sys.executable, "-c", "from soundalike.library.lock import writer_lock\n"
                                        f"with writer_lock({str(tmp_path / 'lib')!r}, timeout=0.5): pass"],
                                       capture_output=True, text=True)
        assert timed_out.returncode != 0 and "LibraryBusyError" in timed_out.stderr
        assert "still busy" in timed_out.stderr
