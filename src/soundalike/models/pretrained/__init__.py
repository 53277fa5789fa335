"""Models shipped inside the package: the default (its parts and their weights in ``default.json``: the
descriptors, ``default.pt`` and further checkpoints such as ``default_contrastive.pt``; card ``default.md``) and
musicnn's two trainings converted from the ``musicnn`` package (``musicnn_msd.pt``, ``musicnn_mtt.pt``; notice in
``MUSICNN-LICENSE``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

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


def _recipe() -> dict[str, Any]:
    """``default.json``, or the equal-weight fusion of the descriptors and ``default.pt`` when absent."""
    import json

    path = _file("default.json")
    if not path.is_file():
        return {"parts": [{"part": "descriptor", "weight": 0.5}, {"part": "default.pt", "weight": 0.5}]}
    return dict(json.loads(path.read_text(encoding="utf-8")))


def default_parts() -> list[tuple[str, float]]:
    """The default fusion as ``(part, weight)``: ``descriptor`` or the file name of a shipped checkpoint."""
    return [(str(p["part"]), float(p["weight"])) for p in _recipe()["parts"]]


def default_checkpoints() -> list[Path]:
    """The shipped checkpoints the default embeds with (the first is ``default.pt``), those this build has."""
    files = [_file(part) for part, _ in default_parts() if part != "descriptor"]
    return [f for f in files if f.is_file()]


def model_card() -> str:
    """The default model's card (Markdown), or an empty string."""
    path = _file("default.md")
    return path.read_text(encoding="utf-8") if path.is_file() else ""
