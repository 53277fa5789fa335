"""Load test of ``soundalike serve`` on loopback: many concurrent clients, a mix of endpoints, latency per endpoint.

    python benchmarks/server.py [--clients 50] [--seconds 20] [--tracks 10000] [--library DIR] [--json] [--out FILE]

A synthetic library (``synth``: 10 styles x 3 tracks of 10 s, analysed for real) is grown to ``--tracks`` catalogue
entries (default 10,000, the issue's "fast on a 10k-track library"): each extra entry is a hard link to one of the
real files, with its own tags, its spectrogram row pointing at the real one, and the real descriptor plus noise,
so search, paging, the map and nearest-neighbour search work on a 10k catalogue without analysing 10k files.
``--library`` serves an existing library instead (read only: nothing is added to it).

The server runs as ``soundalike serve`` in a child process on a free 127.0.0.1 port; only that address is sent
traffic. ``--clients`` coroutines (one keep-alive connection each) send requests back to back for ``--seconds``
(the run is bounded in time and stops by itself). Each request picks an endpoint by weight:

| endpoint | request |
|---|---|
| ``search`` | ``GET /api/tracks?q=<a word of a title/artist/album>&limit=50`` |
| ``detail`` | ``GET /api/tracks/<id>`` |
| ``similar`` | ``GET /api/tracks/<id>/similar?k=10`` |
| ``audio_range`` | ``GET /api/tracks/<id>/audio`` with ``Range: bytes=<64 KiB>`` |
| ``map`` | ``GET /api/map`` (every track's PCA position; gzip) |
| ``health`` | ``GET /api/health``: the baseline (no work, so HTTP, event loop and queueing under the same load) |

Reported per endpoint: count, errors (any status but 200/206, and transport errors), p50/p90/p99/max latency in ms,
and p50/p99 as a ratio to ``health`` under the same load; overall requests/s and errors; every endpoint measured
alone before the load (``unloaded``: one sequential client, 60 requests each), ``health`` there being the second
baseline; the server's CPU time per request and busy cores (from
``/proc``). The client runs in this process, so on a 2-core machine it competes with the server for CPU: latencies
are end-to-end as a client on the same machine sees them, and server CPU per request is the machine-independent
figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from http1 import Connection  # noqa: E402 - a module beside this one

WEIGHTS = {"search": 25, "detail": 20, "similar": 25, "audio_range": 15, "map": 5, "health": 10}
RANGE_BYTES = 64 << 10


def log(msg: str) -> None:
    """Progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def synthetic_library(root: Path, tracks: int, seed: int = 0) -> Path:
    """A real synthetic library grown to ``tracks`` catalogue entries (see the module docstring); its folder."""
    from soundalike import synth
    from soundalike.library.catalog import Library
    from soundalike.library.scan import scan

    music = root / "music"
    synth.make_library(music, tracks_per_style=3, duration=10.0, seed=seed)
    lib_dir = root / "lib"
    with Library.open(lib_dir) as lib:
        scan(lib, [music], jobs=os.cpu_count() or 1)
        real = lib.tracks()
        extra = max(0, tracks - len(real))
        if extra:
            log(f"growing the catalogue from {len(real)} to {tracks} tracks")
            _grow(lib, real, extra, root / "links", seed)
        n = len(lib.tracks())
    log(f"library: {n} tracks")
    return lib_dir


