"""Export the catalogue's tracks, tags and vectors to npz, Parquet or CSV for other tools."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from soundalike.audio.descriptors import DESCRIPTOR_NAMES
from soundalike.library.catalog import DESCRIPTOR_MODEL, CatalogError, Library

FORMATS = ("npz", "parquet", "csv")


def export(lib: Library, out: str | os.PathLike[str], fmt: str | None = None,
           model: str = DESCRIPTOR_MODEL) -> int:
    """Write every track embedded by ``model`` (ids, paths, tags, pooled vectors, segment sequences) to ``out``.

    The format comes from ``fmt`` or the file extension. Returns the number of tracks written.
    """
    out = Path(out)
    fmt = (fmt or out.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    ids, vectors = lib.vectors(model)
    if len(ids) == 0:
        raise CatalogError(f"nothing to export: no tracks embedded with {model!r} in {lib.root}")
    tracks = {t.id: t for t in lib.tracks(ids.tolist())}
    keep = np.array([int(i) in tracks for i in ids])
    ids, vectors = ids[keep], vectors[keep]
    rows = [tracks[int(i)] for i in ids]
    segments = [lib.segments(int(i), model) for i in ids]
    names = (list(DESCRIPTOR_NAMES) if model == DESCRIPTOR_MODEL and vectors.shape[1] == len(DESCRIPTOR_NAMES)
             else [f"v{i}" for i in range(vectors.shape[1])])
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "npz":
        seg_lengths = np.array([0 if s is None else len(s) for s in segments], dtype=np.int64)
        seg_all = [s for s in segments if s is not None]
        np.savez_compressed(
            out, track_id=ids, path=np.array([t.path for t in rows]), artist=np.array([t.artist for t in rows]),
            album=np.array([t.album for t in rows]), title=np.array([t.title for t in rows]),
            duration=np.array([t.duration for t in rows]), vectors=vectors, vector_names=np.array(names),
            model=np.array(model), segment_lengths=seg_lengths,
            segments=np.concatenate(seg_all) if seg_all else np.zeros((0, vectors.shape[1]), np.float32))
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({
            "track_id": ids, "path": [t.path for t in rows], "artist": [t.artist for t in rows],
            "album": [t.album for t in rows], "title": [t.title for t in rows],
            "duration": [t.duration for t in rows],
            "vector": pa.array(list(vectors), type=pa.list_(pa.float32())),
            "segments": pa.array([None if s is None else s.tolist() for s in segments],
                                 type=pa.list_(pa.list_(pa.float32()))),
        })
        pq.write_table(table.replace_schema_metadata({"model": model, "vector_names": ",".join(names)}), out)
    else:
        with open(out, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["track_id", "path", "artist", "album", "title", "duration", *names])
            for t, v in zip(rows, vectors, strict=True):
                writer.writerow([t.id, t.path, t.artist, t.album, t.title, f"{t.duration:.3f}",
                                 *(f"{x:.6g}" for x in v)])
    return len(rows)
