"""Finding near vectors: the search index of an embedding (:mod:`.index`: exact or approximate over pooled
vectors), the faiss indexes behind it (:mod:`.ann`), and distances between segment sequences (:mod:`.distances`)."""

from .ann import AnnError, AnnIndex
from .distances import sequence_distances
from .index import VectorIndex

__all__ = ["AnnError", "AnnIndex", "VectorIndex", "sequence_distances"]
