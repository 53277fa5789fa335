"""Query latency and recall: exact search, the ANN index, baselines, and sequence re-ranking.

    python benchmarks/query.py [--sizes 10000 100000 1000000] [--queries 200] [--seed 0] [--json] [--out FILE]

Synthetic data, so it runs anywhere: 256-d unit vectors from a three-level Gaussian mixture on the sphere
(32 "genres" > 100 "styles" > "artists" of 5 tracks on average; tracks spread in their style's 16-d subspace plus
isotropic noise), so that nearest neighbours are meaningful and recall is neither trivially 1 (well-separated
clusters: one IVF cell each) nor trivially 0 (uniform noise). Mean cosine of the 1st/10th/100th neighbour at
100k: 0.79/0.75/0.70.
Queries are held-out draws from the same mixture; the ground truth is exact top-10 inner product.

Rows (``method``), per library size ``n``:
- ``numpy-bruteforce`` — ``vectors @ q`` + ``argpartition``: the baseline every ratio (``p50_vs_numpy``) refers to;
- ``seed002-loop`` (smallest size only) — seed 002's per-pair Python loop over the library, then a sort;
- ``exact-flat`` — ``soundalike.ann.AnnIndex`` kind ``flat`` (faiss ``IndexFlatIP``);
- ``ann-ivf`` / ``ann-ivf-sq8`` — ``AnnIndex`` kind ``ivf`` (float32 or 8-bit codes), ``nprobe`` calibrated at
  build time to recall@10 >= 0.97 on library vectors; ``params.sweep`` has recall and latency per ``nprobe``;
- ``faiss-hnsw`` — faiss ``IndexHNSWFlat`` (M=32, efConstruction=40) for comparison; the row reports the smallest
  ``efSearch`` of the sweep reaching recall 0.95 (all in ``params.sweep``). It cannot remove vectors.
Re-ranking rows (``rerank-<distance>``, ``n`` = candidates): one query sequence against 200 candidate sequences
of 14 segments (and ``--long-segments``, default 100, like a whole real track), ``impl`` ``vectorised``
(``soundalike.distances.sequence_distances``) or ``reference`` (per-pair Python loops as in seed 002).

Latencies are one query at a time on one thread (BLAS and OpenMP limited to 1): what a server handling many
queries concurrently sees per query, and not at the mercy of other jobs on a shared machine. Builds use every
core. ``bytes_per_track`` is the saved index file size divided by ``n``. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

from soundalike.search import ann, distances

DIM = 256
SEGMENTS = 14
K = 10
RERANK_CANDIDATES = 200
HNSW_M, HNSW_EF_CONSTRUCTION = 32, 40


def log(msg: str) -> None:
    """Progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length."""
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def clustered_vectors(n: int, seed: int, dim: int = DIM, genres: int = 32, styles: int = 100, per_artist: int = 5,
                      sub_dim: int = 16, spread: float = 0.5, noise: float = 0.4) -> np.ndarray:
    """``(n, dim)`` float32 unit vectors from a three-level Gaussian mixture on the sphere (see module doc)."""
    rng = np.random.default_rng(seed)
    genre_centres = unit(rng.standard_normal((genres, dim)))
    style_centres = unit(genre_centres[rng.integers(0, genres, styles)] + 0.6 * unit(rng.standard_normal((styles,
                                                                                                          dim))))
    bases = (rng.standard_normal((styles, sub_dim, dim)) / np.sqrt(dim)).astype(np.float32)
    artists = max(1, n // per_artist)
    artist_style = rng.integers(0, styles, artists)
    artist_centres = unit(style_centres[artist_style] + 0.35 * unit(rng.standard_normal((artists, dim))))
    labels = rng.integers(0, artists, n)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 50_000):
        lab = labels[start:start + 50_000]
        z = rng.standard_normal((len(lab), sub_dim)).astype(np.float32) * (spread / np.sqrt(sub_dim))
        x = (artist_centres[lab] + np.einsum("nk,nkd->nd", z, bases[artist_style[lab]])
             + rng.standard_normal((len(lab), dim)) * (noise / np.sqrt(dim)))
        out[start:start + 50_000] = unit(x)
    return out


def segment_sequences(count: int, segments: int, seed: int, dim: int = DIM) -> np.ndarray:
    """``(count, segments, dim)`` float32 tracks: a slow random walk around a per-track centre."""
    rng = np.random.default_rng(seed)
    centres = clustered_vectors(count, seed, dim)
    walk = np.cumsum(rng.standard_normal((count, segments, dim)), axis=1) * (0.15 / np.sqrt(dim))
    return unit(centres[:, None, :] + walk + rng.standard_normal((count, segments, dim)) * (0.2 / np.sqrt(dim)))\
        .astype(np.float32)


def percentiles(seconds: list[float]) -> dict[str, float]:
    """p50 and p99 in milliseconds."""
    ms = np.asarray(seconds) * 1e3
    return {"p50_ms": round(float(np.percentile(ms, 50)), 4), "p99_ms": round(float(np.percentile(ms, 99)), 4)}


def time_queries(search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray) -> tuple[dict[str, float],
                                                                                            np.ndarray]:
    """Latency of ``search`` (one query -> top-k ids) over each query, after one warm-up; and the ids found."""
    search(queries[0])
    found, seconds = [], []
    for q in queries:
        start = time.perf_counter()
        ids = search(q)
        seconds.append(time.perf_counter() - start)
        found.append(ids)
    return percentiles(seconds), np.array(found)


def index_bytes(index: ann.AnnIndex | faiss.Index, folder: Path) -> int:
    """Size of the index on disk (``AnnIndex.save`` or ``faiss.write_index``); the file is deleted again."""
    path = folder / "index.bin"
    if isinstance(index, ann.AnnIndex):
        index.save(path)
    else:
        faiss.write_index(index, str(path))
    size = path.stat().st_size
    path.unlink()
    return size


def bench_size(n: int, args: argparse.Namespace, folder: Path, first: bool) -> list[dict[str, Any]]:
    """Every pooled-vector row for one library size."""
    rows: list[dict[str, Any]] = []
    log(f"n={n}: generating {n} + {args.queries} vectors")
    data = clustered_vectors(n + args.queries, seed=args.seed + n)
    x, queries = data[:n], data[n:]
    ids = np.arange(n, dtype=np.int64)
    truth, _ = ann.exact_search(ids, x, queries, K)
    slow_q = queries if n <= 200_000 else queries[: args.slow_queries]   # brute force at 1M: ~0.1 s a query

    def row(method: str, lat: dict[str, float], found: np.ndarray, nq: int, bytes_per_track: float,
            **extra: Any) -> dict[str, Any]:
        r = {"n": n, "method": method, **lat, "recall_at_10": round(ann.overlap_at_k(found, truth[:nq], K), 4),
             "bytes_per_track": round(bytes_per_track, 1), "queries": nq, **extra}
        log(f"n={n}: {method:18s} p50 {r['p50_ms']:9.3f} ms  p99 {r['p99_ms']:9.3f} ms  "
            f"recall@10 {r['recall_at_10']:.3f}  {r['bytes_per_track']:.0f} B/track")
        rows.append(r)
        return r

    with threadpool_limits(1):
        faiss.omp_set_num_threads(1)

        def numpy_top(q: np.ndarray) -> np.ndarray:
            scores = x @ q
            top = np.argpartition(-scores, K)[:K]
            return top[np.argsort(-scores[top])]

        lat, found = time_queries(numpy_top, slow_q)
        base = row("numpy-bruteforce", lat, found, len(slow_q), x.nbytes / n)

        if first:
            loop_q = queries[: args.loop_queries]

            def seed002(q: np.ndarray) -> np.ndarray:
                dist = [distances.reference_point(q, v) for v in x]   # one pair at a time, as seed 002 did
                return np.array(sorted(range(n), key=dist.__getitem__)[:K])

            lat, found = time_queries(seed002, loop_q)
            row("seed002-loop", lat, found, len(loop_q), x.nbytes / n)

    _bench_flat(ids, x, slow_q, folder, row)
    for codec in args.codecs:
        _bench_ivf(ids, x, queries, truth, codec, args.seed, folder, row)
    if args.hnsw:
        _bench_hnsw(x, queries, truth, folder, row)
    for r in rows:
        r["p50_vs_numpy"] = round(r["p50_ms"] / max(base["p50_ms"], 1e-9), 4)
    return rows


Row = Callable[..., dict[str, Any]]


def _bench_flat(ids: np.ndarray, x: np.ndarray, queries: np.ndarray, folder: Path, row: Row) -> None:
    """Exact search through ``AnnIndex`` kind ``flat``."""
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    start = time.perf_counter()
    flat = ann.AnnIndex.build(ids, x, kind="flat")
    build_s = time.perf_counter() - start
    size = index_bytes(flat, folder)
    with threadpool_limits(1):
        faiss.omp_set_num_threads(1)
        lat, found = time_queries(lambda q: flat.search(q, K)[0][0], queries)
    row("exact-flat", lat, found, len(queries), size / len(x), build_s=round(build_s, 2))


def _bench_ivf(ids: np.ndarray, x: np.ndarray, queries: np.ndarray, truth: np.ndarray, codec: str, seed: int,
               folder: Path, row: Row) -> None:
    """``AnnIndex`` kind ``ivf`` with calibrated ``nprobe``, plus a sweep of ``nprobe``."""
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    log(f"n={len(x)}: building IVF ({codec})")
    start = time.perf_counter()
    ivf = ann.AnnIndex.build(ids, x, kind="ivf", codec=codec, seed=seed)  # type: ignore[arg-type]
    build_s = time.perf_counter() - start
    size = index_bytes(ivf, folder)
    sweep, chosen = [], None
    with threadpool_limits(1):
        faiss.omp_set_num_threads(1)
        for nprobe in sorted({4, 8, 16, 32, 64, 128, ivf.params.nprobe} & set(range(1, ivf.params.nlist + 1))):
            lat, found = time_queries(lambda q, p=nprobe: ivf.search(q, K, nprobe=p)[0][0], queries)
            sweep.append({"nprobe": nprobe, **lat, "recall_at_10": round(ann.overlap_at_k(found, truth, K), 4)})
            if nprobe == ivf.params.nprobe:
                chosen = (lat, found)
    assert chosen is not None
    row("ann-ivf" if codec == "flat" else f"ann-ivf-{codec}", chosen[0], chosen[1], len(queries), size / len(x),
        build_s=round(build_s, 2),
        params={"nlist": ivf.params.nlist, "nprobe": ivf.params.nprobe, "codec": codec,
                "calibration": ivf.params.calibration, "sweep": sweep})


def _bench_hnsw(x: np.ndarray, queries: np.ndarray, truth: np.ndarray, folder: Path, row: Row) -> None:
    """faiss HNSW for comparison: the smallest ``efSearch`` of a sweep reaching recall 0.95."""
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    log(f"n={len(x)}: building HNSW M={HNSW_M} efConstruction={HNSW_EF_CONSTRUCTION}")
    start = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(DIM, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    hnsw.add(x)
    build_s = time.perf_counter() - start
    size = index_bytes(hnsw, folder)
    sweep, pick = [], None
    with threadpool_limits(1):
        faiss.omp_set_num_threads(1)
        for ef in (16, 32, 64, 128, 256):
            params = faiss.SearchParametersHNSW()
            params.efSearch = ef
            lat, found = time_queries(lambda q, p=params: hnsw.search(q[None], K, params=p)[1][0], queries)
            recall = round(ann.overlap_at_k(found, truth, K), 4)
            sweep.append({"efSearch": ef, **lat, "recall_at_10": recall})
            if pick is None and recall >= 0.95:
                pick = (ef, lat, found)
    ef, lat, found = pick or (ef, lat, found)
    row("faiss-hnsw", lat, found, len(queries), size / len(x), build_s=round(build_s, 2),
        params={"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION, "efSearch": ef, "sweep": sweep,
                "removal": "not supported"})


def bench_rerank(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Re-ranking 200 candidate sequences by every distance: vectorised against the per-pair reference."""
    rows: list[dict[str, Any]] = []
    for segments in (SEGMENTS, *args.long_segments):
        seqs = segment_sequences(RERANK_CANDIDATES + args.rerank_repeats, segments, seed=args.seed + segments)
        candidates = list(seqs[:RERANK_CANDIDATES])
        queries = seqs[RERANK_CANDIDATES:]
        with threadpool_limits(1):
            for method in distances.METHODS:
                fast = [_timed(lambda q=q, c=candidates, m=method: distances.sequence_distances(q, c, m))
                        for q in queries]
                # The reference is slow (seconds per query for long tracks): a few queries, and for long
                # sequences a subset of candidates scaled up to 200 (the per-pair cost is the same for each).
                subset = candidates if segments == SEGMENTS else candidates[:10]
                scale = len(candidates) / len(subset)
                ref_q = queries[: 3 if segments == SEGMENTS else 1]
                slow = [_timed(lambda q=q, c=subset, m=method: distances.reference_distances(q, c, m)) * scale
                        for q in ref_q]
                diff = max(float(np.max(np.abs(distances.sequence_distances(q, subset, method)
                                                - distances.reference_distances(q, subset, method))))
                           for q in ref_q)
                fast_p, slow_p = percentiles(fast[1:]), percentiles(slow)
                for impl, p, reps in (("vectorised", fast_p, len(fast) - 1), ("reference", slow_p, len(slow))):
                    r = {"n": RERANK_CANDIDATES, "method": f"rerank-{method}", "impl": impl, "segments": segments,
                         "dim": DIM, **p, "recall_at_10": None, "bytes_per_track": segments * DIM * 2,
                         "queries": reps}
                    if impl == "reference":
                        r["extrapolated_from_candidates"] = len(subset)
                    else:
                        r["speedup_vs_reference"] = round(slow_p["p50_ms"] / max(fast_p["p50_ms"], 1e-9), 1)
                        r["max_abs_diff_vs_reference"] = diff
                    rows.append(r)
                log(f"rerank {method:8s} {segments:3d} segments: vectorised p50 {fast_p['p50_ms']:8.2f} ms "
                    f"p99 {fast_p['p99_ms']:8.2f} ms, reference p50 {slow_p['p50_ms']:9.1f} ms")
    return rows


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print (or write) JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000],
                        help="Library sizes (default 10000 100000 1000000).")
    parser.add_argument("--queries", type=int, default=200, help="Queries per size (default 200).")
    parser.add_argument("--slow-queries", type=int, default=100,
                        help="Queries for the brute-force rows above 200k tracks (default 100).")
    parser.add_argument("--loop-queries", type=int, default=10, help="Queries for seed 002's loop (default 10).")
    parser.add_argument("--codecs", nargs="*", default=["flat", "sq8"], choices=["flat", "sq8"],
                        help="IVF codecs to measure (default flat sq8).")
    parser.add_argument("--no-hnsw", dest="hnsw", action="store_false", help="Skip the faiss HNSW comparison.")
    parser.add_argument("--long-segments", type=int, nargs="*", default=[100],
                        help="Sequence lengths for the long re-rank case (default 100; none to skip).")
    parser.add_argument("--rerank-repeats", type=int, default=30, help="Query sequences per re-rank timing.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the synthetic data and the IVF training.")
    parser.add_argument("--json", action="store_true", help="Print only the JSON result on stdout.")
    parser.add_argument("--out", help="Also write the JSON result to this file.")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    log(f"re-ranking {RERANK_CANDIDATES} candidates")
    results += bench_rerank(args)
    with tempfile.TemporaryDirectory(prefix="soundalike-query-") as tmp:
        for i, n in enumerate(sorted(args.sizes)):
            results += bench_size(n, args, Path(tmp), first=i == 0)
    payload = {
        "benchmark": "query", "k": K, "dim": DIM, "segments": SEGMENTS, "seed": args.seed,
        "latency_threads": 1, "build_threads": os.cpu_count(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "faiss": faiss.__version__,
                    "load_average": [round(v, 2) for v in os.getloadavg()]},
        "wall_s": round(time.perf_counter() - started, 1), "results": results,
    }
    text = json.dumps(payload, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    if not args.json:
        for r in results:
            recall = "" if r["recall_at_10"] is None else f"  recall@10 {r['recall_at_10']:.3f}"
            print(f"{r['n']:>8} {r['method']:20s} {r.get('impl', ''):10s} p50 {r['p50_ms']:10.3f} ms  "
                  f"p99 {r['p99_ms']:10.3f} ms{recall}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
