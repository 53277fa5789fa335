"""2-D projections of track vectors for maps: the project's one PCA and one t-SNE set-up (no matplotlib here, so
the server's map JSON and the PNG figures place tracks alike)."""

from __future__ import annotations

import numpy as np


def pca_2d(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """The rows on their first two principal components (scikit-learn's PCA, whose sign convention keeps a map
    from flipping between runs); fewer than two rows or columns give zeros where a component is missing."""
    x = np.asarray(vectors, dtype=np.float64)
    out = np.zeros((len(x), 2))
    if len(x) < 2 or x.ndim != 2 or x.shape[1] == 0:
        return out
    from sklearn.decomposition import PCA

    n = min(2, len(x), x.shape[1])
    out[:, :n] = PCA(n_components=n, random_state=seed).fit_transform(x)
    return out


def tsne_2d(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """t-SNE of the rows to 2-D as every map here draws it: PCA initialisation, perplexity (n - 1) / 3 within
    [2, 30]; fewer than 5 rows fall back to :func:`pca_2d`."""
    if len(x) < 5:
        return pca_2d(x, seed)
    from sklearn.manifold import TSNE

    return TSNE(n_components=2, perplexity=min(30.0, max(2.0, (len(x) - 1) / 3)), random_state=seed,
                init="pca").fit_transform(np.asarray(x, dtype=np.float32))