def _grow(lib: Any, real: list[Any], extra: int, links: Path, seed: int) -> None:
    from soundalike.library.catalog import DESCRIPTOR_MODEL

    rng = np.random.default_rng(seed)
    links.mkdir(parents=True, exist_ok=True)
    spectros = {r[0]: r[1:] for r in lib.conn.execute(
        "SELECT track_id, preset, chunk, offset, n_mels, n_frames FROM spectrograms WHERE preset='melae'")}
    ids, vectors = lib.vectors(DESCRIPTOR_MODEL)
    by_id = {int(t): v for t, v in zip(ids, vectors, strict=True)}
    scale = vectors.std(axis=0) * 0.35
    words = ["Blue", "Night", "Echo", "River", "Glass", "Iron", "Velvet", "Storm", "Paper", "Silver", "Ember",
             "Hollow", "Neon", "Quiet", "Wild", "Golden", "Lunar", "Static", "Cedar", "Drift"]
    now = time.time()
    with lib.transaction():
        for i in range(extra):
            source = real[i % len(real)]
            path = links / f"{i:05d}{Path(source.path).suffix}"
            if not path.exists():
                os.link(source.path, path)
            stat = path.stat()
            artist = f"{words[i % 20]} {words[(i // 20) % 20]} Band"
            album = f"{words[(i // 7) % 20]} {words[(i // 140) % 20]} {i // 700}"
            title = f"{words[(i * 7) % 20]} {words[(i * 13 + 5) % 20]} {i}"
            cur = lib.conn.execute(
                "INSERT INTO tracks (audio_hash, duration, analysed_seconds, artist, album, title, added_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", (f"bench-{i}", source.duration, source.duration, artist, album,
                                                 title, now))
            track_id = int(cur.lastrowid or 0)
            lib.conn.execute("INSERT INTO files (path, track_id, size, mtime_ns, file_hash, status, error, "
                             "scanned_at) VALUES (?, ?, ?, ?, ?, 'ok', NULL, ?)",
                             (str(path).encode(), track_id, stat.st_size, stat.st_mtime_ns, f"bench-{i}", now))
            if source.id in spectros:
                lib.conn.execute("INSERT INTO spectrograms VALUES (?, ?, ?, ?, ?, ?)",
                                 (track_id, *spectros[source.id]))
            noisy = by_id[source.id] + rng.standard_normal(scale.shape).astype(np.float32) * scale
            lib.put_vector(track_id, DESCRIPTOR_MODEL, noisy)


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (Linux ``/proc``: a server and its workers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):  # gone meanwhile
                continue
    tree, todo = [pid], [pid]
    while todo:
        here = todo.pop()
        kids = [child for child, parent in parents.items() if parent == here]
        tree += kids
        todo += kids
    return tree


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time so far of a process and the processes below it (Linux ``/proc``; None elsewhere)."""
    total, found = 0.0, False
    for one in process_tree(pid) if Path("/proc").is_dir() else [pid]:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total, found = total + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), True
    return total if found else None


def percentiles(ms: list[float]) -> dict[str, float]:
    """p50/p90/p99/max of latencies in milliseconds."""
    if not ms:
        return {"p50_ms": 0.0, "p90_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    a = np.asarray(ms)
    return {"p50_ms": round(float(np.percentile(a, 50)), 2), "p90_ms": round(float(np.percentile(a, 90)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2), "max_ms": round(float(a.max()), 2)}


class Workload:
    """What the clients ask for: track ids, search words and file sizes from the served library."""

    def __init__(self, tracks: list[dict[str, Any]], sizes: dict[int, int], seed: int) -> None:
        self.ids = [t["track_id"] for t in tracks]
        self.sizes = sizes
        words = {w for t in tracks for w in f"{t['title']} {t['artist']} {t['album']}".split() if len(w) > 2}
        self.words = sorted(words)
        self.rng = random.Random(seed)
        self.weights = dict(WEIGHTS)

    def next(self) -> tuple[Any, ...]:
        """``(endpoint, url path, headers)`` of the next request (a fourth item, a JSON body, makes it a POST)."""
        kind = self.rng.choices(list(self.weights), list(self.weights.values()))[0]
        return self.request(kind, self.rng.choice(self.ids))

    def request(self, kind: str, tid: int) -> tuple[Any, ...]:
        """The request of one ``kind`` about track ``tid`` (unknown kinds ask for ``health``)."""
        if kind == "search":
            return kind, f"/api/tracks?q={self.rng.choice(self.words)}&limit=50", {}
        if kind == "detail":
            return kind, f"/api/tracks/{tid}", {}
        if kind == "similar":
            return kind, f"/api/tracks/{tid}/similar?k=10", {}
        if kind == "audio_range":
            size = self.sizes.get(tid, RANGE_BYTES)
            start = self.rng.randrange(0, max(1, size - RANGE_BYTES))
            return kind, f"/api/tracks/{tid}/audio", {"Range": f"bytes={start}-{start + RANGE_BYTES - 1}"}
        if kind == "map":
            return kind, "/api/map", {}
        return kind, "/api/health", {}


async def _client(http: Any, url: str, work: Workload, deadline: float, out: dict[str, list[float]],
                  errors: dict[str, int], samples: list[str]) -> None:
    """One client: requests back to back until ``deadline`` on ``http`` (an :class:`http1.Connection` of its own,
    or the shared httpx client)."""
    lean = isinstance(http, Connection)
    while time.monotonic() < deadline:
        kind, path, headers, *body = work.next()
        start = time.perf_counter()
        try:
            if lean:
                answer = await http.request("POST" if body else "GET", path, headers, body[0] if body else None)
            else:
                if body:
                    answer = await http.post(url + path, headers=headers, json=body[0])
                else:
                    answer = await http.get(url + path, headers=headers)
                await answer.aread()
            ok = answer.status_code in (200, 206)
            problem = f"{kind} {path}: HTTP {answer.status_code} {answer.text[:120]}" if not ok else ""
        except Exception as exc:  # noqa: BLE001 - every failure is counted, the run goes on
            ok, problem = False, f"{kind} {path}: {type(exc).__name__}: {exc}"
        elapsed = (time.perf_counter() - start) * 1000
        if ok:
            out[kind].append(elapsed)
        else:
            errors[kind] += 1
            if len(samples) < 10:
                samples.append(problem)


CLIENTS = ("lean", "httpx")


async def run_load(url: str, clients: int, seconds: float, work: Workload,
                   keep: dict[str, list[float]] | None = None, client: str = "lean") -> dict[str, Any]:
    """``clients`` concurrent keep-alive clients for ``seconds``; latencies and errors per endpoint (every
    latency also appended to ``keep[endpoint]`` when given: several runs pooled). ``client``: ``lean``
    (:mod:`http1`, a connection each) or ``httpx`` (one pooled async client, as before 2026-12-04)."""
    if client not in CLIENTS:
        raise ValueError(f"client {client!r}: one of {', '.join(CLIENTS)}")
    latencies: dict[str, list[float]] = {k: [] for k in work.weights}
    errors = dict.fromkeys(work.weights, 0)
    samples: list[str] = []
    cpu_started = time.process_time()
    async with contextlib.AsyncExitStack() as stack:
        if client == "httpx":
            import httpx2

            limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
            shared = await stack.enter_async_context(httpx2.AsyncClient(limits=limits, timeout=60.0))
            https: list[Any] = [shared] * clients
        else:
            https = [Connection(url) for _ in range(clients)]
            for connection in https:
                stack.push_async_callback(connection.close)
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(*(_client(http, url, work, deadline, latencies, errors, samples) for http in https))
        wall = time.monotonic() - started
    health_p50 = float(np.percentile(latencies["health"], 50)) if latencies["health"] else float("nan")
    health_p99 = float(np.percentile(latencies["health"], 99)) if latencies["health"] else float("nan")
    endpoints = {}
    for kind in work.weights:
        row: dict[str, Any] = {"count": len(latencies[kind]), "errors": errors[kind], **percentiles(latencies[kind])}
        if kind != "health" and latencies[kind]:
            row["p50_vs_health"] = round(row["p50_ms"] / health_p50, 2)
            row["p99_vs_health"] = round(row["p99_ms"] / health_p99, 2)
        endpoints[kind] = row
    total = sum(len(v) for v in latencies.values()) + sum(errors.values())
    if keep is not None:
        for kind, values in latencies.items():
            keep.setdefault(kind, []).extend(values)
    client_cpu = time.process_time() - cpu_started
    return {"seconds": round(wall, 2), "requests": total, "requests_per_s": round(total / wall, 1),
            "client_cpu_ms_per_request": round(1000 * client_cpu / max(total, 1), 2),
            "errors": sum(errors.values()), "error_samples": samples, "endpoints": endpoints}


def unloaded(url: str, work: Workload, n: int = 60) -> dict[str, dict[str, float]]:
    """Each endpoint's latency with one sequential client and nothing else running (``n`` requests each)."""
    import httpx2

    times: dict[str, list[float]] = {k: [] for k in work.weights}
    with httpx2.Client(timeout=60.0) as http:
        while min(len(v) for v in times.values()) < n:
            kind, path, headers, *body = work.next()
            if len(times[kind]) >= n:
                continue
            start = time.perf_counter()
            if body:
                http.post(url + path, headers=headers, json=body[0]).raise_for_status()
            else:
                http.get(url + path, headers=headers).raise_for_status()
            times[kind].append((time.perf_counter() - start) * 1000)
    return {kind: percentiles(v) for kind, v in times.items()}


