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
class Embedding:
    """How a model's stored vectors become searchable ones: optional z-scoring, then unit length."""

    model: str
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Stored (raw) vectors ``(n, d)`` to unit-length search vectors."""
        x = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if self.mean is not None and self.std is not None:
            x = (x - self.mean) / self.std
        return l2_normalise(x)


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
        """Build the index of every track the library has embedded with ``model``."""
        ids, raw = lib.vectors(model)
        if len(ids) == 0:
            known = lib.models()
            hint = f" (embeddings present: {', '.join(known)})" if known else " — run `soundalike index PATH` first"
            raise CatalogError(f"no tracks embedded with {model!r} in {lib.root}{hint}")
        # Every embedding is z-scored with the library's statistics before cosine similarity: descriptor columns
        # have unrelated units, and learned embeddings share a large common offset that would make every
        # cosine close to 1.
        embedding = Embedding(model)
        _, embedding.mean, embedding.std = standardise(raw)
        return cls(ids, raw, embedding)

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
