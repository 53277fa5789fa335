"""Evaluation loads every embedding one way: through the index `similar` searches, or the spfy10 columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from soundalike.evaluation import EvaluationError, default_models, embedding_vectors, library_embeddings
from soundalike.library.catalog import Library
from soundalike.recommend import load_index


def test_embeddings_are_the_search_vectors_of_the_index(indexed: tuple[Path, Path, list]) -> None:
    _, library, _ = indexed
    with Library.open(library) as lib:
        names = default_models(lib)
        assert names[:2] == ["descriptor", "spfy10"]
        assert any(n.startswith("descriptor#rca-") and "+musicnn-" in n and "+contrastive-" in n for n in names)
        loaded = library_embeddings(lib, ["default", "descriptor", "spfy10"])
        index = load_index(lib, "default")
        np.testing.assert_array_equal(loaded["default"][0], index.ids)
        np.testing.assert_array_equal(loaded["default"][1], index.vectors)
        ids, spfy = loaded["spfy10"]
        assert spfy.shape == (len(ids), 10)
        np.testing.assert_allclose(np.linalg.norm(spfy, axis=1), 1.0, rtol=1e-5)
        with pytest.raises(EvaluationError, match="melae"):
            embedding_vectors(lib, "melae")
