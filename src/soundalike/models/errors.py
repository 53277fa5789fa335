"""The models' error type, apart from :mod:`.base` so that catching it does not import PyTorch (a query of a
library track needs no model: ``soundalike similar`` would spend most of its time importing it)."""

from __future__ import annotations


class ModelError(ValueError):
    """A model that cannot be built, loaded or used as asked (unknown name, bad checkpoint, wrong preset...)."""
