"""Vector search over pooled track vectors: exact (faiss ``IndexFlatIP``) or, for large libraries, approximate.

Vectors are z-scored with the library's column statistics, then L2-normalised, so inner product = cosine
similarity of standardised vectors. Above :data:`soundalike.ann.EXACT_MAX_TRACKS` tracks the search goes through
an IVF index (:mod:`soundalike.ann`) kept in ``LIBRARY/indexes/``: it is built once, with the z-scoring statistics
of that moment frozen beside it (so stored and query vectors stay comparable), then brought up to date on every
open — tracks added to the library are added to it, removed ones removed — and rebuilt when the library has grown
past :data:`soundalike.ann.STALE_GROWTH` times what it was trained on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soundalike.audio.descriptors import standardise
from soundalike.library.catalog import DESCRIPTOR_MODEL, CatalogError, Library

from .ann import STALE_GROWTH, AnnError, AnnIndex, choose_kind


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


@dataclass
class EmbeddingPart:
    """One stored embedding inside a (possibly fused) search vector: its columns' statistics and weight."""

    model: str
    dim: int
    mean: np.ndarray
    std: np.ndarray
    weight: float = 1.0


@dataclass
class Embedding:
    """How stored (raw) vectors become searchable ones: per part z-scoring and unit length, weighted concatenation.

    A plain key (``descriptor``, ``contrastive-1a2b3c4d``) has one part; a fused key joins parts with ``+``
    (``descriptor+contrastive-1a2b3c4d``): each part counts equally in the cosine similarity.
    """

    model: str
    parts: list[EmbeddingPart]

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Raw vectors ``(n, sum of part dims)`` (parts side by side, in key order) to unit-length search vectors."""
        x = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        blocks, start = [], 0
        for part in self.parts:
            block = (x[:, start:start + part.dim] - part.mean) / part.std
            blocks.append(np.sqrt(part.weight) * l2_normalise(block))
            start += part.dim
        return l2_normalise(np.hstack(blocks))


def model_parts(key: str) -> list[str]:
    """The stored embeddings a (possibly fused) key is made of."""
    return [k for k in key.split("+") if k]


def load_raw(lib: Library, key: str) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """``(track ids, raw vectors side by side, part dims)`` of the tracks that have every part of ``key``."""
    parts = [lib.vectors(k) for k in model_parts(key)]
    for k, (ids, _) in zip(model_parts(key), parts, strict=True):
        if len(ids) == 0:
            known = lib.models()
            hint = f" (embeddings present: {', '.join(known)})" if known else " — run `soundalike index PATH` first"
            raise CatalogError(f"no tracks embedded with {k!r} in {lib.root}{hint}")
    common = parts[0][0]
    for ids, _ in parts[1:]:
        common = np.intersect1d(common, ids)
    blocks = [mat[np.searchsorted(ids, common)] for ids, mat in parts]
    return common, np.hstack(blocks), [b.shape[1] for b in blocks]


INDEX_DIR = "indexes"


def _library_embedding(model: str, raw: np.ndarray, dims: list[int]) -> Embedding:
    # Every part is z-scored with the library's statistics before cosine similarity: descriptor columns have
    # unrelated units, and learned embeddings share a large common offset that would make every cosine ~1.
    parts, start = [], 0
    names = model_parts(model)
    for name, dim in zip(names, dims, strict=True):
        _, mean, std = standardise(raw[:, start:start + dim])
        parts.append(EmbeddingPart(name, dim, mean, std, 1.0 / len(names)))
        start += dim
    return Embedding(model, parts)


def ann_paths(lib: Library, model: str) -> tuple[Path, Path]:
    """Where the persisted ANN index of ``model`` and its frozen statistics live in the library folder."""
    safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", model)
    folder = Path(lib.root) / INDEX_DIR
    return folder / f"{safe}.ann", folder / f"{safe}.stats.json"


def _read_stats(path: Path, model: str, dims: list[int]) -> Embedding | None:
    try:
        saved = json.loads(path.read_text())
        parts = [EmbeddingPart(p["model"], int(p["dim"]), np.asarray(p["mean"], np.float32),
                               np.asarray(p["std"], np.float32), float(p["weight"])) for p in saved["parts"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if saved.get("model") != model or [p.dim for p in parts] != dims:
        return None
    return Embedding(model, parts)


def _write_stats(path: Path, embedding: Embedding) -> None:
    payload = {"model": embedding.model, "parts": [
        {"model": p.model, "dim": p.dim, "mean": p.mean.tolist(), "std": p.std.tolist(), "weight": p.weight}
        for p in embedding.parts]}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload))
    tmp.replace(path)


class VectorIndex:
    """Top-k cosine search over track vectors, returning track ids: exact, or through a persisted ANN index."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, embedding: Embedding, ann: AnnIndex | None = None
                 ) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self.embedding = embedding
        self.vectors = embedding.transform(vectors) if len(ids) else np.zeros((0, 1), np.float32)
        # ``ann`` (over ``vectors``, same ids) when given, else an exact flat index of them.
        self.ann = ann if ann is not None else AnnIndex.build(self.ids, self.vectors, kind="flat")
        self._row = {int(t): i for i, t in enumerate(self.ids)}

    @classmethod
    def from_library(cls, lib: Library, model: str = DESCRIPTOR_MODEL, *, ann: bool | None = None) -> VectorIndex:
        """The index of every track the library has embedded with ``model`` (every part of a fused key); ``ann``
        forces (True) or forbids (False) the approximate index, which by default serves libraries above
        :data:`soundalike.ann.EXACT_MAX_TRACKS` tracks."""
        ids, raw, dims = load_raw(lib, model)
        if not (ann if ann is not None else choose_kind(len(ids)) == "ivf"):
            return cls(ids, raw, _library_embedding(model, raw, dims))
        return cls._with_ann(lib, model, ids, raw, dims)

    @classmethod
    def _with_ann(cls, lib: Library, model: str, ids: np.ndarray, raw: np.ndarray, dims: list[int]) -> VectorIndex:
        index_path, stats_path = ann_paths(lib, model)
        embedding = _read_stats(stats_path, model, dims)
        index: AnnIndex | None = None
        changed = False
        if embedding is not None and index_path.exists():
            try:
                index = AnnIndex.load(index_path, dim=sum(dims))
            except AnnError:
                index = None  # unreadable or from another version: rebuilt below
        if index is not None and embedding is not None:
            vectors = embedding.transform(raw)
            new = ~np.isin(ids, index.ids)
            if new.any():
                index.add(ids[new], vectors[new])
                changed = True
            changed = index.remove(np.setdiff1d(index.ids, ids)) > 0 or changed
            if index.kind == "ivf" and len(index) > STALE_GROWTH * max(index.params.trained_on, 1):
                index = None  # the library outgrew the cells: rebuild with today's statistics
        if index is None or embedding is None:
            embedding = _library_embedding(model, raw, dims)
            vectors = embedding.transform(raw)
            index = AnnIndex.build(ids, vectors, kind="ivf")
            changed = True
        result = cls(ids, raw, embedding, ann=index)
        if changed:
            try:
                index_path.parent.mkdir(parents=True, exist_ok=True)
                _write_stats(stats_path, embedding)
                index.save(index_path)
            except OSError:
                pass  # a read-only library still answers; the index is rebuilt next time
        return result

    def __len__(self) -> int:
        return len(self.ids)

    def vector_of(self, track_id: int) -> np.ndarray:
        """The search vector of an indexed track."""
        try:
            return self.vectors[self._row[int(track_id)]]
        except KeyError:
            raise KeyError(f"track {track_id} is not in the index") from None

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
