"""Checkpoints: config, weights, preset, training state, data summary and metrics — never pickled code.

Saved with ``torch.save`` as a dict of plain values and tensors, loaded with ``weights_only=True``, so loading a
checkpoint cannot run code. ``model_id`` = family name + a hash of the weights (+ a family's suffix for settings
that change what the same weights embed, e.g. musicnn's layer): embeddings of different models (and of different
trainings of one family) live side by side in the catalogue under their ids.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from .base import Encoder, ModelError, model_class

FORMAT = "soundalike-checkpoint"
VERSION = 1


def weights_hash(model: Encoder) -> str:
    """A short hash of the model's weights (identifies one trained model)."""
    h = hashlib.blake2b(digest_size=4)
    for key, tensor in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(model: Encoder, path: str | os.PathLike[str], **extra: Any) -> dict[str, Any]:
    """Write ``model`` and ``extra`` (epoch, step, history, optimizer, data, metrics...) atomically to ``path``."""
    path = Path(path)
    payload: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "model": model.name,
        "model_id": f"{model.name}-{weights_hash(model)}{model.id_suffix()}",
        "config": model.config.to_dict(), "preset": model.preset.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())  # on disk before it takes the name: a crash leaves the old file or the new one
    os.replace(tmp, path)
    return payload


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's contents, checked for format; raises :class:`ModelError` naming the file and the problem."""
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{p}: no such checkpoint file")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise ModelError(f"{p}: not a soundalike checkpoint ({type(exc).__name__}: {str(exc)[:120]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError(f"{p}: not a soundalike checkpoint (no '{FORMAT}' header)")
    if int(payload.get("version", 0)) > VERSION:
        raise ModelError(f"{p}: checkpoint version {payload['version']} is newer than this soundalike ({VERSION})")
    return payload


def load_checkpoint(path: str | os.PathLike[str], device: str = "cpu") -> tuple[Encoder, dict[str, Any]]:
    """Rebuild the trained model stored at ``path``; returns ``(model in eval mode, checkpoint dict)``."""
    payload = read_checkpoint(path)
    cls = model_class(str(payload.get("model")))
    config = cls.config_cls.from_dict(dict(payload.get("config") or {}))
    model = cls(config)
    if payload.get("preset") != model.preset.to_dict():
        raise ModelError(f"{path}: model/preset mismatch: the checkpoint was trained on preset "
                         f"{(payload.get('preset') or {}).get('name')!r} with other parameters than "
                         f"{model.preset_name!r} has now")
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError) as exc:
        raise ModelError(f"{path}: weights do not fit model {cls.name!r}: {str(exc).splitlines()[0]}") from None
    model.to(device).eval()
    return model, payload
