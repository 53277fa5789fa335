"""The built-in demo: synthesise a library of known styles, index it, recommend, and measure.

What ``soundalike demo`` (and ``make demo``) runs end to end, in a few minutes on 2 cores.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from soundalike.evaluation import label_retrieval
from soundalike.library.catalog import Library
from soundalike.library.scan import scan
from soundalike.recommend import similar
from soundalike.search.index import VectorIndex

from .progress import progress_bar


def run_demo(folder: Path, *, tracks_per_style: int = 10, duration: float = 30.0, jobs: int = 2, seed: int = 0,
             console: Console | None = None, progress_console: Console | None = None) -> dict[str, object]:
    """Generate, index, recommend and report; returns the report's numbers (also written as JSON/Markdown)."""
    from soundalike import synth

    console = console or Console()
    folder = Path(folder)
    music, index_dir = folder / "library", folder / "index"
    started = time.monotonic()

    styles = synth.style_names()
    console.print(f"[bold]1/4[/bold] synthesising {len(styles)} styles x {tracks_per_style} tracks "
                  f"of {duration:g} s into {escape(str(music))}", markup=True)
    with progress_bar("synthesising", unit="tracks", console=progress_console) as on_synth:
        made = synth.make_library(music, styles=styles, tracks_per_style=tracks_per_style, duration=duration,
                                  seed=seed, on_progress=on_synth)
    style_of = {str(t.path.resolve()): t.style for t in made}

    from soundalike.models.embedding import checkpoint_presets
    from soundalike.models.pretrained import default_checkpoints

    shipped = default_checkpoints()
    console.print(f"[bold]2/4[/bold] indexing with {jobs} worker(s) into {escape(str(index_dir))}", markup=True)
    with Library.open(index_dir) as lib:
        with progress_bar("analysing", console=progress_console) as on_progress:
            summary = scan(lib, [music], jobs=jobs, on_progress=on_progress, presets=checkpoint_presets(*shipped),
                           on_problem=lambda p: console.print(f"skip {p.line()}"))
        console.print(f"    {summary.found} files: {summary.analysed} analysed, {summary.unchanged} unchanged, "
                      f"{len(summary.problems)} errors, {summary.seconds:.1f} s")

        index = VectorIndex.from_library(lib)
        tracks = {t.id: t for t in lib.tracks(index.ids.tolist())}
        labels = [style_of.get(str(Path(tracks[int(i)].path).resolve()), "?") for i in index.ids]

        console.print("[bold]3/4[/bold] more like this (descriptor baseline):", markup=True)
        examples = []
        shown: set[str] = set()
        for tid, style in zip(index.ids.tolist(), labels, strict=True):
            if style in shown or len(shown) >= 3:
                continue
            shown.add(style)
            q, results = similar(lib, str(tid), k=5, index=index)
            console.print(f"  [bold]{escape(q.track.label if q.track else str(q.path))}[/bold]  ({style})", markup=True)
            for r in results:
                rstyle = style_of.get(str(Path(r.track.path).resolve()), "?")
                mark = "✓" if rstyle == style else "·"
                console.print(f"    {mark} {r.score:5.3f}  {r.track.label}  ({rstyle})")
            examples.append({"query": q.to_dict(), "results": [r.to_dict() for r in results]})

        scores = label_retrieval(index.vectors, labels, k=10)
        ceiling = min(tracks_per_style - 1, 10) / 10
        console.print(f"[bold]4/4[/bold] same-style retrieval over {scores.queries} queries: "
                      f"precision@10 = [bold]{scores.precision_at_k:.3f}[/bold] (ceiling {ceiling:.2f}), "
                      f"MAP@10 = {scores.map_at_k:.3f} "
                      f"(chance ≈ {(tracks_per_style - 1) / (len(labels) - 1):.3f})", markup=True)

        learned = _default_model_scores(lib, labels_of=lambda ids: [style_of.get(
            str(Path(t.path).resolve()), "?") for t in lib.tracks(ids)], console=console)

        from soundalike.plots.figures import library_map

        map_png = folder / "map.png"
        library_map(index.vectors, labels, map_png, title="Demo library: descriptor vectors (PCA), by style")
    elapsed = time.monotonic() - started
    report = {"styles": len(styles), "tracks": len(labels), "duration_s": duration,
              "precision_ceiling": ceiling,
              "scan": summary.to_dict(), "same_style": scores.to_dict(), "default_model": learned,
              "elapsed_s": round(elapsed, 1),
              "examples": examples}
    (folder / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    _write_markdown(folder / "report.md", report, scores.per_label)
    console.print(f"report: {folder / 'report.md'}  map: {map_png}  ({elapsed:.0f} s in all)")
    console.print(f"listen in a browser: soundalike serve --library {index_dir}", markup=False)
    return report


def _default_model_scores(lib: Library, labels_of: Callable[[list[int]], list[str]],
                          console: Console) -> dict[str, object] | None:
    """Embed with the shipped default models (if this build has them) and score them like the descriptors."""
    from soundalike.models.pretrained import default_checkpoints

    checkpoints = default_checkpoints()
    if not checkpoints:
        return None
    from soundalike.models.embedding import embed_library, resolve_model

    model_ids = [embed_library(lib, checkpoint)[0] for checkpoint in checkpoints]
    console.print("    the shipped default models (musicnn, pretrained on real music, and a contrastive model trained "
                  "on game soundtracks and rendered scores; neither heard synthetic music):")
    out: dict[str, object] = {"model_id": model_ids[0], "model_ids": model_ids}
    for key in (*model_ids, resolve_model(lib, "default")):
        index = VectorIndex.from_library(lib, key)
        scores = label_retrieval(index.vectors, labels_of(index.ids.tolist()), k=10)
        out[key] = scores.to_dict()
        console.print(f"      {key}: precision@10 = {scores.precision_at_k:.3f}, MAP@10 = {scores.map_at_k:.3f}")
    return out


def _learned_lines(learned: object) -> list[str]:
    if not isinstance(learned, dict):
        return []
    lines = ["## The shipped default model", "", "| embedding | precision@10 | MAP@10 |", "|---|---|---|"]
    for key, value in learned.items():
        if isinstance(value, dict):
            lines.append(f"| {key} | {value['precision_at_10']:.3f} | {value['map_at_10']:.3f} |")
    return [*lines, ""]


def _write_markdown(path: Path, report: dict[str, object], per_label: dict[str, float]) -> None:
    same = report["same_style"]
    assert isinstance(same, dict)
    lines = [
        "# soundalike demo report", "",
        f"A synthetic library of {report['styles']} styles, {report['tracks']} tracks of {report['duration_s']} s, "
        "indexed with the handcrafted-descriptor embedding (no training).", "",
        "## Same-style retrieval (leave one out, cosine similarity)", "",
        "| metric | value |", "|---|---|",
        f"| precision@10 | {same['precision_at_10']:.3f} (ceiling {report['precision_ceiling']:.3f}: "
        "a style has only so many other tracks) |",
        f"| MAP@10 | {same['map_at_10']:.3f} |",
        f"| queries | {same['queries']} |", "",
        "| style | precision@10 |", "|---|---|",
        *[f"| {k} | {v:.3f} |" for k, v in per_label.items()], "",
        *_learned_lines(report.get("default_model")),
        "## Map", "", "![library map](map.png)", "",
        f"Total time: {report['elapsed_s']} s.", "",
    ]
    path.write_text("\n".join(lines))
