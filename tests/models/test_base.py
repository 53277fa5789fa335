"""The model registry: every family by name, unknown names refused."""

from __future__ import annotations

import pytest

from soundalike.models import ModelError, build, model_names


def test_registry_lists_melae_and_rejects_unknown_names() -> None:
    assert "melae" in model_names()
    with pytest.raises(ModelError, match="unknown model 'nope'; known: .*melae"):
        build("nope")
    with pytest.raises(ModelError, match="no setting 'colour'"):
        build("melae", colour=3)
