"""Memory of `soundalike index` on one very long file (issue 13: at most 1 GB per worker on a 2-hour file).

    python benchmarks/memory.py [--hours 2] [--windows 120 0] [--jobs 1] [--json] [--out FILE]

Writes a ``--hours`` long 44.1 kHz stereo FLAC (music the project synthesises, its 60 s tiled; written in blocks,
so this script never holds it whole), then runs ``soundalike index FILE`` into a fresh library once per
``--analyse-seconds`` window and follows the command's process tree: every 50 ms the peak resident set (VmHWM in
``/proc/PID/status``) of the command and of each worker process it starts. The peak of each process is kept;
the JSON gives the command's, the largest worker's, and the CPU time of the tree (``wait4``). Linux only (reads
``/proc``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_MB = 1024.0


def write_long_file(path: Path, hours: float, seed: int = 0) -> float:
    """A ``hours`` long stereo 44.1 kHz FLAC of synthesised music (60 s rendered once, tiled); its duration in s."""
    import soundfile as sf

    from soundalike.synth.render import render_track

    sr = 44100
    minute = render_track("rock", seed, duration=60.0, sr=sr)
    block = np.stack([minute, np.roll(minute, sr // 10)], axis=1) * np.float32(0.8)
    blocks = int(round(hours * 60))
    with sf.SoundFile(path, "w", samplerate=sr, channels=2, format="FLAC", subtype="PCM_16") as f:
        for _ in range(blocks):
            f.write(block)
    return blocks * 60.0


def _descendants(root: int) -> set[int]:
    """``root`` and every process below it, from the parent ids in ``/proc/*/stat``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _peak_mb(pid: int) -> float | None:
    """The peak resident set (VmHWM) of a live process in MB, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_index(file: Path, library: Path, window: int, jobs: int) -> dict[str, float | int]:
    """Index ``file`` into a fresh ``library`` with ``--analyse-seconds window``: peaks of the command and of its
    largest worker (MB), CPU seconds of the tree, wall seconds."""
    soundalike = Path(sys.executable).with_name("soundalike")
    cmd = [str(soundalike), "index", str(file), "--library", str(library), "--jobs", str(jobs),
           "--analyse-seconds", str(window)]
    log = library.with_suffix(".log")
    start = time.perf_counter()
    with open(log, "wb") as err:  # a file, not a pipe: the progress bar would fill a pipe nobody reads
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    peaks: dict[int, float] = {}
    status = usage = None
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            for p in _descendants(proc.pid):
                mb = _peak_mb(p)
                if mb is not None:
                    peaks[p] = max(peaks.get(p, 0.0), mb)
            time.sleep(0.05)
    except BaseException:  # interrupted: the index run goes too (its workers die with it)
        proc.kill()
        proc.wait()
        raise
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise SystemExit(f"soundalike index: exit {code}: {log.read_text(errors='replace')[-400:]}")
    workers = [mb for p, mb in peaks.items() if p != proc.pid]
    return {"analyse_seconds": window, "jobs": jobs, "command_peak_mb": round(peaks.get(proc.pid, 0.0), 1),
            "largest_worker_peak_mb": round(max(workers, default=0.0), 1), "worker_processes": len(workers),
            "tree_max_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "wall_seconds": round(wall, 2)}


def main(argv: list[str] | None = None) -> int:
    """Write the long file, index it once per window, print (or write) the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--windows", type=int, nargs="+", default=[120, 0],
                        help="--analyse-seconds values to run (0 = whole tracks)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="soundalike-memory-") as tmp:
        file = Path(tmp) / "long.flac"
        seconds = write_long_file(file, args.hours)
        runs = [run_index(file, Path(tmp) / f"lib-{w}", w, args.jobs) for w in args.windows]
        size_mb = file.stat().st_size / 2**20
    payload = {"benchmark": "memory", "command": "benchmarks/memory.py " + " ".join(argv or sys.argv[1:]),
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
               "file": {"hours": round(seconds / 3600, 3), "format": "FLAC 44.1 kHz stereo 16 bit",
                        "size_mb": round(size_mb, 1)},
               "target_worker_mb": TARGET_MB, "runs": runs,
               "met": all(r["largest_worker_peak_mb"] <= TARGET_MB and r["command_peak_mb"] <= TARGET_MB
                          for r in runs)}
    text = json.dumps(payload, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if args.json or not args.out:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
