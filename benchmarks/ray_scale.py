"""Ray engine throughput: ``soundalike index --engine ray`` with 1 and 2 single-CPU workers on the same files.

    python benchmarks/ray_scale.py [FOLDER] [--max-files 96] [--repeats 2] [--batch 4] [--json]
                                   [--out benchmarks/results/ray-scale.json]

Starts a local Ray cluster of two nodes with one CPU each (``ray.cluster_utils.Cluster``, as the tests do), then
indexes the same files into a fresh library with 1 worker and with 2 workers, alternating over ``--repeats`` rounds
(median reported), exactly as ``soundalike index --engine ray`` does: the shipped default model, its presets, shards
in a shared folder, one writer. Without FOLDER a synthetic library of 30 s tracks is generated.

Measured per run: files/s end to end (listing, actor start-up with the model load, analysis, merge) and in the
steady state (between the first and the last shard merged); the actors' CPU seconds per track (analysis +
embedding, from the shards); the driver's CPU seconds per track (the single writer's merge); feature-store,
catalogue and shard bytes per track. From those, the cost of a million tracks, with the arithmetic in the JSON.

The machine's own ceiling, measured in the same rounds: the Ray actor's work (its ``Analyser``: analysis,
embedding, a shard per batch of files) in 1 and 2 plain worker processes, started and warmed before the clock, no
Ray. On a machine whose two cores do not give twice the work of one (a shared host, another job), Ray's ratio is
read against that ratio: ``ray_efficiency`` = Ray's steady-state ratio / the plain processes' ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from analysis import _emit, _synthetic_folder, spread_files  # noqa: E402

OBJECT_STORE = 150 * 2**20
MILLION = 1_000_000
TYPICAL_TRACK_SECONDS = 240.0  # for the projection: a 4-minute track


def start_cluster(nodes: int, temp_dir: str) -> Any:
    """A local Ray cluster of ``nodes`` nodes with one CPU each, its files under ``temp_dir`` (a short path: Ray's
    socket paths must fit in 107 bytes); this process is its driver."""
    import ray
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ["RAY_TMPDIR"] = temp_dir
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False,
                                                            "object_store_memory": OBJECT_STORE})
    for _ in range(nodes - 1):
        cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
    return cluster


_analyser: Any = None


def _plain_init(folder: str, presets: tuple[str, ...], checkpoints: list[bytes]) -> None:
    """A plain worker process of the baseline: the Ray actor's own ``Analyser``, its model loaded once."""
    global _analyser
    from soundalike.integrations.ray_engine import Analyser

    _analyser = Analyser(folder, presets, checkpoints, frozenset())


def _plain_warm(_: int) -> int:
    """Keep a worker busy briefly, so that every worker has started and loaded its model before the clock."""
    time.sleep(1.0)
    return os.getpid()


def _plain_batch(rows: list[dict[str, Any]]) -> int:
    """Analyse one batch of files as a Ray actor would (a shard written); the number of files."""
    import pyarrow as pa

    _analyser(pa.Table.from_pylist(rows))
    return len(rows)


