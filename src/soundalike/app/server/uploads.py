"""Uploaded files: checked by decoding them in a separate, resource-limited process first.

A hostile or broken file may make a native decoder (libsndfile, ffmpeg) crash, hang or eat memory. The check runs
``python -m soundalike.server.uploads FILE`` with CPU-time and memory limits and a wall-clock timeout, so such a
file costs one short-lived process and a 4xx answer, never the server. Only files that decode there are
analysed in the server process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

CHECK_TIMEOUT_S = 60.0
CHECK_MEMORY_BYTES = 4 << 30


@dataclass(frozen=True)
class CheckResult:
    """What the decoding check found: ``ok`` with the duration, or the kind of problem and a one-line reason."""

    ok: bool
    kind: str = ""
    reason: str = ""
    duration: float = 0.0


def check_audio_file(path: str, *, timeout: float = CHECK_TIMEOUT_S) -> CheckResult:
    """Decode ``path`` in a child process (limited CPU time and memory) and report whether it is usable audio."""
    try:
        done = subprocess.run([sys.executable, "-m", "soundalike.app.server.uploads", path], capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False,
                              env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    except subprocess.TimeoutExpired:
        return CheckResult(False, "timeout", f"decoding took longer than {timeout:.0f} s")
    lines = done.stdout.decode("utf-8", "replace").strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else None
    except ValueError:
        report = None
    if done.returncode != 0 or not isinstance(report, dict):
        return CheckResult(False, "corrupt", "the decoder failed on this file (corrupt or unsupported audio)")
    return CheckResult(bool(report.get("ok")), str(report.get("kind", "")), str(report.get("reason", "")),
                       float(report.get("duration", 0.0)))


def _limit_resources(timeout: float) -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (CHECK_MEMORY_BYTES, CHECK_MEMORY_BYTES))
        cpu = int(timeout) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    except (ImportError, ValueError, OSError):  # not on this platform: the timeout still applies
        pass


def _main(argv: list[str]) -> int:
    _limit_resources(CHECK_TIMEOUT_S)
    from soundalike.audio.analysis import ANALYSIS_SR, MAX_ANALYSED_SECONDS, quiet_native_stderr
    from soundalike.audio.decode import AudioError, load_excerpts, probe

    if len(argv) != 1:
        print(json.dumps({"ok": False, "kind": "usage", "reason": "usage: python -m soundalike.server.uploads FILE"}))
        return 2
    try:
        with quiet_native_stderr():
            info = probe(argv[0])
            load_excerpts(argv[0], ANALYSIS_SR, max_duration=MAX_ANALYSED_SECONDS)
    except AudioError as exc:
        print(json.dumps({"ok": False, "kind": exc.kind, "reason": exc.reason}))
        return 0
    except MemoryError:
        print(json.dumps({"ok": False, "kind": "too-large", "reason": "decoding needs too much memory"}))
        return 0
    print(json.dumps({"ok": True, "duration": info.duration if info.duration == info.duration else 0.0}))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
