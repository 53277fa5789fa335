"""Models shipped inside the package: the default (``default.pt``, its fusion with the descriptors in
``default.json``, card ``default.md``) and musicnn's two trainings converted from the ``musicnn`` package
(``musicnn_msd.pt``, ``musicnn_mtt.pt``; notice in ``MUSICNN-LICENSE``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEFAULT_NAME = "default"

SHIPPED = {"musicnn": "musicnn_msd.pt", "musicnn-msd": "musicnn_msd.pt", "musicnn-mtt": "musicnn_mtt.pt"}
"""Names a user may give ``--model`` for a shipped pretrained model (``musicnn`` is the Million Song Dataset one)."""


def _file(name: str) -> Path:
    return Path(str(resources.files(__name__).joinpath(name)))


def default_checkpoint() -> Path | None:
    """Path of the shipped default checkpoint, or None when this build has none."""
    path = _file("default.pt")
    return path if path.is_file() else None


def shipped_checkpoint(name: str) -> Path | None:
    """The checkpoint of a shipped pretrained model by name (``musicnn``, ``musicnn-msd``, ``musicnn-mtt``)."""
    if name not in SHIPPED:
        return None
    path = _file(SHIPPED[name])
    return path if path.is_file() else None


def default_weights() -> tuple[float, float]:
    """``(descriptor weight, model weight)`` of the default fusion (``default.json``; equal when absent)."""
    import json

    path = _file("default.json")
    if not path.is_file():
        return 0.5, 0.5
    recipe = json.loads(path.read_text(encoding="utf-8"))
    return float(recipe["descriptor_weight"]), float(recipe["model_weight"])


def model_card() -> str:
    """The default model's card (Markdown), or an empty string."""
    path = _file("default.md")
    return path.read_text(encoding="utf-8") if path.is_file() else ""
