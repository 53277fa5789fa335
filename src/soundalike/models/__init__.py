"""Model families of the seed papers (and beyond), behind one :class:`Encoder` interface, found by name.

``build("melae")`` makes a fresh model with the paper's hyper-parameters; ``load_checkpoint(path)`` a trained one.
"""

from __future__ import annotations

import importlib

from .base import Encoder, ModelConfig, ModelError, build, model_class, model_names, register
from .checkpoint import load_checkpoint, save_checkpoint

# One module per family; each registers its Encoder subclass when imported.
FAMILY_MODULES = ("melae", "clothier", "stollery", "descriptor_ae", "cf_regression", "contrastive", "musicnn")


def _load_all() -> None:
    for module in FAMILY_MODULES:
        try:
            importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as exc:  # a family not written yet; any other missing import is a real error
            if exc.name != f"{__name__}.{module}":
                raise


__all__ = ["Encoder", "ModelConfig", "ModelError", "build", "load_checkpoint", "model_class", "model_names",
           "register", "save_checkpoint"]
