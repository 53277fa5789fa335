"""Models shipped inside the package: the default (its parts and their weights in ``default.json``: the
descriptors, ``default.pt`` and further checkpoints such as ``default_contrastive.pt``; card ``default.md``) and
musicnn's two trainings converted from the ``musicnn`` package (``musicnn_msd.pt``, ``musicnn_mtt.pt``; notice in
``MUSICNN-LICENSE``)."""

from __future__ import annotations

import functools
import os
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


@functools.lru_cache(maxsize=1)
def _spec() -> dict[str, Any] | None:
    """``default.json`` as read (once: every query of ``default`` asks), or None when this build has none."""
    import json

    path = _file("default.json")
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _recipe() -> tuple[tuple[str, float], ...]:
    """The parts of ``default.json``, or the equal-weight fusion of the descriptors and ``default.pt`` when absent."""
    spec = _spec()
    if spec is None:
        return (("descriptor", 0.5), ("default.pt", 0.5))
    return tuple((str(p["part"]), float(p["weight"])) for p in spec["parts"])


def shipped_model_ids() -> dict[str, str]:
    """The model id of each checkpoint part of ``default.json`` by file name, as written there (its checkpoint holds
    the same; a test checks): ``default`` resolves from it without loading PyTorch to read the checkpoints."""
    spec = _spec()
    return {} if spec is None else {str(p["part"]): str(p["model_id"]) for p in spec["parts"] if p.get("model_id")}


def shipped_part(checkpoint: str | os.PathLike[str]) -> dict[str, str] | None:
    """What ``default.json`` says of ``checkpoint`` when it is one of the package's default parts — its
    ``model_id``, ``model`` (family) and ``input`` (the feature-store key it embeds from), as its checkpoint holds
    them (a test checks) — else None: `index` finds the spectrograms it needs, and sees that nothing is left to
    embed, without loading PyTorch."""
    spec = _spec()
    if spec is None:
        return None
    for p in spec["parts"]:
        if p.get("model_id") and p.get("model") and p.get("input") and _same_file(_file(str(p["part"])), checkpoint):
            return {"model_id": str(p["model_id"]), "model": str(p["model"]), "input": str(p["input"])}
    return None


def _same_file(a: Path, b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def default_metrics() -> dict[str, str]:
    """The learned metric ``default.json`` names for a part (``descriptor`` or a checkpoint's file name), by part:
    the default searches that part as ``model#metric`` (:mod:`soundalike.search.metric`)."""
    spec = _spec()
    return {} if spec is None else {str(p["part"]): str(p["metric"]) for p in spec["parts"] if p.get("metric")}


def default_neighbours() -> int:
    """How many nearest tracks (itself included) the default smooths each search vector over (``default.json``'s
    ``neighbours``; 0: none, :mod:`soundalike.search.neighbours`)."""
    spec = _spec()
    count = int(spec.get("neighbours", 0)) if spec is not None else 0
    return count if count >= 2 else 0  # 1 (itself alone) or less: no smoothing


def default_parts() -> list[tuple[str, float]]:
    """The default fusion as ``(part, weight)``: ``descriptor`` or the file name of a shipped checkpoint."""
    return list(_recipe())


def default_fusion() -> list[tuple[Path | None, float]]:
    """The default fusion as ``(checkpoint file, weight)``; the file is None for the descriptors (and may be absent
    from a build that lacks it)."""
    return [(None if part == "descriptor" else _file(part), weight) for part, weight in _recipe()]


def default_checkpoints() -> list[Path]:
    """The shipped checkpoints the default embeds with (the first is ``default.pt``), those this build has."""
    return [path for path, _ in default_fusion() if path is not None and path.is_file()]


def model_card() -> str:
    """The default model's card (Markdown), or an empty string."""
    path = _file("default.md")
    return path.read_text(encoding="utf-8") if path.is_file() else ""
