"""Vector search over pooled track vectors: exact (faiss ``IndexFlatIP``) or, for large libraries, approximate.

Stored vectors become search vectors by the z-scoring of :mod:`soundalike.search.space`. One rule serves exact
and approximate search alike: the statistics are **frozen with the index** — fitted when it is built, saved in
``LIBRARY/indexes/<key>.stats.json`` and reused on every open, so a track's search vector (and every score)
stays put while other tracks come and go — and **refreshed on rebuild**, which happens when the library has
:func:`~soundalike.search.ann.outgrown` what the index was built on (grown or shrunk 2×) or crossed
:data:`~soundalike.search.ann.EXACT_MAX_TRACKS`, where exact search gives way to an IVF index
(:mod:`soundalike.search.ann`, persisted beside the statistics and brought up to date on every open: tracks added
to the library are added to it, removed ones removed).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from soundalike.audio import descriptors
from soundalike.library.catalog import DESCRIPTOR_MODEL, Library

from .ann import AnnError, AnnIndex, choose_kind, outgrown
from .space import Embedding, fit_embedding, load_raw, model_parts

INDEX_DIR = "indexes"


def index_paths(lib: Library, model: str) -> tuple[Path, Path]:
    """Where the persisted ANN index of ``model`` and its frozen statistics live in the library folder."""
    safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", model)
    folder = Path(lib.root) / INDEX_DIR
    return folder / f"{safe}.ann", folder / f"{safe}.stats.json"


def _read_stats(path: Path, model: str, dims: list[int]) -> Embedding | None:
    try:
        embedding = Embedding.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing, unreadable or from another version: fitted again
    if embedding.model != model or [p.dim for p in embedding.parts] != dims:
        return None
    if DESCRIPTOR_MODEL in model_parts(model) and embedding.descriptor_version != descriptors.DESCRIPTOR_VERSION:
        return None  # fitted on descriptors another version computed
    return embedding


def _write_stats(path: Path, embedding: Embedding) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(embedding.to_json()))
    tmp.replace(path)


def _updated_ann(index_path: Path, embedding: Embedding, ids: np.ndarray, vectors: np.ndarray, fresh: bool
                 ) -> tuple[AnnIndex, bool]:
    """The IVF index of ``vectors``: the saved one brought up to date (unless ``fresh`` statistics were fitted), else
    a new one; and whether it differs from the saved file."""
    index: AnnIndex | None = None
    if not fresh and index_path.exists():
        try:
            index = AnnIndex.load(index_path, dim=embedding.dim)
        except AnnError:
            index = None  # unreadable or from another version: built again below
    if index is None:
        return AnnIndex.build(ids, vectors, kind="ivf"), True
    new = ~np.isin(ids, index.ids)
    changed = bool(new.any())
    if changed:
        index.add(ids[new], vectors[new])
    changed = index.remove(np.setdiff1d(index.ids, ids)) > 0 or changed
    return index, changed


class VectorIndex:
    """Top-k cosine search over track vectors, returning track ids: exact, or through a persisted ANN index."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, embedding: Embedding, ann: AnnIndex | None = None
                 ) -> None:
        """An index of unit search ``vectors`` (rows of ``embedding``'s space) under track ``ids``: searched
        through ``ann`` when given (built over the same vectors and ids), else exactly."""
        self.ids = np.asarray(ids, dtype=np.int64)
        self.embedding = embedding
        self.vectors = vectors if len(self.ids) else np.zeros((0, max(embedding.dim, 1)), np.float32)
        self.ann = ann if ann is not None else AnnIndex.build(self.ids, self.vectors, kind="flat")
        self._row = {int(t): i for i, t in enumerate(self.ids)}

    @classmethod
    def from_library(cls, lib: Library, model: str = DESCRIPTOR_MODEL, *, ann: bool | None = None) -> VectorIndex:
        """The index of every track the library has embedded with ``model`` (every part of a fused key), with the
        statistics frozen for it (module doc). ``ann`` forces (True) or forbids (False) the approximate index,
        which by default serves libraries above :data:`soundalike.search.ann.EXACT_MAX_TRACKS` tracks."""
        ids, raw, dims = load_raw(lib, model)
        kind = "ivf" if (ann if ann is not None else choose_kind(len(ids)) == "ivf") else "flat"
        index_path, stats_path = index_paths(lib, model)
        embedding = _read_stats(stats_path, model, dims)
        fresh = embedding is None or embedding.kind != kind or outgrown(embedding.built_on, len(ids))
        if fresh or embedding is None:
            embedding = fit_embedding(model, raw, dims, kind)
        vectors = embedding.transform(raw)
        index, changed = (None, fresh) if kind == "flat" else _updated_ann(index_path, embedding, ids, vectors, fresh)
        result = cls(ids, vectors, embedding, ann=index)
        if changed:
            try:
                _write_stats(stats_path, embedding)
                if index is not None:
                    index.save(index_path)
            except OSError:
                pass  # a read-only library still answers; the statistics are fitted again next time
        return result

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, track_id: object) -> bool:
        return isinstance(track_id, int | np.integer) and int(track_id) in self._row

    def vector_of(self, track_id: int) -> np.ndarray:
        """The search vector of an indexed track."""
        try:
            return self.vectors[self._row[int(track_id)]]
        except KeyError:
            raise KeyError(f"track {track_id} is not in the index") from None

    def vectors_of(self, track_ids: np.ndarray | list[int]) -> np.ndarray:
        """The search vectors ``(n, dim)`` of indexed tracks, in the given order."""
        rows = [self._row[int(t)] for t in track_ids]
        return self.vectors[rows] if rows else self.vectors[:0]

    def search(self, query: np.ndarray, k: int, exclude: set[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` ``(track_ids, cosine scores)`` for one unit-length search vector, skipping ``exclude``."""
        exclude = exclude or set()
        want = min(len(self.ids), k + len(exclude))
        if want <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        found_ids, found_scores = self.ann.search(np.atleast_2d(query).astype(np.float32), want)
        found = [(i, s) for i, s in zip(found_ids[0], found_scores[0], strict=True) if i >= 0]
        keep = [(t, s) for t, s in found if int(t) not in exclude][:k]
        return (np.array([t for t, _ in keep], dtype=np.int64), np.array([s for _, s in keep], dtype=np.float32))

    def sequences(self, lib: Library, track_ids: list[int]) -> tuple[list[int], list[np.ndarray]]:
        """Segment sequences in the search space (:meth:`Embedding.sequence`) of those indexed tracks that have
        their learned parts' segments stored; returns ``(ids kept, sequences)``."""
        learned = [p.model for p in self.embedding.parts if p.model != DESCRIPTOR_MODEL]
        kept, seqs = [], []
        for tid in track_ids:
            if int(tid) not in self._row:
                continue
            segments = {m: lib.segments(int(tid), m) for m in learned}
            if any(s is None or not len(s) for s in segments.values()):
                continue
            kept.append(int(tid))
            seqs.append(self.embedding.sequence(self.vector_of(tid), segments))
        return kept, seqs
