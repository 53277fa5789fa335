"""Uploaded files are analysed in a separate, resource-limited process, never in the server.

A hostile or broken file may make a native decoder (libsndfile, ffmpeg) crash, hang or eat memory, and even a
good hour-long file costs a gigabyte to decode. ``python -m soundalike.app.server.uploads FILE --library LIB
--parts P1,P2`` decodes and analyses the file with address-space and CPU-time limits and prints the analysis (the
raw vectors of each part of the key being searched) as one JSON line; the server awaits it with a wall-clock
timeout and kills it as soon as the client that uploaded the file disconnects. Such a file costs one short-lived
process and a 4xx answer, never the server's memory.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

ANALYSIS_TIMEOUT_S = 120.0
ANALYSIS_MEMORY_BYTES = 4 << 30
# Kept for callers of the former decoding check.
CHECK_TIMEOUT_S = ANALYSIS_TIMEOUT_S


class ClientGone(Exception):
    """The client that uploaded the file disconnected: its analysis was stopped."""


@dataclass(frozen=True)
class UploadAnalysis:
    """What the child process found: ``ok`` with the analysis (JSON of
    :class:`~soundalike.recommend.queries.OutsideAnalysis`), or the kind of problem and a one-line reason."""

    ok: bool
    kind: str = ""
    reason: str = ""
    analysis: dict[str, object] | None = None


async def analyse_upload(path: str, library: Path, parts: list[str], *, timeout: float = ANALYSIS_TIMEOUT_S,
                         disconnected: Callable[[], Awaitable[bool]] | None = None) -> UploadAnalysis:
    """Analyse ``path`` for the key ``parts`` in a child process; raises :class:`ClientGone` (after killing the
    child) when ``disconnected()`` says the client left."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "soundalike.app.server.uploads", path, "--library", str(library), "--parts",
        ",".join(parts), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    done = asyncio.ensure_future(proc.communicate())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            finished, _ = await asyncio.wait({done}, timeout=0.25)
            if finished:
                break
            if disconnected is not None and await disconnected():
                raise ClientGone("the client disconnected")
            if loop.time() > deadline:
                return UploadAnalysis(False, "timeout", f"analysing took longer than {timeout:.0f} s")
    finally:
        if not done.done():
            proc.kill()
            await done
    stdout, _ = done.result()
    lines = stdout.decode("utf-8", "replace").strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else None
    except ValueError:
        report = None
    if proc.returncode != 0 or not isinstance(report, dict):
        return UploadAnalysis(False, "corrupt", "the decoder failed on this file (corrupt or unsupported audio, or "
                                                "it needed too much memory)")
    return UploadAnalysis(bool(report.get("ok")), str(report.get("kind", "")), str(report.get("reason", "")),
                          report.get("analysis"))


def _limit_resources(timeout: float) -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (ANALYSIS_MEMORY_BYTES, ANALYSIS_MEMORY_BYTES))
        cpu = int(timeout) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    except (ImportError, ValueError, OSError):  # not on this platform: the wall-clock timeout still applies
        pass


def _main(argv: list[str]) -> int:
    _limit_resources(ANALYSIS_TIMEOUT_S)
    import argparse

    parser = argparse.ArgumentParser(prog="python -m soundalike.app.server.uploads")
    parser.add_argument("file")
    parser.add_argument("--library", required=True)
    parser.add_argument("--parts", required=True)
    args = parser.parse_args(argv)
    from soundalike.audio.analysis import quiet_native_stderr
    from soundalike.library.catalog import Library
    from soundalike.recommend.queries import QueryError, analyse_outside

    try:
        with Library.open(args.library, create=False, readonly=True) as lib, quiet_native_stderr():
            analysis = analyse_outside(lib, [p for p in args.parts.split(",") if p], args.file)
    except QueryError as exc:
        print(json.dumps({"ok": False, "kind": exc.kind or "corrupt", "reason": exc.reason or str(exc)}))
        return 0
    except MemoryError:
        print(json.dumps({"ok": False, "kind": "too-large", "reason": "analysing it needs too much memory"}))
        return 0
    print(json.dumps({"ok": True, "analysis": analysis.to_json()}))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
