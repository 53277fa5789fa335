"""Analysis throughput: soundalike's decode + spectrogram (+ descriptors) against a plain librosa pipeline.

    python benchmarks/analysis.py [FOLDER] [--max-files N] [--jobs 1 2] [--json] [--out FILE]
    python benchmarks/analysis.py FOLDER --peers [--max-files N] [--repeats 2] [--json] [--out FILE]

Without FOLDER a synthetic library is generated (so the benchmark runs anywhere); for real music fetch the
development set with ``scripts/fetch_debian_music.sh DEST`` and pass DEST. Each configuration runs in the same
process tree in the same run, so the ratios against the baseline are meaningful on a shared, noisy machine.

Pipelines (each per file, in a process pool of ``--jobs`` workers, warmed up before timing):
- ``librosa``: ``librosa.load(sr=22050)`` + ``librosa.feature.melspectrogram`` (the baseline);
- ``soundalike-mel``: ``audio.load_excerpts`` + ``features.log_mel`` (same work as the baseline);
- ``soundalike-full``: ``analysis.analyse_file`` (decode, content hash, tags, log-mel, descriptor vector) —
  everything ``soundalike index`` computes per file.

``--peers`` (the analysis-throughput issue's comparison) runs whole programs on the same files, one core each, in
the same run, alternating their order over ``--repeats`` rounds, and counts the CPU time of each program's process
tree (user + system, from ``wait4``: robust to a shared machine's noise, unlike wall time):
- ``soundalike index`` with everything it does by default (a fresh library; decode, hashes, tags, spectrograms,
  descriptors, the default model's embedding, catalogue and feature-store writes, process start-up);
- ``bliss-audio`` 0.1.11 (the Python binding of bliss-rs, the fastest peer; 0.2.x wheels need AVX-512): installed
  into this virtualenv on first use, skipped with a message when it cannot be;
- ``librosa``: load at 22.05 kHz and a log-mel spectrogram, in one process;
- with ``--baseline-src SRC``, ``soundalike index`` of another checkout (``PYTHONPATH=SRC``), named by its commit.
Rows give CPU-seconds per track, times real time per CPU-second, and the ratio to bliss.

``--scaling`` runs ``soundalike index FILES --jobs N`` (a fresh library each time, every core free) for each of
``--jobs``, alternating their order over ``--repeats`` rounds: wall seconds, CPU seconds of the process tree, and
the speed-up of N workers over one (median rounds).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import checkout_commit, commit  # noqa: E402

SR = 22050


def _init() -> None:
    from soundalike.library.scan import limit_native_threads

    limit_native_threads()
    _warm()


def _warm(_: int = 0) -> None:
    import librosa
    import numpy as np

    from soundalike.audio.analysis import analyse_waveform

    y = np.random.default_rng(0).standard_normal(SR * 3).astype(np.float32) * 0.1
    librosa.feature.melspectrogram(y=y, sr=SR)
    analyse_waveform(y)


def _librosa(path: str) -> float:
    import warnings

    import librosa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y, sr = librosa.load(path, sr=SR, mono=True)
    librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_fft=2048, hop_length=512, n_mels=128))
    return y.size / SR


def _ours_mel(path: str) -> float:
    from soundalike.audio import decode as audio
    from soundalike.audio.analysis import MAX_ANALYSED_SECONDS, quiet_native_stderr
    from soundalike.audio.features import log_mel

    with quiet_native_stderr():
        y = audio.load_excerpts(path, SR, max_duration=MAX_ANALYSED_SECONDS)
    log_mel(y, "melae")
    return y.size / SR


def _ours_full(path: str) -> float:
    from soundalike.audio.analysis import analyse_file

    return analyse_file(path).analysed_seconds


PIPELINES = {"librosa": _librosa, "soundalike-mel": _ours_mel, "soundalike-full": _ours_full}


def _safe(fn_name: str, path: str) -> float:
    try:
        return PIPELINES[fn_name](path)
    except Exception:  # noqa: BLE001 - a file one pipeline cannot read is counted, not fatal
        return -1.0


def run_config(name: str, files: list[str], jobs: int) -> dict[str, object]:
    """Time one pipeline over ``files`` with ``jobs`` warmed-up worker processes."""
    ctx = get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init) as pool:
        start = time.perf_counter()
        seconds = list(pool.map(_safe, [name] * len(files), files, chunksize=1))
        wall = time.perf_counter() - start
    ok = [s for s in seconds if s >= 0]
    audio_s = float(sum(ok))
    return {"pipeline": name, "jobs": jobs, "files": len(files), "failed": len(seconds) - len(ok),
            "audio_seconds": round(audio_s, 1), "wall_seconds": round(wall, 3),
            "tracks_per_s": round(len(ok) / wall, 3), "x_realtime": round(audio_s / wall, 1)}


ONE_CORE = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
            "RAYON_NUM_THREADS": "1"}
BLISS = "bliss-audio==0.1.11"
_PEER_SNIPPETS = {
    # a file bliss-audio cannot decode raises a Rust panic (a BaseException): noted in argv[1], the run goes on
    "bliss-audio": ("import sys, bliss_audio\nfailed = open(sys.argv[1], 'w')\nfor p in sys.argv[2:]:\n    try:\n"
                    "        bliss_audio.Song(p)\n    except BaseException:\n        print(p, file=failed)\n"),
    "librosa": ("import sys, warnings, librosa\nwarnings.simplefilter('ignore')\nfor p in sys.argv[1:]:\n"
                "    y, sr = librosa.load(p, sr=22050, mono=True)\n"
                "    librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_fft=2048, hop_length=512))\n"),
}


def _child_cpu(cmd: list[str], *, pin: bool = True, env_extra: dict[str, str] | None = None
               ) -> tuple[float, float, int]:
    """``(CPU seconds of the process tree, wall seconds, exit status)`` of one command, pinned to one core (or with
    ``pin=False`` free to use them all); BLAS/OpenMP one thread a process either way; ``env_extra`` added to its
    environment."""
    import subprocess

    env = {**os.environ, **ONE_CORE, **(env_extra or {})}
    core = sorted(os.sched_getaffinity(0))[-1] if pin and hasattr(os, "sched_getaffinity") else None
    preexec = (lambda: os.sched_setaffinity(0, {core})) if core is not None else None
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=preexec)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        err = proc.stderr.read().decode(errors="replace")[-400:] if proc.stderr else ""
        print(f"{cmd[0]}: exit {proc.returncode}: {err}", file=sys.stderr)
    # ru_* of wait4 cover the child and every descendant it waited for (workers, isolated analyses).
    return usage.ru_utime + usage.ru_stime, wall, proc.returncode


def run_scaling(files: list[str], jobs: list[int], repeats: int) -> dict[str, object]:
    """Wall and CPU time of ``soundalike index`` over ``files`` with each of ``jobs`` worker counts (fresh library;
    BLAS/OpenMP one thread a process, as a scan runs them), alternating the order each round."""
    from soundalike.audio.decode import probe

    audio_seconds = sum(probe(f).duration for f in files)
    soundalike = str(Path(sys.executable).with_name("soundalike"))
    runs: dict[int, list[tuple[float, float]]] = {n: [] for n in jobs}
    for round_ in range(repeats):
        for n in (jobs if round_ % 2 == 0 else jobs[::-1]):
            with tempfile.TemporaryDirectory(prefix="soundalike-scaling-") as lib:
                cpu, wall, code = _child_cpu([soundalike, "index", *files, "--library", lib, "--jobs", str(n)],
                                             pin=False)
            if code:
                raise RuntimeError(f"soundalike index --jobs {n} failed with exit status {code} (its error above)")
            runs[n].append((wall, cpu))
            print(f"--jobs {n} round {round_ + 1}: wall {wall:.1f} s, CPU {runs[n][-1][1]:.1f} s", file=sys.stderr)
    rows = []
    for n, values in runs.items():
        wall = sorted(v[0] for v in values)[len(values) // 2]
        cpu = sorted(v[1] for v in values)[len(values) // 2]
        rows.append({"jobs": n, "wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
                     "tracks_per_s": round(len(files) / wall, 3), "cpu_seconds_per_track": round(cpu / len(files), 4),
                     "all_rounds": [{"wall_seconds": round(w, 2), "cpu_seconds": round(c, 2)} for w, c in values]})
    one = next((r for r in rows if r["jobs"] == 1), None)
    for r in rows:
        if one is not None:
            r["speed_up"] = round(float(one["wall_seconds"]) / float(r["wall_seconds"]), 3)
            r["efficiency"] = round(float(r["speed_up"]) / int(r["jobs"]), 3)
    return {"mode": "scaling", "files": len(files), "audio_hours": round(audio_seconds / 3600, 3),
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "results": rows}


def _bliss_available() -> str | None:
    """None when bliss-audio imports (installing it once if needed), else why it cannot be used."""
    import subprocess

    check = [sys.executable, "-c", "import bliss_audio"]
    if subprocess.run(check, capture_output=True).returncode == 0:
        return None
    got = subprocess.run([sys.executable, "-m", "pip", "install", "-q", BLISS], capture_output=True, text=True)
    if got.returncode != 0:
        return f"cannot install {BLISS}: {got.stderr.strip().splitlines()[-1] if got.stderr.strip() else '?'}"
    probe = subprocess.run(check, capture_output=True, text=True)
    return None if probe.returncode == 0 else f"{BLISS} does not import here: {probe.stderr.strip()[-200:]}"


def run_peers(files: list[str], repeats: int, baseline: Path | None = None) -> dict[str, object]:
    """CPU time per track of soundalike index, bliss-audio and librosa on the same files, one core each; with
    ``baseline`` (the ``src`` folder of another checkout), that version's ``soundalike index`` too, in the same
    rounds (a before/after that the machine's drift between runs cannot blur)."""
    from soundalike.audio.decode import probe

    audio_seconds = sum(probe(f).duration for f in files)
    soundalike = str(Path(sys.executable).with_name("soundalike"))
    skipped = {}
    why = _bliss_available()
    peers = ["soundalike-index", "bliss-audio", "librosa"]
    before = f"soundalike-index@{checkout_commit(baseline) or '?'}" if baseline is not None else None
    if before is not None:
        peers.insert(1, before)
    if why is not None:
        skipped["bliss-audio"] = why
        peers.remove("bliss-audio")
        print(f"skipping bliss-audio: {why}", file=sys.stderr)
    runs: dict[str, list[tuple[float, float]]] = {p: [] for p in peers}
    analysed = dict.fromkeys(peers, len(files))  # files a program analysed (bliss-audio skips what it cannot decode)
    failed: dict[str, list[str]] = {}
    for round_ in range(repeats):
        for name in (peers if round_ % 2 == 0 else peers[::-1]):  # alternate the order: drift hits all alike
            if name in ("soundalike-index", before):
                with tempfile.TemporaryDirectory(prefix="soundalike-peers-") as lib:
                    cmd = [soundalike, "index", *files, "--library", lib, "--jobs", "1"]
                    extra = {"PYTHONPATH": str(baseline)} if name == before else None
                    cpu, wall, code = _child_cpu(cmd, env_extra=extra)
            elif name == "bliss-audio":
                with tempfile.NamedTemporaryFile("r", suffix=".txt") as note:
                    cpu, wall, code = _child_cpu([sys.executable, "-c", _PEER_SNIPPETS[name], note.name, *files])
                    failed[name] = note.read().splitlines()
                    analysed[name] = len(files) - len(failed[name])
            else:
                cpu, wall, code = _child_cpu([sys.executable, "-c", _PEER_SNIPPETS[name], *files])
            if code == 0:
                runs[name].append((cpu, wall))
            print(f"{name:17s} round {round_ + 1}: {cpu / analysed[name]:.3f} CPU-s/track, wall {wall:.1f} s",
                  file=sys.stderr)
    rows = []
    for name, values in runs.items():
        if not values:
            continue
        cpu = sorted(v[0] for v in values)[len(values) // 2]  # the median round
        rows.append({"program": name, "rounds": len(values), "cpu_seconds": round(cpu, 2),
                     "tracks_analysed": analysed[name], "cpu_seconds_per_track": round(cpu / analysed[name], 4),
                     "x_realtime_per_core": round(audio_seconds / cpu, 1),
                     "all_rounds_cpu_seconds": [round(v[0], 2) for v in values],
                     "wall_seconds": [round(v[1], 2) for v in values]})
    bliss = next((r for r in rows if r["program"] == "bliss-audio"), None)
    for r in rows:
        if bliss is not None:  # per track analysed: a file bliss-audio could not decode cost it next to nothing
            r["cpu_vs_bliss"] = round(float(r["cpu_seconds_per_track"]) / float(bliss["cpu_seconds_per_track"]), 3)
    return {"mode": "peers", "files": len(files), "audio_hours": round(audio_seconds / 3600, 3), "results": rows,
            "skipped": skipped, "not_decoded": failed, "versions": {"bliss-audio": BLISS.split("==")[1]}}


def _synthetic_folder(n: int) -> Path:
    from soundalike import synth

    folder = Path(tempfile.mkdtemp(prefix="soundalike-bench-"))
    styles = synth.style_names()
    per_style = max(1, -(-n // len(styles)))
    synth.make_library(folder, styles=styles, tracks_per_style=per_style, duration=30.0, seed=1,
                       formats=("mp3", "ogg", "flac", "wav"))
    return folder


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print (or write) JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", help="Folder of audio files (default: a synthetic library).")
    parser.add_argument("--max-files", type=int, default=40,
                        help="Use at most this many files, evenly spread over the folder (default 40).")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="Worker counts to measure.")
    parser.add_argument("--json", action="store_true", help="Print only the JSON result.")
    parser.add_argument("--out", help="Also write the JSON result to this file.")
    parser.add_argument("--peers", action="store_true",
                        help="Compare whole programs (soundalike index, bliss-audio, librosa) by CPU time, one core.")
    parser.add_argument("--scaling", action="store_true",
                        help="Wall and CPU time of the whole `soundalike index --jobs N` for each of --jobs.")
    parser.add_argument("--repeats", type=int, default=2,
                        help="--peers, --scaling: rounds per program or worker count (median reported).")
    parser.add_argument("--baseline-src", type=Path, metavar="SRC",
                        help="--peers: also run the soundalike of another checkout (its src folder) in the same "
                             "rounds, e.g. one made by `git worktree add /tmp/old COMMIT`: /tmp/old/src.")
    args = parser.parse_args(argv)

    folder = Path(args.folder) if args.folder else _synthetic_folder(args.max_files)
    files = spread_files(folder, args.max_files)
    if not files:
        print(f"no audio files under {folder}", file=sys.stderr)
        return 2
    machine = machine_info()
    command = " ".join(["benchmarks/analysis.py", *(argv if argv is not None else sys.argv[1:])])
    if args.peers:
        return _emit({"benchmark": "analysis", "folder": str(folder), "command": command, "machine": machine,
                      "commit": commit(), **run_peers(files, args.repeats, args.baseline_src)}, args.out)
    if args.scaling:
        return _emit({"benchmark": "analysis", "folder": str(folder), "command": command, "machine": machine,
                      "commit": commit(), **run_scaling(files, sorted(set(args.jobs)), args.repeats)}, args.out)
    results = []
    for jobs in args.jobs:
        for name in PIPELINES:
            r = run_config(name, files, jobs)
            results.append(r)
            if not args.json:
                print(f"{name:16s} jobs={jobs}  {r['tracks_per_s']:7.2f} tracks/s  {r['x_realtime']:7.1f}x real time"
                      f"  ({r['failed']} failed)", file=sys.stderr)
    base = {r["jobs"]: r for r in results if r["pipeline"] == "librosa"}
    for r in results:
        b = base[r["jobs"]]
        r["speed_vs_librosa"] = round(float(r["x_realtime"]) / max(float(b["x_realtime"]), 1e-9), 3)
    return _emit({"benchmark": "analysis", "folder": str(folder), "files": len(files), "machine": machine,
                  "results": results}, args.out)


MATRIX_FLAGS = {"amx_bf16", "amx_int8", "amx_tile", "avx512_bf16", "avx512_vnni", "avx_vnni"}


def machine_info() -> dict[str, Any]:
    """The CPU count, its model, the instructions that decide musicnn's precision (bfloat16 with AMX or AVX-512
    BF16, int8 with AVX-512 VNNI: the same code costs up to three times more without them) and Python's version."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not model:
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:  # not Linux
        model = platform.processor()
    return {"cpus": os.cpu_count(), "cpu": model, "matrix_instructions": sorted(flags & MATRIX_FLAGS),
            "python": platform.python_version()}


def spread_files(folder: Path, max_files: int) -> list[str]:
    """At most ``max_files`` audio files under ``folder``, evenly spaced over the sorted list (so a capped run
    still mixes albums and formats)."""
    from soundalike.audio.decode import is_audio_path

    every = sorted(str(p) for p in folder.rglob("*") if p.is_file() and is_audio_path(p))
    step = max(1.0, len(every) / max(max_files, 1))
    return [every[int(i * step)] for i in range(min(max_files, len(every)))]


def _emit(payload: dict[str, object], out: str | os.PathLike[str] | None) -> int:
    """Write the JSON to ``out`` (first: a closed pipe must not lose it), then print it."""
    text = json.dumps(payload, indent=2)
    if out:
        Path(out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
