"""Export the catalogue's tracks, tags and vectors to npz, Parquet or CSV for other tools.

By default the vectors are the **search vectors** that ``similar`` compares (unit length, each part z-scored with
the index's frozen statistics and weighted; cosine = inner product), for any key: ``default`` (the descriptors
fused with the shipped model), ``descriptor``, a family, a model id or a fused key. With ``raw=True`` they are
the stored values instead (the parts side by side, descriptor columns by name). Segment sequences are exported in
the same space as the vectors (search space: every learned part's segments transformed like its pooled vector,
a part without a time axis repeated on every row). npz and Parquet files say which key and parts their vectors
are (``meta`` / schema metadata); CSV columns are named by part (``descriptor:mfcc_0_mean``, ``contrastive-…:v3``).
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.audio.descriptors import DESCRIPTOR_NAMES
from soundalike.library.catalog import DESCRIPTOR_MODEL, Library
from soundalike.models.pretrained import DEFAULT_NAME
from soundalike.recommend.queries import load_index
from soundalike.search.space import load_raw

FORMATS = ("npz", "parquet", "csv")


@dataclass
class ExportSummary:
    """What an export wrote: how many tracks, which key and parts, raw or search vectors."""

    tracks: int
    model: str
    parts: list[dict[str, Any]]
    space: str  # "search" or "raw"
    with_segments: int = 0
    columns: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One printable line for the command line."""
        parts = " + ".join(f"{p['model']} ({p['dim']}" + (f", through {p['metric']})" if p.get("metric") and
                                                          self.space == "search" else ")") for p in self.parts)
        what = "search vectors (unit length, as `similar` compares them)" if self.space == "search" else \
            "stored vectors (raw)"
        return (f"{self.tracks} tracks, {what} of {self.model}: {parts}; "
                f"{self.with_segments} with segment sequences")


def _column_names(parts: list[dict[str, Any]], raw: bool) -> list[str]:
    names: list[str] = []
    for p in parts:
        mapped = p.get("metric") and not raw  # a learned metric's columns mix the stored ones
        if p["model"] == DESCRIPTOR_MODEL and p["dim"] == len(DESCRIPTOR_NAMES) and not mapped:
            names += list(DESCRIPTOR_NAMES) if len(parts) == 1 else [f"descriptor:{n}" for n in DESCRIPTOR_NAMES]
        else:
            label = f"{p['model']}#{p['metric']}" if mapped else p["model"]
            names += [f"v{i}" if len(parts) == 1 and not mapped else f"{label}:v{i}" for i in range(p["dim"])]
    return names


def export(lib: Library, out: str | os.PathLike[str], fmt: str | None = None, model: str = DEFAULT_NAME, *,
           raw: bool = False) -> ExportSummary:
    """Write every track embedded by ``model`` (ids, paths, tags, vectors, segment sequences) to ``out``.

    The format comes from ``fmt`` or the file extension; the module doc says which vectors are written.
    """
    out = Path(out)
    fmt = (fmt or out.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    index = load_index(lib, model)
    key = index.embedding.model
    parts = index.embedding.describe()["parts"]
    tracks = {t.id: t for t in lib.tracks(index.ids.tolist())}
    ids = np.array([i for i in index.ids.tolist() if i in tracks], dtype=np.int64)
    rows = [tracks[int(i)] for i in ids]
    if raw:
        raw_ids, raw_vectors, _ = load_raw(lib, key)
        vectors = raw_vectors[np.searchsorted(raw_ids, ids)]
        learned = [p["model"] for p in parts if p["model"] != DESCRIPTOR_MODEL]
        segments = [lib.segments(int(i), learned[0]) for i in ids] if len(learned) == 1 else [None] * len(ids)
    else:
        vectors = index.vectors_of(ids)
        segments = [None] * len(ids)
        if index.embedding.has_sequences():
            kept, seqs = index.sequences(lib, ids.tolist())
            found = dict(zip(kept, seqs, strict=True))
            segments = [found.get(int(i)) for i in ids]
    names = _column_names(parts, raw)
    summary = ExportSummary(len(rows), key, parts, "raw" if raw else "search",
                            sum(1 for s in segments if s is not None), names)
    meta = {"model": key, "requested": model, "space": summary.space, "parts": parts,
            "smoothed": bool(index.smoothed and not raw)}  # ~nnK: vectors averaged with their nearest tracks
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "npz":
        seg_lengths = np.array([0 if s is None else len(s) for s in segments], dtype=np.int64)
        seg_all = [s for s in segments if s is not None]
        seg_dim = seg_all[0].shape[1] if seg_all else vectors.shape[1]
        np.savez_compressed(
            out, track_id=ids, path=np.array([t.path for t in rows]), artist=np.array([t.artist for t in rows]),
            album=np.array([t.album for t in rows]), title=np.array([t.title for t in rows]),
            duration=np.array([t.duration for t in rows]), vectors=vectors, vector_names=np.array(names),
            model=np.array(key), meta=np.array(json.dumps(meta)), segment_lengths=seg_lengths,
            segments=np.concatenate(seg_all) if seg_all else np.zeros((0, seg_dim), np.float32))
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
        pq.write_table(table.replace_schema_metadata({"model": key, "vector_names": ",".join(names),
                                                      "soundalike": json.dumps(meta)}), out)
    else:
        with open(out, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["track_id", "path", "artist", "album", "title", "duration", *names])
            for t, v in zip(rows, vectors, strict=True):
                writer.writerow([t.id, t.path, t.artist, t.album, t.title, f"{t.duration:.3f}",
                                 *(f"{x:.6g}" for x in v)])
    return summary
