"""The model registry: every family by name, unknown names refused."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.models import ModelError, build, model_names


def test_registry_lists_melae_and_rejects_unknown_names() -> None:
    assert "melae" in model_names()
    with pytest.raises(ModelError, match="unknown model 'nope'; known: .*melae"):
        build("nope")
    with pytest.raises(ModelError, match="no setting 'colour'"):
        build("melae", colour=3)


def test_tracks_embedded_together_equal_tracks_embedded_one_by_one() -> None:
    rng = np.random.default_rng(0)
    inputs = [rng.normal(-40, 10, (128, frames)).astype(np.float32) for frames in (300, 128, 700, 64)]
    for name in ("contrastive", "melae"):
        model = build(name).eval()
        together = model.embed_tracks(inputs, max_segments=5)  # segments of several tracks share batches
        for x, (pooled, seq) in zip(inputs, together, strict=True):
            alone_pooled, alone_seq = model.embed_track(x)
            np.testing.assert_allclose(seq, alone_seq, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(pooled, alone_pooled, rtol=1e-4, atol=1e-5)
    assert build("contrastive").embed_tracks([]) == []
