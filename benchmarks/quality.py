"""Same-album retrieval on music no model trained on: every embedding and fusion, with 95 % bootstrap intervals.

    python benchmarks/quality.py --set validation=VALLIB:VALMUSIC[,MUSIC2] --set test=TESTLIB:TESTMUSIC
                                 [--embeddings descriptor default musicnn-msd descriptor+musicnn-msd LABEL=KEY ...]
                                 [--resamples 2000] [--seed 0] [--json] [--out FILE] [--markdown FILE]

Each ``--set NAME=LIB:MUSIC[,MUSIC...]`` is an indexed library of one album set (``scripts/fetch_debian_music.sh``
lays the music out as ``MUSIC/<album>/...``: an album is a first-level folder of a root); which albums form which
set is ``benchmarks/album_sets.json``. The protocol (issue 12):

- *train* albums are what models learn from; *validation* albums (held out of training) are where every choice is
  made; *test* albums are touched only to report (the held-out set of the fetch script);
- every track of a set queries the other tracks of the same set (leave one out, cosine between the search vectors
  ``similar`` uses); relevant = the same album; MAP@10 and precision@10 per query
  (:func:`soundalike.evaluation.metrics.metrics_from_hits`);
- intervals: 2000 bootstrap resamples of the set's *albums* (with replacement; a resampled album brings all its
  queries), 2.5th and 97.5th percentiles; the gain over the descriptors is computed on the same resamples (paired).

Shipped models an embedding names (``default``, ``musicnn-msd``, ``musicnn-mtt``) are embedded first where a
library lacks them; fused keys join parts with ``+`` (and may end with ``~nnK``: smoothed over K neighbours);
``LABEL=KEY`` reports ``KEY`` under the name ``LABEL``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_EMBEDDINGS = ["descriptor", "default", "musicnn-msd", "musicnn-mtt", "descriptor+musicnn-msd",
                      "descriptor+musicnn-mtt"]


def album_of(paths: list[str], roots: list[Path]) -> list[str]:
    """The album (first folder below the music root that holds it) of each path."""
    resolved = [r.resolve() for r in roots]
    out = []
    for p in paths:
        path = Path(p).resolve()
        root = next((r for r in resolved if path.is_relative_to(r)), None)
        rel = path.relative_to(root) if root is not None else Path(path.name)
        out.append(rel.parts[0] if len(rel.parts) > 1 else "")
    return out


def per_query(vectors: np.ndarray, labels: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(AP@k, P@k, label)`` of every query that has at least one other track of its album."""
    from soundalike.evaluation.metrics import metrics_from_hits

    x = np.asarray(vectors, dtype=np.float32)
    aps, precisions, owners = [], [], []
    for start in range(0, len(x), 1024):
        sims = x[start:start + 1024] @ x.T
        for row, i in enumerate(range(start, min(start + 1024, len(x)))):
            relevant = int((labels == labels[i]).sum()) - 1
            if relevant <= 0:
                continue
            s = sims[row].copy()
            s[i] = -np.inf
            top = np.argsort(-s, kind="stable")[:k]
            m = metrics_from_hits((labels[top] == labels[i]).astype(np.float64), relevant, k)
            aps.append(m["map"])
            precisions.append(m["precision"])
            owners.append(labels[i])
    return np.array(aps), np.array(precisions), np.array(owners)


def bootstrap(values: dict[str, np.ndarray], owners: np.ndarray, resamples: int, seed: int,
              baseline: str | None) -> dict[str, dict[str, float]]:
    """Mean and 95 % interval of each embedding's per-query values, resampling albums; and the paired gain."""
    albums = np.unique(owners)
    index = {a: np.flatnonzero(owners == a) for a in albums}
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(albums), size=(resamples, len(albums)))
    out: dict[str, dict[str, float]] = {}
    sampled: dict[str, np.ndarray] = {}
    for name, v in values.items():
        sums = np.array([v[index[a]].sum() for a in albums])
        counts = np.array([len(index[a]) for a in albums])
        sampled[name] = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
        lo, hi = np.percentile(sampled[name], [2.5, 97.5])
        out[name] = {"mean": float(v.mean()), "lo": float(lo), "hi": float(hi)}
    if baseline is not None and baseline in sampled:
        for name in values:
            gains = sampled[name] / np.maximum(sampled[baseline], 1e-12) - 1.0
            lo, hi = np.percentile(gains, [2.5, 97.5])
            point = values[name].mean() / max(values[baseline].mean(), 1e-12) - 1.0
            out[name].update({"gain": float(point), "gain_lo": float(lo), "gain_hi": float(hi)})
    return out


def ensure_embedded(lib: Any, key: str) -> str:
    """Embed each model a key names (resolved as ``soundalike index --model`` resolves it) where the library lacks
    it; returns the catalogue key."""
    from soundalike.models.embedding import checkpoints_for, embed_library, resolve_model
    from soundalike.search.space import model_parts

    for part in model_parts(key):  # a part's metric (``#rca-…``) is applied when searching: nothing to embed
        for checkpoint in checkpoints_for(part, lib):
            embed_library(lib, checkpoint)
    return resolve_model(lib, key) if key != "descriptor" else key


def labelled(spec: str) -> tuple[str, str]:
    """``LABEL=KEY`` to ``(LABEL, KEY)``; a bare key is its own label."""
    label, _, key = spec.partition("=")
    return (label, key) if key else (spec, spec)


