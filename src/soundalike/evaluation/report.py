"""``soundalike evaluate``: every embedding of a library through seed 000's continuation protocol and same-label
retrieval, written as JSON, Markdown and PNG.

The embeddings compared are, by default, every one the library holds (the descriptors, each trained model, the
shipped default fused with the descriptors when present) plus ``spfy10``: the ten descriptor columns that stand in
for the Spotify audio features of seed 000's "Spfy" baseline (:mod:`.embeddings`).
Baselines most-popular and random come from the protocol (:mod:`.protocol`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.library.catalog import Library

from .embeddings import default_models, library_embeddings
from .playlists import EvaluationError, load_playlists
from .protocol import ContinuationReport, evaluate_continuation
from .retrieval import label_retrieval


def _labels(lib: Library, ids: np.ndarray, by: str) -> list[str]:
    tracks = {t.id: t for t in lib.tracks(ids.tolist())}
    return [getattr(tracks[int(i)], by).strip().casefold() if int(i) in tracks else "" for i in ids]


def retrieval_table(lib: Library, embeddings: dict[str, tuple[np.ndarray, np.ndarray]], by: str = "album",
                    k: int = 10) -> dict[str, dict[str, Any]]:
    """Same-``by`` (album or artist) retrieval of every embedding: precision@k and MAP@k, leave one out.

    Tracks without that tag are neither queries nor answers."""
    out: dict[str, dict[str, Any]] = {}
    for name, (ids, vectors) in embeddings.items():
        labels = np.array(_labels(lib, ids, by))
        keep = labels != ""
        scores = label_retrieval(vectors[keep], labels[keep].tolist(), k=k)
        out[name] = scores.to_dict()
    return out


def _retrieval_markdown(table: dict[str, dict[str, Any]], by: str, k: int) -> str:
    lines = [f"| Embedding | precision@{k} | MAP@{k} | queries |", "|---|---:|---:|---:|"]
    best = max((v[f"map_at_{k}"] for v in table.values()), default=0.0)
    for name, v in table.items():
        m = f"{v[f'map_at_{k}']:.3f}"
        lines.append(f"| {name} | {v[f'precision_at_{k}']:.3f} | {f'**{m}**' if v[f'map_at_{k}'] == best else m} "
                     f"| {v['queries']} |")
    return "\n".join(lines)


def run_evaluation(lib: Library, out_dir: str | os.PathLike[str], *, models: Sequence[str] | None = None,
                   playlists: str = "album", track_map: str | None = None, scores: Sequence[str] = ("max", "mean",
                   "topk", "cluster"), top_n: Sequence[int] = (5, 10), holdout_fraction: float = 0.5,
                   min_length: int = 10, seed: int = 0, retrieval_by: str | None = "album", k: int = 10,
                   on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Evaluate; writes ``report.json``, ``report.md`` and ``score_methods.png`` into ``out_dir`` and returns the
    JSON payload. With too few playlists the continuation part is skipped (and said why), retrieval still runs."""
    started = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(models) if models else default_models(lib)
    embeddings = library_embeddings(lib, names)
    payload: dict[str, Any] = {"library": str(lib.root), "embeddings": names, "seed": seed}
    md = ["# soundalike evaluation", "", f"Library `{lib.root}`; embeddings: {', '.join(f'`{n}`' for n in names)}.",
          ""]
    report: ContinuationReport | None = None
    try:
        playlist_set = load_playlists(lib, playlists, track_map=track_map, min_length=min_length)
        report = evaluate_continuation(playlist_set, embeddings, scores=scores, top_n=top_n,
                                       holdout_fraction=holdout_fraction, seed=seed, on_progress=on_progress)
    except EvaluationError as exc:
        payload["continuation"] = {"skipped": str(exc)}
        md += ["## Playlist continuation", "", f"Skipped: {exc}", ""]
    if report is not None:
        payload["continuation"] = report.to_dict()
        md += ["## Playlist continuation (seed 000 §5, table 3)", "",
               f"{len(report.playlists)} playlists from `{playlists}` (≥ {min_length} tracks), "
               f"{holdout_fraction:.0%} of each held out; candidates: {report.catalogue} tracks. "
               "Each embedding with its best score method (by MAP at the smallest N).", "",
               report.to_markdown(), "", "All score methods (seed 000 fig. 4):", "",
               report.to_markdown(best_only=False), ""]
        dropped = report.playlists.report()
        if dropped:
            md += ["```", dropped, "```", ""]
        try:
            from .charts import plot_score_comparison

            png = plot_score_comparison(report, out / "score_methods.png")
            payload["score_methods_png"] = str(png)
            md += ["![score methods](score_methods.png)", ""]
        except ValueError:
            pass
    if retrieval_by:
        table = retrieval_table(lib, embeddings, retrieval_by, k)
        payload["retrieval"] = {"by": retrieval_by, "k": k, "results": table}
        md += [f"## Same-{retrieval_by} retrieval (leave one out, cosine)", "", _retrieval_markdown(table, retrieval_by,
                                                                                                    k), ""]
    payload["seconds"] = round(time.monotonic() - started, 2)
    (out / "report.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
    (out / "report.md").write_text("\n".join(md))
    return payload
