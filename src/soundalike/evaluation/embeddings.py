"""The one way evaluation loads embeddings: ``{name: (track ids, unit search vectors)}`` from a library.

A name is anything ``similar --model`` takes (``default``, ``descriptor``, a family, a model id, a fused key, a
checkpoint file), loaded through the same index, so an evaluation measures exactly what queries search; or
``spfy10``, seed 000's ten-feature "Spfy" baseline taken from the descriptors
(:data:`soundalike.audio.descriptors.SPFY_COLUMNS`), z-scored over the library.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from soundalike.audio.descriptors import spfy_features
from soundalike.library.catalog import DESCRIPTOR_MODEL, CatalogError, Library
from soundalike.recommend.queries import load_index
from soundalike.search.vectors import standardise, unit_rows

from .playlists import EvaluationError

SPFY = "spfy10"


def embedding_vectors(lib: Library, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(track ids, unit search vectors)`` of one embedding (module doc); :class:`EvaluationError` if missing."""
    if name == SPFY:
        ids, raw = lib.vectors(DESCRIPTOR_MODEL)
        if not len(ids):
            raise EvaluationError(f"no descriptors in {lib.root}: run `soundalike index PATH` first")
        x, _, _ = standardise(spfy_features(raw))
        return ids, unit_rows(x)
    try:
        index = load_index(lib, name)
    except CatalogError as exc:
        raise EvaluationError(str(exc)) from None
    return index.ids, index.vectors


def library_embeddings(lib: Library, names: Iterable[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """:func:`embedding_vectors` of every name, keyed by the name as given."""
    return {name: embedding_vectors(lib, name) for name in names}


def default_models(lib: Library) -> list[str]:
    """The embeddings a library holds, descriptors first, then ``spfy10``, then learned models (and the shipped
    default fused with the descriptors, as ``similar`` uses it)."""
    from soundalike.models.embedding import resolve_model

    present = lib.models()
    if DESCRIPTOR_MODEL not in present:
        raise EvaluationError(f"the library at {lib.root} has no tracks; index music first (soundalike index PATH)")
    names = [DESCRIPTOR_MODEL, SPFY] + [m for m in present if m != DESCRIPTOR_MODEL]
    default = resolve_model(lib, "default")
    if default not in names:
        names.append(default)
    return names
