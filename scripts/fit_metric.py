"""Fit a learned metric (RCA, :mod:`soundalike.search.metric`) of one embedding on the *train* albums of a library.

    python scripts/fit_metric.py --library LIB --music DEV,TRAIN --model descriptor --shrink 0.1 --out metric.npz

Only tracks of the train albums of ``benchmarks/album_sets.json`` are used (an album is the first folder below a
music root, as ``benchmarks/quality.py`` counts them); validation and test albums never reach the fit (issue 12).
``--model`` is ``descriptor``, a model id the library holds (``contrastive-f79d2f66-s16``) or a family name
(its newest embedding); prints the metric's
name, which a search key gives after the part (``descriptor#rca-1a2b3c4d``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from quality import album_of  # noqa: E402  (the benchmark's own album rule)

from soundalike.audio.descriptors import DESCRIPTOR_VERSION  # noqa: E402
from soundalike.library.catalog import DESCRIPTOR_MODEL, CatalogError, Library  # noqa: E402
from soundalike.models.embedding import resolve_model  # noqa: E402
from soundalike.search.metric import fit_rca  # noqa: E402


def train_albums(sets_file: Path) -> set[str]:
    """The album names of the train set (development and train-package albums; synthetic music has none here)."""
    train = json.loads(sets_file.read_text())["train"]
    return {a for key in ("dev", "train") for a in train.get(key, [])}


def main(argv: list[str] | None = None) -> int:
    """Fit, save, print the name."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--library", type=Path, required=True)
    parser.add_argument("--music", required=True, help="music roots, comma-separated (albums are their folders)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--shrink", type=float, default=0.1)
    parser.add_argument("--sets", type=Path, default=ROOT / "benchmarks" / "album_sets.json")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    wanted = train_albums(args.sets)
    with Library.open(args.library, create=False) as lib:
        try:
            args.model = resolve_model(lib, args.model)  # a family name: its newest embedding's model id
        except CatalogError as exc:
            print(f"{args.library}: {exc}", file=sys.stderr)
            return 1
        ids, raw = lib.vectors(args.model)
        albums = np.array(album_of([t.path for t in lib.tracks(ids.tolist())],
                                   [Path(m) for m in args.music.split(",")]))
    rows = np.isin(albums, sorted(wanted))
    if not rows.any():
        print(f"{args.library}: no tracks of the train albums embedded with {args.model}", file=sys.stderr)
        return 1
    info = {"fitted_on": sorted(set(albums[rows].tolist())), "sets": "benchmarks/album_sets.json: train"}
    if args.model == DESCRIPTOR_MODEL:
        info["descriptor_version"] = DESCRIPTOR_VERSION
    metric = fit_rca(args.model, raw[rows], albums[rows], args.shrink, info)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    metric.save(args.out)
    print(f"{metric.name}\t{args.model}\t{int(rows.sum())} tracks of {len(info['fitted_on'])} train albums\t{args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
