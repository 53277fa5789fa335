"""Model comparison: same-album retrieval, training and embedding speed of every model family, one JSON.

    python benchmarks/models.py --library LIB --music-root DIR [--heldout-library HLIB --heldout-root HDIR]
                                [--models melae contrastive ...] [--epochs N] [--epochs-for clothier=10 ...]
                                [--checkpoints DIR] [--interactions PATH|album-folders] [--json] [--out FILE]
                                [--markdown FILE]

LIB must already be indexed (``soundalike index DIR --library LIB``); DIR is the music root whose first-level
folders are the albums (as ``scripts/fetch_debian_music.sh`` lays them out). For every model: train on LIB (or
reuse a checkpoint from ``--checkpoints``), embed, and measure

- same-album retrieval by cosine over pooled vectors: MAP@10 and precision@10 (leave one out), on LIB itself
  (the model saw these tracks, not their albums: what a library owner training on their own music gets) and, with
  ``--heldout-library``, on music the model never saw (``fetch_debian_music.sh --set heldout``);
- the same for the model fused with the descriptors (``descriptor+MODEL``: each part z-scored, equal weights);
- seconds per training epoch, training throughput (segments/s) and embedding throughput (tracks/s).

The handcrafted-descriptor baseline is measured in the same run. ``--interactions album-folders`` gives
cf-regression playlists made of LIB's albums: its LIB numbers are then supervised by the very labels they are
scored on (marked ``"supervised_by_albums"``); only its held-out numbers compare with the others. Without
``--library`` a small synthetic library is built (styles as albums) so the script runs anywhere.
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

SEGMENTS_PER_STEP = {"contrastive": 2}  # two views per track


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
    """MAP@10 and precision@10 of same-album retrieval with one (possibly fused) embedding."""
    from soundalike.evaluation import embedding_vectors, label_retrieval

    ids, vectors = embedding_vectors(lib, model_key)
    scores = label_retrieval(vectors, album_labels(lib, ids.tolist(), music_root), k=10)
    return {"map_at_10": round(scores.map_at_k, 4), "precision_at_10": round(scores.precision_at_k, 4),
            "queries": scores.queries}


def album_playlists(music_root: Path, out: Path) -> Path:
    """One M3U per first-level folder of ``music_root`` (listening data made of albums, for cf-regression)."""
    from soundalike.audio.decode import is_audio_path

    out.mkdir(parents=True, exist_ok=True)
    for album in sorted(p for p in music_root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(str(f.resolve()) for f in album.rglob("*") if f.is_file() and is_audio_path(f))
        (out / f"{album.name}.m3u").write_text("#EXTM3U\n" + "\n".join(files) + "\n")
    return out


def benchmark_model(lib: Any, name: str, epochs: int | None, checkpoints: Path, music_root: Path | None,
                    options: dict[str, Any], heldout: tuple[Any, Path | None] | None) -> dict[str, Any]:
    """Train (or reuse) one family, embed, and measure it."""
    from soundalike.models import build, load_checkpoint
    from soundalike.models.checkpoint import read_checkpoint
    from soundalike.models.embedding import embed_library
    from soundalike.models.training import last_checkpoint_path, train

    ckpt = checkpoints / f"{name}.pt"
    timing = checkpoints / f"{name}.timing.json"
    row: dict[str, Any] = {"model": name}
    last = last_checkpoint_path(ckpt)
    config = build(name).config
    wanted = epochs or config.epochs
    resume = last.exists() and int(read_checkpoint(last).get("epoch", 0)) < wanted  # a run cut short goes on
    if ckpt.exists() and not resume:
        _, payload = load_checkpoint(ckpt)
        row.update({"trained": "reused checkpoint", "epochs": payload.get("epoch")})
        if timing.exists():
            row.update(json.loads(timing.read_text()))
    else:
        steps: dict[str, int] = {"n": 0}

        def count(stage: str, done: int, total: int, info: dict[str, float]) -> None:
            if stage == "train":  # steps of this run only (a resumed run's counter starts where it stopped)
                steps.setdefault("first", done - 1)
                steps["n"] = done - steps["first"]

        started = time.perf_counter()
        result = train(lib, name, ckpt, epochs=wanted, on_progress=count, options=options or None, resume=resume)
        seconds = time.perf_counter() - started
        per_step = config.batch_size * SEGMENTS_PER_STEP.get(name, 1)
        measured = {"seconds_per_epoch": round(seconds / max(result.epochs_run, 1), 2),
                    "train_segments_per_s": round(steps["n"] * per_step / seconds, 1)}
        timing.write_text(json.dumps(measured))
        row.update({"trained": "resumed" if resume else "now", "epochs": wanted, **measured})
    started = time.perf_counter()
    model_id, count_embedded = embed_library(lib, ckpt, only_missing=False)
    row["embed_tracks_per_s"] = round(count_embedded / (time.perf_counter() - started), 2)
    row["model_id"] = model_id
    row["dev"] = retrieval_row(lib, model_id, music_root)
    row["dev_fused"] = retrieval_row(lib, f"descriptor+{model_id}", music_root)
    if heldout is not None:
        hlib, hroot = heldout
        embed_library(hlib, ckpt, only_missing=False)
        row["heldout"] = retrieval_row(hlib, model_id, hroot)
        row["heldout_fused"] = retrieval_row(hlib, f"descriptor+{model_id}", hroot)
    return row


def markdown(payload: dict[str, Any]) -> str:
    """The comparison as a Markdown table (MAP@10 / precision@10; ratios to the descriptor baseline)."""
    rows = payload["results"]
    base = rows[0]
    held = "heldout" in base
    head = ["model", "dev MAP@10", "dev P@10", "dev MAP vs descr."]
    if held:
        head += ["held-out MAP@10", "held-out P@10", "held-out MAP vs descr."]
    head += ["fused dev MAP@10"] + (["fused held-out MAP@10"] if held else [])
    head += ["epochs", "s/epoch", "train seg/s", "embed tracks/s"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]

    def ratio(row: dict[str, Any], key: str) -> str:
        return f"{row[key]['map_at_10'] / max(base[key]['map_at_10'], 1e-9):.2f}×" if key in row else "–"

    for r in rows:
        if "dev" not in r:
            why = r.get("error") or r.get("skipped")
            lines.append(f"| {r['model']} ({why}) | " + " | ".join(["–"] * (len(head) - 1)) + " |")
            continue
        name = r["model"] + (" †" if r.get("supervised_by_albums") else "")
        cells = [name, f"{r['dev']['map_at_10']:.3f}", f"{r['dev']['precision_at_10']:.3f}", ratio(r, "dev")]
        if held:
            cells += [f"{r['heldout']['map_at_10']:.3f}", f"{r['heldout']['precision_at_10']:.3f}",
                      ratio(r, "heldout")]
        cells.append(f"{r['dev_fused']['map_at_10']:.3f}" if "dev_fused" in r else "–")
        if held:
            cells.append(f"{r['heldout_fused']['map_at_10']:.3f}" if "heldout_fused" in r else "–")
        cells += [str(r.get("epochs", "–")), str(r.get("seconds_per_epoch", "–")),
                  str(r.get("train_segments_per_s", "–")),
                  str(r.get("embed_tracks_per_s", "–"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _synthetic(root: Path) -> tuple[Path, Path]:
    from soundalike import synth
    from soundalike.library.catalog import Library
    from soundalike.library.scan import scan

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
    parser.add_argument("--heldout-library", type=Path, help="An indexed library of music no model trains on.")
    parser.add_argument("--heldout-root", type=Path, help="Its music root (first-level folders are albums).")
    parser.add_argument("--models", nargs="+", default=None, help="Families to compare (default: all).")
    parser.add_argument("--epochs", type=int, default=None, help="Epochs for every family (default: each paper's).")
    parser.add_argument("--epochs-for", nargs="*", default=[], metavar="NAME=N", help="Epochs for one family.")
    parser.add_argument("--checkpoints", type=Path, default=None, help="Folder for (or of existing) checkpoints.")
    parser.add_argument("--interactions", default=None,
                        help="Listening data for cf-regression, or 'album-folders' (playlists = LIB's albums).")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's).")
    parser.add_argument("--json", action="store_true", help="Print only JSON.")
    parser.add_argument("--out", type=Path, help="Also write the JSON here.")
    parser.add_argument("--markdown", type=Path, help="Also write the table as Markdown here.")
    args = parser.parse_args(argv)

    import torch

    from soundalike.library.catalog import Library
    from soundalike.models import model_names

    if args.threads:
        torch.set_num_threads(args.threads)
    per_family = {k: int(v) for k, v in (item.split("=", 1) for item in args.epochs_for)}
    library, music_root = args.library, args.music_root
    if library is None:
        library, music_root = _synthetic(Path(tempfile.mkdtemp(prefix="soundalike-models-")))
        music_root = None  # synthetic: the album tag names the style's album
    checkpoints = args.checkpoints or Path(tempfile.mkdtemp(prefix="soundalike-ckpt-"))
    checkpoints.mkdir(parents=True, exist_ok=True)
    names = args.models or model_names()
    rows = []
    hlib = Library.open(args.heldout_library, create=False) if args.heldout_library else None
    heldout = (hlib, args.heldout_root) if hlib is not None else None
    started = time.perf_counter()
    with Library.open(library, create=False) as lib:
        base: dict[str, Any] = {"model": "descriptor (baseline)", "dev": retrieval_row(lib, "descriptor", music_root)}
        if hlib is not None:
            base["heldout"] = retrieval_row(hlib, "descriptor", args.heldout_root)
        rows.append(base)
        for name in names:
            options: dict[str, Any] = {}
            if name == "cf-regression":
                if not args.interactions:
                    rows.append({"model": name, "skipped": "needs --interactions (listening data)"})
                    continue
                if args.interactions == "album-folders":
                    if music_root is None:
                        rows.append({"model": name, "skipped": "album-folders needs --music-root"})
                        continue
                    options = {"interactions": album_playlists(music_root, checkpoints / "album-playlists")}
                else:
                    options = {"interactions": Path(args.interactions)}
            try:
                row = benchmark_model(lib, name, per_family.get(name, args.epochs), checkpoints, music_root,
                                      options, heldout)
                if name == "cf-regression" and args.interactions == "album-folders":
                    row["supervised_by_albums"] = True
                rows.append(row)
            except Exception as exc:  # noqa: BLE001 - one family failing must not hide the others' numbers
                rows.append({"model": name, "error": f"{type(exc).__name__}: {exc}"})
            if not args.json:
                print(json.dumps(rows[-1]), file=sys.stderr)
    if hlib is not None:
        hlib.close()
    payload = {"benchmark": "models", "library": str(library), "music_root": str(music_root),
               "heldout_library": str(args.heldout_library) if args.heldout_library else None,
               "checkpoints": str(checkpoints), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
               "load_average": os.getloadavg(), "seconds": round(time.perf_counter() - started, 1), "results": rows}
    text = json.dumps(payload, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.markdown:
        args.markdown.write_text(markdown(payload) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
