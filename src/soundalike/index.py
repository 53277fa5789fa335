"""Vector search over pooled track vectors: exact cosine similarity with faiss ``IndexFlatIP``.

Vectors are z-scored with the library's column statistics, then L2-normalised, so inner product = cosine
similarity of standardised vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from .catalog import DESCRIPTOR_MODEL, CatalogError, Library
from .descriptors import standardise


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


class VectorIndex:
    """Exact top-k cosine search over track vectors, returning track ids."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, embedding: Embedding) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self.embedding = embedding
        self.vectors = embedding.transform(vectors) if len(ids) else np.zeros((0, 1), np.float32)
        self._faiss = faiss.IndexFlatIP(self.vectors.shape[1])
        if len(ids):
            self._faiss.add(self.vectors)
        self._row = {int(t): i for i, t in enumerate(self.ids)}

    @classmethod
    def from_library(cls, lib: Library, model: str = DESCRIPTOR_MODEL) -> VectorIndex:
        """Build the index of every track the library has embedded with ``model`` (every part of a fused key)."""
        ids, raw, dims = load_raw(lib, model)
        # Every part is z-scored with the library's statistics before cosine similarity: descriptor columns have
        # unrelated units, and learned embeddings share a large common offset that would make every cosine ~1.
        parts, start = [], 0
        names = model_parts(model)
        for name, dim in zip(names, dims, strict=True):
            _, mean, std = standardise(raw[:, start:start + dim])
            parts.append(EmbeddingPart(name, dim, mean, std, 1.0 / len(names)))
            start += dim
        return cls(ids, raw, Embedding(model, parts))

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
        scores, rows = self._faiss.search(np.atleast_2d(query).astype(np.float32), want)
        keep = [(self.ids[r], s) for r, s in zip(rows[0], scores[0], strict=True)
                if r >= 0 and int(self.ids[r]) not in exclude][:k]
        if not keep:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        ids, sc = zip(*keep, strict=True)
        return np.array(ids, dtype=np.int64), np.array(sc, dtype=np.float32)
