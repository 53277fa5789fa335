"""Every kind of bad input gives one clear line (file + reason), is counted, and never stops or corrupts a scan."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers import SR, make_signal, write_audio
from soundalike.audio import decode as audio
from soundalike.library.catalog import Library
from soundalike.library.scan import scan


def _corrupt_mp3(path: Path) -> Path:
    write_audio(path, make_signal(4.0))
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(1)
    data[600:] = rng.integers(0, 256, len(data) - 600, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def _truncated_ogg(path: Path) -> Path:
    write_audio(path, make_signal(6.0))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


BAD_FILES = {
    "corrupt.mp3": (_corrupt_mp3, audio.DecodeError, "corrupt"),
    "truncated.ogg": (_truncated_ogg, audio.DecodeError, "truncated"),
    "zero.wav": (lambda p: (p.write_bytes(b""), p)[1], audio.EmptyAudioError, "empty"),
    "text.flac": (lambda p: (p.write_text("not music\n" * 50), p)[1], audio.NotAudioError, "not"),
    "short.wav": (lambda p: write_audio(p, make_signal(0.5)), audio.TooShortError, "too short"),
    "silence.flac": (lambda p: write_audio(p, np.zeros(3 * SR, np.float32)), audio.SilentAudioError, "silence"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_raises_a_typed_error_naming_the_file(tmp_path: Path, name: str) -> None:
    make, error_type, words = BAD_FILES[name]
    path = make(tmp_path / name)
    with pytest.raises(error_type) as info:
        audio.load(path)
    message = str(info.value)
    assert message.startswith(str(path) + ": ") and words in message.lower()
    assert "\n" not in message


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_rejected(bad: float, tmp_path: Path) -> None:
    y = make_signal(2.0)
    y[100] = bad
    path = tmp_path / "nan.wav"
    sf.write(path, y, SR, subtype="FLOAT")  # a float WAV keeps the NaN or infinity
    with pytest.raises(audio.NonFiniteError, match="NaN or infinite"):
        audio.load(path)


def test_scan_survives_every_kind_of_bad_input(tmp_path: Path, music_dir: Path, capsys: pytest.CaptureFixture[str]
                                               ) -> None:
    bad = music_dir / "bad"
    for name, (make, _, _) in BAD_FILES.items():
        make(bad / name)
    # A folder that contains itself through a symlink, and a file name that is not valid UTF-8.
    os.symlink(music_dir, music_dir / "high" / "loop")
    weird = os.path.join(os.fsencode(music_dir / "high"), b"caf\xe9 \xff.wav")
    os.rename(write_audio(tmp_path / "plain.wav", make_signal(3.0, 900.0, seed=9)), weird)
    # One file vanishes between listing and analysis.
    doomed = write_audio(music_dir / "low" / "doomed.wav", make_signal(3.0, 321.0))

    def vanish(stage: str, done: int, total: int) -> None:
        if done == 0 and doomed.exists():
            doomed.unlink()

    lines: list[str] = []
    with Library.open(tmp_path / "lib") as lib:
        summary = scan(lib, [music_dir], isolate=False, on_problem=lambda p: lines.append(p.line()), on_progress=vanish)
        kinds = summary.errors_by_kind
        assert kinds == {"corrupt": 2, "empty": 1, "not-audio": 1, "too-short": 1, "silent": 1, "missing": 1,
                         "symlink-loop": 1}, kinds
        assert summary.analysed == 9  # the 8 good tracks and the non-UTF-8 name
        assert len(lines) == len(summary.problems) == 8
        for name in BAD_FILES:
            assert sum(line.startswith(str(bad / name) + ": ") for line in lines) == 1, name
        assert any("doomed.wav" in line and "vanished" in line for line in lines)
        assert any(line.startswith(str(music_dir / "high" / "loop")) and "loop" in line for line in lines)
        weird_track = lib.track_by_path(weird)
        assert weird_track is not None and "\\xff" in weird_track.path
        # Consistent: every ok file points at a track, every track has vectors, errors are recorded per file.
        conn = lib.conn
        assert conn.execute("SELECT COUNT(*) FROM files WHERE status='ok' AND track_id IS NULL").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM tracks WHERE id NOT IN (SELECT track_id FROM vectors)"
                            ).fetchone()[0] == 0
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert lib.stats()["errors"] == {"corrupt": 2, "empty": 1, "not-audio": 1, "too-short": 1, "silent": 1}
        # Known-bad files are not retried (or re-reported) unless they change.
        again = scan(lib, [music_dir], isolate=False)
        assert again.problems[0].kind == "symlink-loop" and len(again.problems) == 1 and again.known_bad == 6


def test_unreadable_folder_is_reported_and_skipped(tmp_path: Path, music_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    locked = music_dir / "locked"
    write_audio(locked / "hidden.wav", make_signal(2.0))
    if os.geteuid() == 0:  # root reads anything: make scandir fail the way it does for a user
        real = os.scandir

        def scandir(path):  # type: ignore[no-untyped-def]
            if os.fsencode(path) == os.fsencode(locked):
                raise PermissionError(13, "Permission denied")
            return real(path)

        monkeypatch.setattr(os, "scandir", scandir)
    else:
        locked.chmod(0)
    try:
        with Library.open(tmp_path / "lib") as lib:
            summary = scan(lib, [music_dir], isolate=False)
            assert summary.analysed == 8
            assert [(p.kind, p.path) for p in summary.problems] == [("unreadable-folder", str(locked))]
            assert "Permission denied" in summary.problems[0].reason
    finally:
        locked.chmod(0o755)


def test_missing_root_is_reported(tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        summary = scan(lib, [tmp_path / "nowhere"], isolate=False)
        assert summary.problems[0].kind == "missing" and "nowhere" in summary.problems[0].path
