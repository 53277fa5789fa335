"""Looking inside a trained model: its first-layer filters and the tracks that most excite chosen units.

Seed 004 (``seeds/004_3495b76c5a649c02.txt``) §6 shows the first convolutional layer's filters as an image and
builds playlists from the tracks that activate a unit most: by the maximum activation over the analysed audio
(§6.1, a short peak is enough), by the average activation over time (§6.2, the pattern is there all along), and
for high-level units (§6.3; here: the dimensions of the track embedding). Works for every convolutional family
(``cf-regression``, ``clothier``: 1-D convolutions over time; ``melae``, ``contrastive``: 2-D).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from soundalike.library.catalog import Library

from . import Encoder, ModelError
from .base import spread_segments

ACTIVATION_MODES = ("max", "mean", "embedding")


def first_conv(model: Encoder) -> nn.Conv1d | nn.Conv2d:
    """The model's first convolution (the layer that sees the spectrogram); ModelError for dense-only models."""
    for module in model.modules():
        if isinstance(module, nn.Conv1d | nn.Conv2d):
            return module
    raise ModelError(f"model {model.name!r} has no convolutional layer to look inside")


def first_layer_filters(model: Encoder) -> np.ndarray:
    """First-layer filters ``(n_filters, height, width)``: mel bins x frames for 1-D convolutions over time, the
    kernel for 2-D ones (single input channel)."""
    weight = first_conv(model).weight.detach().cpu().numpy()
    if weight.ndim == 3:  # Conv1d: (out, in = mel bins, k frames)
        return weight
    return weight[:, 0] if weight.shape[1] == 1 else weight.mean(axis=1)


def unit_activations(model: Encoder, track_input: np.ndarray, max_segments: int = 32
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``(max, mean)`` of each first-layer unit's rectified activation over (at most ``max_segments`` evenly spread)
    segments of a track (seed 004 §6.1, §6.2)."""
    conv = first_conv(model)
    captured: list[torch.Tensor] = []
    handle = conv.register_forward_hook(lambda _m, _i, output: captured.append(torch.relu(output).detach()))
    try:
        segs = spread_segments(model.segments(np.asarray(track_input, dtype=np.float32)), max_segments)
        with torch.no_grad():
            model.encode(model.prepare(torch.from_numpy(segs)))
    finally:
        handle.remove()
    if not captured:
        raise ModelError("the track gave no segment to analyse")
    flat = captured[0].flatten(2)  # (n, C, positions)
    return flat.amax(dim=(0, 2)).numpy(), flat.mean(dim=(0, 2)).numpy()


@dataclass(frozen=True)
class UnitPlaylist:
    """The tracks that excite one unit most, best first, with the activation values."""

    unit: int
    mode: str
    track_ids: list[int]
    values: list[float]


@dataclass(frozen=True)
class ActivationTable:
    """Every unit's activation for every analysed track: rows = ``track_ids``, columns = units."""

    mode: str
    track_ids: list[int]
    values: np.ndarray  # (tracks, units)

    def selective_units(self, count: int) -> list[int]:
        """Units whose activation varies most across tracks (coefficient of variation): the telling ones."""
        spread = self.values.std(axis=0) / (np.abs(self.values.mean(axis=0)) + 1e-6)
        return [int(u) for u in np.argsort(-spread, kind="stable")[:count]]

    def playlists(self, units: Sequence[int], k: int = 10) -> list[UnitPlaylist]:
        """For each unit, the ``k`` tracks with the highest activation, best first."""
        width = self.values.shape[1]
        bad = [u for u in units if not 0 <= int(u) < width]
        if bad:
            raise ModelError(f"unit {bad[0]} does not exist: this {self.mode} layer has units 0..{width - 1}")
        out = []
        for unit in units:
            column = self.values[:, int(unit)]
            order = np.argsort(-column, kind="stable")[:k]
            out.append(UnitPlaylist(int(unit), self.mode, [self.track_ids[i] for i in order],
                                    [float(column[i]) for i in order]))
        return out


def activation_table(lib: Library, model: Encoder, *, mode: str = "max", track_ids: Sequence[int] | None = None,
                     on_progress: Callable[[str, int, int], None] | None = None) -> ActivationTable:
    """Activations of every unit for every track: ``max`` or ``mean`` over time of each first-layer filter (seed
    004 §6.1, §6.2), or ``embedding``: the track vector's dimensions (§6.3's high-level units)."""
    if mode not in ACTIVATION_MODES:
        raise ModelError(f"unknown activation mode {mode!r}; choose from {', '.join(ACTIVATION_MODES)}")
    from .embedding import trackable_ids

    ids = [int(t) for t in (track_ids if track_ids is not None else trackable_ids(lib, model))]
    if not ids:
        raise ModelError(f"no track in {lib.root} can be analysed by {model.name!r}; run `soundalike index` first")
    model.eval()
    rows = []
    for n, tid in enumerate(ids, 1):
        track_input = model.load_inputs(lib, [tid])[0]
        if mode == "embedding":
            rows.append(model.embed_track(track_input)[0])
        else:
            maxima, means = unit_activations(model, track_input)
            rows.append(maxima if mode == "max" else means)
        if on_progress:
            on_progress("inspect", n, len(ids))
    return ActivationTable(mode, ids, np.vstack(rows).astype(np.float32))