def evaluate_set(library: Path, music: list[Path], embeddings: list[str], resamples: int, seed: int,
                 versus: str | None = None) -> dict[str, Any]:
    """Every embedding of one album set: per-embedding MAP@10 and P@10 with intervals and gains over the
    descriptors (and, with ``versus``, paired gains over that embedding too)."""
    from soundalike.evaluation.embeddings import embedding_vectors
    from soundalike.library.catalog import Library

    maps: dict[str, np.ndarray] = {}
    precisions: dict[str, np.ndarray] = {}
    keys: dict[str, str] = {}
    owners: np.ndarray | None = None
    with Library.open(library, create=False) as lib:
        all_ids = [t.id for t in lib.tracks()]
        albums_of = dict(zip(all_ids, album_of([t.path for t in lib.tracks(all_ids)], music), strict=True))
        common: set[int] | None = None
        loaded = {}
        for name in embeddings:
            keys[name] = ensure_embedded(lib, labelled(name)[1])
            ids, vectors = embedding_vectors(lib, keys[name])
            loaded[name] = (ids, vectors)
            common = set(ids.tolist()) if common is None else common & set(ids.tolist())
        shared = np.array(sorted(common or set()), dtype=np.int64)
        for name, (ids, vectors) in loaded.items():
            rows = np.searchsorted(ids, shared)
            labels = np.array([albums_of[int(t)] for t in shared])
            ap, p, own = per_query(vectors[rows], labels)
            maps[name], precisions[name] = ap, p
            owners = own
    assert owners is not None
    base = "descriptor" if "descriptor" in embeddings else None
    map_ci = bootstrap(maps, owners, resamples, seed, base)
    versus_name = next((n for n in embeddings if versus in (n, labelled(n)[0])), None)
    if versus is not None and versus_name is not None:  # a second paired comparison, on the same resamples
        against = bootstrap(maps, owners, resamples, seed, versus_name)
        for name in embeddings:
            map_ci[name][f"vs_{versus}"] = {k: against[name][k] for k in ("gain", "gain_lo", "gain_hi")}
    p_ci = bootstrap(precisions, owners, resamples, seed, None)
    label = {name: labelled(name)[0] for name in embeddings}
    return {"library": str(library), "tracks": int(len(shared)), "albums": int(len(np.unique(owners))),
            "queries": int(len(owners)), "keys": {label[name]: key for name, key in keys.items()},
            "results": {label[name]: {"map_at_10": map_ci[name], "precision_at_10": p_ci[name]}
                        for name in embeddings}}


def markdown(payload: dict[str, Any]) -> str:
    """One table per set: MAP@10 [95 % CI], gain over the descriptors [95 % CI], P@10."""
    lines = []
    for set_name, data in payload["sets"].items():
        versus = next((k[3:] for r in data["results"].values() for k in r["map_at_10"] if k.startswith("vs_")),
                      None)
        extra = f" vs {versus} [95 % CI] |" if versus else ""
        lines += [f"**{set_name}** ({data['albums']} albums, {data['queries']} queries)", "",
                  f"| embedding | MAP@10 [95 % CI] | vs descriptors [95 % CI] |{extra} P@10 |",
                  "|---|---:|---:|" + ("---:|" if versus else "") + "---:|"]
        for name, r in data["results"].items():
            m, p = r["map_at_10"], r["precision_at_10"]
            gain = f"{m['gain']:+.0%} [{m['gain_lo']:+.0%}, {m['gain_hi']:+.0%}]" if "gain" in m else "–"
            cells = [gain]
            if versus:
                v = m.get(f"vs_{versus}", {})
                cells.append(f"{v['gain']:+.0%} [{v['gain_lo']:+.0%}, {v['gain_hi']:+.0%}]" if v else "–")
            lines.append(f"| {name} | {m['mean']:.3f} [{m['lo']:.3f}, {m['hi']:.3f}] | {' | '.join(cells)} | "
                         f"{p['mean']:.3f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Evaluate and print (or write) the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="append", required=True, metavar="NAME=LIB:MUSIC")
    parser.add_argument("--embeddings", nargs="+", default=DEFAULT_EMBEDDINGS)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--versus", metavar="EMBEDDING",
                        help="Also give every embedding's paired gain over this one (e.g. default).")
    args = parser.parse_args(argv)
    started = time.monotonic()
    sets = {}
    for spec in args.set:
        name, paths = spec.split("=", 1)
        lib, music = paths.split(":", 1)
        sets[name] = evaluate_set(Path(lib), [Path(m) for m in music.split(",")], args.embeddings, args.resamples,
                                  args.seed, args.versus)
        if not args.json:
            print(markdown({"sets": {name: sets[name]}}), file=sys.stderr)
    payload = {"benchmark": "quality", "command": "python benchmarks/quality.py " + " ".join(
                   a if "=" not in a else a.split("=")[0] + "=…" for a in (argv or sys.argv[1:])),
               "embeddings": args.embeddings, "resamples": args.resamples, "seed": args.seed, "sets": sets,
               "cpus": os.cpu_count(), "seconds": round(time.monotonic() - started, 1)}
    text = json.dumps(payload, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if args.markdown:
        args.markdown.write_text(markdown(payload))
    if args.json or not args.out:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
