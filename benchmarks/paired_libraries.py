"""Same-album retrieval of the same music indexed twice (two versions of the analysis), paired query by query.

    python benchmarks/paired_libraries.py --before LIB1 --after LIB2 --music ROOT[,ROOT...] \\
        [--before-src CHECKOUT] [--embeddings descriptor default] [--out FILE.json]
    python benchmarks/paired_libraries.py --before LIB1 --after NAME=LIB2 --after NAME=LIB3 ... --music ...

``benchmarks/quality.py`` compares embeddings inside one library; a change to the analysis itself (what
``soundalike index`` stores) needs two libraries of the same files. Each query's AP@10 is computed in both (leave one
out within the library, cosine over the search vectors ``similar`` uses, as quality.py), the queries are matched by
file path, and the albums are resampled together (2000 times): MAP@10 of each with its 95 % interval, and the
paired change after / before with its interval. ``--before-src`` scores the first library with the soundalike of
another checkout (``git worktree add``): a library the running version no longer searches (older descriptors) is
scored by the version that made it. Several named ``--after`` libraries (candidates, e.g. analysis windows) are each
paired against the one ``--before``: the JSON then holds ``candidates`` (name: library and results) in the order
given, instead of ``after`` and ``results``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import album_of, bootstrap, ensure_embedded, per_query  # noqa: E402


def query_aps(library: Path, roots: list[Path], key: str) -> tuple[dict[str, float], dict[str, str], str]:
    """``({path: AP@10}, {path: album}, catalogue key)`` of every query of ``key`` in ``library``."""
    from soundalike.evaluation.embeddings import embedding_vectors
    from soundalike.library.catalog import Library

    with Library.open(library, create=False) as lib:
        resolved = ensure_embedded(lib, key)
        ids, vectors = embedding_vectors(lib, resolved)
        path_of = {t.id: t.path for t in lib.tracks()}
        paths = [str(Path(path_of[int(i)]).resolve()) for i in ids]
    albums = album_of(paths, roots)
    labels = np.array(albums)
    aps, _, owners = per_query(vectors, labels)
    kept = [(p, a) for p, a in zip(paths, albums, strict=True) if int((labels == a).sum()) > 1]
    assert [a for _, a in kept] == owners.tolist()  # per_query keeps the same queries, in the same order
    return ({p: ap for (p, _), ap in zip(kept, aps.tolist(), strict=True)}, dict(zip(paths, albums, strict=True)),
            resolved)


def query_aps_elsewhere(src: Path, library: Path, roots: list[Path], key: str
                        ) -> tuple[dict[str, float], dict[str, str], str]:
    """:func:`query_aps` computed by the soundalike of the checkout ``src`` (a child process)."""
    env = {**os.environ, "PYTHONPATH": str(Path(src).resolve() / "src")}
    done = subprocess.run([sys.executable, __file__, "--aps", str(library), "--music", ",".join(map(str, roots)),
                           "--embeddings", key], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"scoring {library} with {src} failed:\n{done.stderr.strip()}")
    aps, albums, resolved = json.loads(done.stdout.splitlines()[-1])
    return aps, albums, resolved


def compare(before: Path, afters: dict[str, Path], roots: list[Path], embeddings: list[str], resamples: int,
            seed: int, before_src: Path | None = None) -> dict[str, dict[str, Any]]:
    """Per ``afters`` name and embedding: MAP@10 in each library with intervals, and the paired change after /
    before (the before library scored once per embedding)."""
    out: dict[str, dict[str, Any]] = {name: {} for name in afters}
    for key in embeddings:
        if before_src is not None:
            aps_before, albums, key_before = query_aps_elsewhere(before_src, before, roots, key)
        else:
            aps_before, albums, key_before = query_aps(before, roots, key)
        for name, after in afters.items():
            aps_after, _, key_after = query_aps(after, roots, key)
            shared = sorted(set(aps_before) & set(aps_after))
            owners = np.array([albums[p] for p in shared])
            values = {"before": np.array([aps_before[p] for p in shared]),
                      "after": np.array([aps_after[p] for p in shared])}
            stats = bootstrap(values, owners, resamples, seed, "before")
            out[name][key] = {"keys": {"before": key_before, "after": key_after}, "queries": len(shared),
                              "albums": int(len(np.unique(owners))), "only_before": len(aps_before) - len(shared),
                              "only_after": len(aps_after) - len(shared),
                              "before": {k: stats["before"][k] for k in ("mean", "lo", "hi")},
                              "after": {k: stats["after"][k] for k in ("mean", "lo", "hi")},
                              "change": {k: stats["after"][k] for k in ("gain", "gain_lo", "gain_hi")}}
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module doc."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="the library indexed by the version before")
    parser.add_argument("--after", action="append", default=[],
                        help="the same music indexed by the version after; NAME=LIB, repeated, for candidates")
    parser.add_argument("--before-src", type=Path, help="a checkout of the version before, to score --before")
    parser.add_argument("--aps", type=Path, help=argparse.SUPPRESS)  # one library's per-query APs, as JSON
    parser.add_argument("--music", required=True, help="the music roots, comma-separated (album = first folder)")
    parser.add_argument("--embeddings", nargs="+", default=["descriptor", "default"])
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    roots = [Path(r) for r in args.music.split(",") if r]
    if args.aps is not None:
        print(json.dumps(query_aps(args.aps, roots, args.embeddings[0])))
        return 0
    if args.before is None or not args.after:
        parser.error("--before and --after are required")
    # NAME=LIB, where NAME has no '/' (a bare path may hold '=' in a folder's name)
    named = [(name, lib) if sep and "/" not in name else ("", a) for a in args.after
             for name, sep, lib in [a.partition("=")]]
    if len(named) > 1 and not all(name for name, _ in named):
        parser.error("several --after libraries need names: --after NAME=LIB")
    if len({name for name, _ in named}) < len(named):
        parser.error("each --after NAME must be different")
    payload: dict[str, Any] = {
        "benchmark": "paired-libraries",
        "command": " ".join(["benchmarks/paired_libraries.py", *(argv if argv is not None else sys.argv[1:])]),
        "before": str(args.before)}
    runs = compare(args.before, {name: Path(lib) for name, lib in named}, roots, args.embeddings, args.resamples,
                   args.seed, args.before_src)
    if named[0][0]:
        payload["candidates"] = {name: {"after": lib, "results": runs[name]} for name, lib in named}
    else:
        payload |= {"after": named[0][1], "results": runs[""]}
    payload |= {"resamples": args.resamples, "seed": args.seed}
    if args.out:
        args.out.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    for name, results in runs.items():
        for key, r in results.items():
            c = r["change"]
            print(f"{name + ': ' if name else ''}{key}: {r['before']['mean']:.3f} -> {r['after']['mean']:.3f} "
                  f"({r['queries']} queries), paired {c['gain']:+.1%} [{c['gain_lo']:+.1%}, {c['gain_hi']:+.1%}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
