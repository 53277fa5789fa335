"""Model comparison: same-album retrieval, training and embedding speed of every model family, one JSON.

    python benchmarks/models.py --library LIB --music-root DIR [--models melae contrastive ...] [--epochs N]
                                [--checkpoints DIR] [--json] [--out FILE]

LIB must already be indexed (``soundalike index DIR --library LIB``); DIR is the music root whose first-level
folders are the albums (as ``scripts/fetch_debian_music.sh`` lays them out). For every model: train (or reuse a
checkpoint from ``--checkpoints``), embed the library, and measure

- same-album retrieval by cosine over pooled vectors: MAP@10 and precision@10 (leave one out);
- seconds per training epoch and training throughput (segments/s, from the steps and batch sizes);
- embedding throughput (tracks/s) from cached spectrograms.

The handcrafted-descriptor baseline is measured in the same run. Without ``--library`` a small synthetic library
is built (styles as albums) so the script runs anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def album_labels(lib: Any, ids: list[int], music_root: Path | None) -> list[str]:
    """Album of each track: first folder below ``music_root`` (else the album tag)."""
    tracks = {t.id: t for t in lib.tracks(ids)}
    labels = []
    for i in ids:
        t = tracks[int(i)]
        if music_root is not None:
            rel = Path(t.path).resolve().relative_to(music_root.resolve())
            labels.append(rel.parts[0] if len(rel.parts) > 1 else t.album)
        else:
            labels.append(t.album)
    return labels


def retrieval_row(lib: Any, model_key: str, music_root: Path | None) -> dict[str, Any]:
    """MAP@10 and precision@10 of same-album retrieval with one embedding."""
    from soundalike.evaluation import label_retrieval
    from soundalike.index import VectorIndex

    index = VectorIndex.from_library(lib, model_key)
    scores = label_retrieval(index.vectors, album_labels(lib, index.ids.tolist(), music_root), k=10)
    return {"map_at_10": round(scores.map_at_k, 4), "precision_at_10": round(scores.precision_at_k, 4),
            "queries": scores.queries, "per_album_precision": scores.to_dict()["precision_per_label"]}


def benchmark_model(lib: Any, name: str, epochs: int | None, checkpoints: Path, music_root: Path | None,
                    options: dict[str, Any]) -> dict[str, Any]:
    """Train (or reuse) one family, embed, and measure it."""
    from soundalike.embed import embed_library
    from soundalike.models import build, load_checkpoint
    from soundalike.training import train

    ckpt = checkpoints / f"{name}.pt"
    row: dict[str, Any] = {"model": name}
    if ckpt.exists():
        _, payload = load_checkpoint(ckpt)
        row["trained"] = "reused checkpoint"
        row["epochs"] = payload.get("epoch")
        row["seconds_per_epoch"] = payload.get("metrics", {}).get("seconds_per_epoch")
        row["train_segments_per_s"] = payload.get("metrics", {}).get("segments_per_s")
    else:
        steps = {"n": 0}

        def count(stage: str, done: int, total: int, info: dict[str, float]) -> None:
            if stage == "train":
                steps["n"] = done

        started = time.perf_counter()
        result = train(lib, name, ckpt, epochs=epochs, on_progress=count, options=options or None)
        seconds = time.perf_counter() - started
        model = build(name, epochs=epochs)
        row["trained"] = "now"
        row["epochs"] = result.epochs_run
        row["seconds_per_epoch"] = round(seconds / max(result.epochs_run, 1), 2)
        segments_per_step = model.config.batch_size * (2 if name == "contrastive" else 1)
        row["train_segments_per_s"] = round(steps["n"] * segments_per_step / seconds, 1)
    started = time.perf_counter()
    model_id, count_embedded = embed_library(lib, ckpt, only_missing=False)
    row["embed_tracks_per_s"] = round(count_embedded / (time.perf_counter() - started), 2)
    row["model_id"] = model_id
    row.update(retrieval_row(lib, model_id, music_root))
    return row


def _synthetic(root: Path) -> tuple[Path, Path]:
    from soundalike import synth
    from soundalike.catalog import Library
    from soundalike.scan import scan

    music = root / "music"
    synth.make_library(music, tracks_per_style=6, duration=20.0, seed=11)
    with Library.open(root / "lib") as lib:
        scan(lib, [music], jobs=os.cpu_count() or 1)
    return root / "lib", music


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--library", type=Path, help="An indexed library (default: a synthetic one).")
    parser.add_argument("--music-root", type=Path, help="Music root whose first-level folders are albums.")
    parser.add_argument("--models", nargs="+", default=None, help="Families to compare (default: all).")
    parser.add_argument("--epochs", type=int, default=None, help="Epochs for every family (default: each paper's).")
    parser.add_argument("--checkpoints", type=Path, default=None, help="Folder for (or of existing) checkpoints.")
    parser.add_argument("--interactions", type=Path, default=None, help="Listening data for cf-regression.")
    parser.add_argument("--json", action="store_true", help="Print only JSON.")
    parser.add_argument("--out", type=Path, help="Also write the JSON here.")
    args = parser.parse_args(argv)

    from soundalike.catalog import Library
    from soundalike.models import model_names

    library, music_root = args.library, args.music_root
    if library is None:
        library, music_root = _synthetic(Path(tempfile.mkdtemp(prefix="soundalike-models-")))
        music_root = None  # synthetic: the album tag names the style's album
    checkpoints = args.checkpoints or Path(tempfile.mkdtemp(prefix="soundalike-ckpt-"))
    checkpoints.mkdir(parents=True, exist_ok=True)
    names = args.models or model_names()
    rows = []
    with Library.open(library, create=False) as lib:
        base = {"model": "descriptor (baseline)", **retrieval_row(lib, "descriptor", music_root)}
        rows.append(base)
        for name in names:
            options = {"interactions": args.interactions} if name == "cf-regression" and args.interactions else {}
            if name == "cf-regression" and not options:
                rows.append({"model": name, "skipped": "needs --interactions (listening data)"})
                continue
            try:
                rows.append(benchmark_model(lib, name, args.epochs, checkpoints, music_root, options))
            except Exception as exc:  # noqa: BLE001 - one family failing must not hide the others' numbers
                rows.append({"model": name, "error": f"{type(exc).__name__}: {exc}"})
            if not args.json:
                print(json.dumps(rows[-1]), file=sys.stderr)
    for row in rows:
        if "map_at_10" in row:
            row["map_vs_descriptor"] = round(row["map_at_10"] / max(base["map_at_10"], 1e-9), 3)
    payload = {"benchmark": "models", "library": str(library), "music_root": str(music_root),
               "checkpoints": str(checkpoints), "cpus": os.cpu_count(), "results": rows}
    text = json.dumps(payload, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
