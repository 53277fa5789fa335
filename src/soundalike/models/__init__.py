"""Model families of the seed papers (and beyond), behind one :class:`Encoder` interface, found by name.

``build("melae")`` makes a fresh model with the paper's hyper-parameters; ``load_checkpoint(path)`` a trained one.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Encoder, ModelConfig, build, model_class, model_names, register
    from .checkpoint import load_checkpoint, save_checkpoint
    from .errors import ModelError

# Imported on first use: they load PyTorch (~1 CPU-second), which analysis workers, `soundalike --help` and
# everything that only needs ``soundalike.models.pretrained`` never use (docs/performance.md, start-up).
_LAZY = {"Encoder": "base", "ModelConfig": "base", "ModelError": "errors", "build": "base", "model_class": "base",
         "model_names": "base", "register": "base", "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint"}

# One module per family; each registers its Encoder subclass when imported.
FAMILY_MODULES = ("melae", "clothier", "stollery", "descriptor_ae", "cf_regression", "contrastive", "musicnn",
                  "student")


def _load_all() -> None:
    for module in FAMILY_MODULES:
        try:
            importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as exc:  # a family not written yet; any other missing import is a real error
            if exc.name != f"{__name__}.{module}":
                raise


def __getattr__(name: str) -> Any:
    """The public names of :mod:`.base` and :mod:`.checkpoint`, imported when first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = ["Encoder", "ModelConfig", "ModelError", "build", "load_checkpoint", "model_class", "model_names",
           "register", "save_checkpoint"]