def machine_baseline(files: list[str], workers: int, batch: int, scratch: Path) -> dict[str, Any]:
    """Files per second of the Ray actor's work on ``workers`` plain, warmed processes (no Ray): what this machine
    gives 1 and 2 workers at all."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from soundalike.models.embedding import checkpoint_presets
    from soundalike.models.pretrained import default_checkpoint

    checkpoint = default_checkpoint()
    run_dir = Path(tempfile.mkdtemp(prefix=f"plain{workers}-", dir=scratch))
    rows = []
    for i, f in enumerate(files):
        st = os.stat(f)
        rows.append({"key": f"{i:08d}", "path": os.fsencode(f), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                     "reanalyse": False})
    batches = [rows[i:i + batch] for i in range(0, len(rows), batch)]
    blobs = [Path(checkpoint).read_bytes()] if checkpoint else []
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_plain_init,
                                 initargs=(str(run_dir), checkpoint_presets(checkpoint), blobs)) as pool:
            list(pool.map(_plain_warm, range(workers)))
            t0 = time.perf_counter()
            done = sum(pool.map(_plain_batch, batches))
            wall = time.perf_counter() - t0
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return {"workers": workers, "files": done, "seconds": round(wall, 2), "files_per_s": round(done / wall, 3)}


def run_once(files: list[str], workers: int, batch: int, scratch: Path) -> dict[str, Any]:
    """Index ``files`` into a fresh library on ``workers`` Ray workers; what it took."""
    from soundalike.integrations.ray_engine import RayRunner, RaySettings
    from soundalike.library.catalog import Library
    from soundalike.library.scan import scan
    from soundalike.models.embedding import checkpoint_presets, embed_library
    from soundalike.models.pretrained import default_checkpoint

    checkpoint = default_checkpoint()
    run_dir = Path(tempfile.mkdtemp(prefix=f"w{workers}-", dir=scratch))
    merged_at: list[float] = []
    files_at: list[int] = []
    done = [0]

    def progress(_stage: str, n: int, _total: int) -> None:
        done[0] = n

    def on_shard(shard: str) -> None:
        merged_at.append(time.perf_counter())
        files_at.append(done[0])

    # Ray is initialised in this process already: the runner uses that connection.
    runner = RayRunner(RaySettings(shared_dir=str(run_dir / "shared"), workers=workers, batch=batch,
                                   checkpoints=[checkpoint] if checkpoint else [], on_shard=on_shard))
    with Library.open(run_dir / "lib") as lib:
        cpu0, t0 = time.process_time(), time.perf_counter()
        summary = scan(lib, files, runner=runner, presets=checkpoint_presets(checkpoint), on_progress=progress)
        wall, driver_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        assert checkpoint is not None
        _, left = embed_library(lib, checkpoint)  # 0 when the actors embedded every track
        stats = lib.stats()
        tracks = int(stats["tracks"])  # type: ignore[call-overload]
        store = int(stats["feature_store_bytes"])  # type: ignore[call-overload]
        seconds = float(lib.conn.execute("SELECT COALESCE(SUM(analysed_seconds), 0) FROM tracks").fetchone()[0])
    catalogue = sum(p.stat().st_size for p in (run_dir / "lib").glob("catalog.sqlite*"))
    steady = None
    if len(merged_at) >= 2 and merged_at[-1] > merged_at[0]:
        steady = (files_at[-1] - files_at[0]) / (merged_at[-1] - merged_at[0])
    n = len(files)
    result = {
        "workers": workers, "files": n, "tracks": tracks, "errors": len(summary.problems), "embedded_after": left,
        "seconds": round(wall, 2), "files_per_s": round(n / wall, 3),
        "steady_files_per_s": None if steady is None else round(steady, 3),
        "actor_cpu_s_per_track": round(runner.cpu_seconds / max(tracks, 1), 3),
        # The share of their cores the workers got, on average over the run (start-up included): 1.0 = a whole
        # core each all along. Below that, other load on the machine (or the driver) took the rest.
        "actor_cpu_utilisation": round(runner.cpu_seconds / (workers * wall), 3),
        "driver_cpu_s_per_track": round(driver_cpu / max(tracks, 1), 4),
        "audio_s_per_track": round(seconds / max(tracks, 1), 2),
        "feature_store_bytes_per_track": round(store / max(tracks, 1)),
        "catalogue_bytes_per_track": round(catalogue / max(tracks, 1)),
        "shard_bytes_per_track": round(runner.shard_bytes / max(tracks, 1)),
    }
    shutil.rmtree(run_dir, ignore_errors=True)
    return result


def projection(best: dict[str, Any]) -> dict[str, Any]:
    """The cost of a million tracks from one run's per-track figures, with the arithmetic spelled out."""
    cpu = float(best["actor_cpu_s_per_track"])
    audio_s = float(best["audio_s_per_track"])
    per_audio_s = cpu / max(audio_s, 1e-9)
    from soundalike.audio.analysis import DEFAULT_WINDOW

    analysed = min(TYPICAL_TRACK_SECONDS, DEFAULT_WINDOW.seconds)  # index reads at most its window of a track
    typical = per_audio_s * analysed
    store = float(best["feature_store_bytes_per_track"]) / max(audio_s, 1e-9) * analysed
    catalogue = float(best["catalogue_bytes_per_track"])
    driver = float(best["driver_cpu_s_per_track"])  # not scaled by length: see writer_arithmetic
    return {
        "tracks": MILLION, "assumed_track_seconds": TYPICAL_TRACK_SECONDS, "analysed_seconds": analysed,
        "cpu_s_per_audio_s": round(per_audio_s, 5),
        "cpu_hours_measured_length": round(cpu * MILLION / 3600, 1),
        "cpu_hours_measured_length_arithmetic": f"{cpu} CPU-s/track x 1e6 / 3600",
        "cpu_hours": round(typical * MILLION / 3600, 1),
        "cpu_hours_arithmetic": f"{per_audio_s:.5f} CPU-s per audio s x {analysed:.0f} s analysed x 1e6 / 3600",
        "feature_store_gb": round(store * MILLION / 1e9, 1),
        "feature_store_arithmetic": f"{best['feature_store_bytes_per_track']} B per {audio_s} s track, scaled to "
                                    f"{analysed:.0f} s analysed, x 1e6",
        "catalogue_gb": round(catalogue * MILLION / 1e9, 1),
        "catalogue_arithmetic": f"{best['catalogue_bytes_per_track']} B/track x 1e6 (tags, vectors, segments)",
        "writer_cpu_hours": round(driver * MILLION / 3600, 1),
        "writer_arithmetic": f"driver {best['driver_cpu_s_per_track']} CPU-s/track x 1e6 / 3600 (the single writer "
                             "and Ray Data's scheduling, one process; as measured on 30 s tracks: the Parquet read "
                             "and feature-store append grow with length, the SQLite rows and scheduling do not)",
        "writer_max_tracks_per_s": round(1 / max(driver, 1e-9), 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print (or write) JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", help="Folder of audio files (default: a synthetic library).")
    parser.add_argument("--max-files", type=int, default=96, help="Files, evenly spread over the folder (96).")
    parser.add_argument("--repeats", type=int, default=2, help="Rounds of (1 worker, 2 workers); median reported.")
    parser.add_argument("--batch", type=int, default=4, help="Files per Ray task (default 4, as the CLI).")
    parser.add_argument("--json", action="store_true", help="Print only the JSON result.")
    parser.add_argument("--out", help="Also write the JSON result to this file.")
    args = parser.parse_args(argv)

    try:
        import ray
    except ImportError:
        print("needs Ray: pip install 'soundalike[ray]'", file=sys.stderr)
        return 2
    folder = Path(args.folder) if args.folder else _synthetic_folder(args.max_files)
    files = spread_files(folder, args.max_files)
    if not files:
        print(f"no audio files under {folder}", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    cluster = start_cluster(2, ray_tmp)
    scratch = Path(tempfile.mkdtemp(prefix="ray-scale-"))
    runs: list[dict[str, Any]] = []
    plain: list[dict[str, Any]] = []
    try:
        for round_ in range(args.repeats):
            for workers in (1, 2):
                b = machine_baseline(files, workers, args.batch, scratch)
                b["round"] = round_
                plain.append(b)
                r = run_once(files, workers, args.batch, scratch)
                r["round"] = round_
                runs.append(r)
                if not args.json:
                    print(f"round {round_} workers={workers}: {r['files_per_s']:.2f} files/s end to end, "
                          f"{r['steady_files_per_s']} steady, {r['actor_cpu_s_per_track']} CPU-s/track",
                          file=sys.stderr)
    finally:
        ray.shutdown()
        cluster.shutdown()
        for made in (scratch, ray_tmp, None if args.folder else folder):
            if made is not None:
                shutil.rmtree(made, ignore_errors=True)

    def median(workers: int, key: str) -> float:
        values = [float(r[key]) for r in runs if r["workers"] == workers and r[key] is not None]
        return statistics.median(values) if values else float("nan")

    summary = {f"{w}_worker{'s' if w > 1 else ''}": {k: round(median(w, k), 3) for k in
                                                      ("files_per_s", "steady_files_per_s", "actor_cpu_s_per_track",
                                                       "actor_cpu_utilisation")}
               for w in (1, 2)}
    ratio = median(2, "files_per_s") / median(1, "files_per_s")
    steady_ratio = median(2, "steady_files_per_s") / median(1, "steady_files_per_s")
    plain_rate = {w: statistics.median(b["files_per_s"] for b in plain if b["workers"] == w) for w in (1, 2)}
    machine_ratio = plain_rate[2] / plain_rate[1]
    best = min((r for r in runs if r["workers"] == 1), key=lambda r: r["actor_cpu_s_per_track"])
    command = " ".join(["benchmarks/ray_scale.py", *(argv if argv is not None else sys.argv[1:])])
    return _emit({
        "benchmark": "ray-scale", "command": command, "folder": str(folder) if args.folder else "synthetic (30 s)",
        "files": len(files), "batch": args.batch, "ray": ray.__version__,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "cluster": "ray.cluster_utils.Cluster: 2 nodes x 1 CPU on this machine; the driver (single writer) shares "
                   "the same 2 cores",
        "summary": summary, "ratio_2_vs_1": round(ratio, 3), "steady_ratio_2_vs_1": round(steady_ratio, 3),
        "target_ratio": 1.8,
        "machine_baseline": {"what": "the Ray actor's Analyser in 1 and 2 plain, warmed worker processes, no Ray "
                                     "(medians over the rounds)",
                             "files_per_s": {f"{w}_worker{'s' if w > 1 else ''}": round(plain_rate[w], 3)
                                             for w in (1, 2)},
                             "ratio_2_vs_1": round(machine_ratio, 3), "runs": plain},
        "ray_efficiency": round(steady_ratio / machine_ratio, 3),
        "runs": runs, "projection_1m": projection(best),
    }, args.out)


if __name__ == "__main__":
    sys.exit(main())