def prepare(url: str) -> Workload:
    """Every track of the served library, its file size, and one warm-up request per endpoint."""
    import httpx2

    with httpx2.Client(timeout=300.0) as http:
        tracks: list[dict[str, Any]] = []
        while True:
            page = http.get(f"{url}/api/tracks", params={"offset": len(tracks), "limit": 500}).json()
            tracks += page["items"]
            if len(tracks) >= page["total"] or not page["items"]:
                break
        sizes = {}
        for t in tracks:
            with contextlib.suppress(OSError):
                sizes[t["track_id"]] = os.stat(t["path"]).st_size
        t0 = time.monotonic()
        http.get(f"{url}/api/map").raise_for_status()  # builds the index and the map once
        http.get(f"{url}/api/tracks/{tracks[0]['track_id']}/similar").raise_for_status()
        log(f"warm-up (index, map) {time.monotonic() - t0:.1f} s")
    return Workload(tracks, sizes, seed=0)


def main(argv: list[str] | None = None) -> int:
    """Build or open the library, start the server, measure, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50, help="Concurrent clients (1-500).")
    parser.add_argument("--seconds", type=float, default=20.0, help="Duration of the load (1-600 s).")
    parser.add_argument("--tracks", type=int, default=10_000, help="Catalogue size of the synthetic library.")
    parser.add_argument("--library", type=Path, help="Serve this library instead of a synthetic one.")
    parser.add_argument("--client", choices=CLIENTS, default="lean", help="The load generator: lean (http1.py, "
                        "default) or httpx (the one used before 2026-12-04).")
    parser.add_argument("--json", action="store_true", help="Print only the JSON report.")
    parser.add_argument("--out", type=Path, help="Also write the JSON report here.")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 500 or not 1 <= args.seconds <= 600:
        parser.error("--clients must be 1-500 and --seconds 1-600")
    from soundalike.app.server.run import background_server

    with tempfile.TemporaryDirectory(prefix="soundalike-bench-") as tmp:
        library = args.library or synthetic_library(Path(tmp), args.tracks)
        with background_server(library) as server:
            url = server.url
            work = prepare(url)
            log(f"server {url}: {len(work.ids)} tracks; baseline, then {args.clients} clients for {args.seconds} s")
            baseline = unloaded(url, work)
            cpu_before = cpu_seconds(server.pid)
            load = asyncio.run(run_load(url, args.clients, args.seconds, work, client=args.client))
            cpu_after = cpu_seconds(server.pid)
    if cpu_before is not None and cpu_after is not None:
        used = cpu_after - cpu_before
        load["server_cpu_seconds"] = round(used, 2)
        load["server_cpu_ms_per_request"] = round(1000 * used / max(load["requests"], 1), 2)
        load["server_cores_busy"] = round(used / load["seconds"], 2)
    report = {
        "benchmark": "server", "client": args.client, "clients": args.clients, "seconds": args.seconds,
        "tracks": len(work.ids),
        "weights": WEIGHTS, "range_bytes": RANGE_BYTES, "machine": {"python": platform.python_version(),
                                                                   "cpus": os.cpu_count()},
        "unloaded": baseline, **load,
    }
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    if not args.json:
        log(f"{load['requests']} requests in {load['seconds']} s = {load['requests_per_s']}/s, "
            f"{load['errors']} errors; server CPU {load.get('server_cpu_ms_per_request', '?')} ms/request, "
            f"{load.get('server_cores_busy', '?')} cores busy")
        for kind, row in load["endpoints"].items():
            log(f"  {kind:12s} n={row['count']:6d} p50={row['p50_ms']:8.1f} ms  p99={row['p99_ms']:8.1f} ms  "
                f"errors={row['errors']}   alone: p50={baseline[kind]['p50_ms']:6.1f} ms")
    print(text)
    return 0 if load["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
