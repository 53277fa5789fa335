"""The pretrained default model shipped inside the package, with its model card (``default.md``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEFAULT_NAME = "default"


def default_checkpoint() -> Path | None:
    """Path of the shipped default checkpoint, or None when this build has none."""
    path = Path(str(resources.files(__name__).joinpath("default.pt")))
    return path if path.is_file() else None


def model_card() -> str:
    """The default model's card (Markdown), or an empty string."""
    path = Path(str(resources.files(__name__).joinpath("default.md")))
    return path.read_text(encoding="utf-8") if path.is_file() else ""
