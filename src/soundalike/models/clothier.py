"""Clothier: the 1-D convolutional autoencoder of seed 003 (``/work/shared/seeds/003_bf4011e6e4a88f43.txt`` §III).

Input: 256-frame x 128-bin log-mel segments (preset ``clothier``: hop 512 at 22.05 kHz, ~6 s; segments back to
back, §III "divided into ... segments ... 256 (temporal) by 128 (frequency)"). The convolutions run over time
only: the 128 mel bins are the input channels (§II "we do not convolve over both dimensions ... only over the
axis of time"). Encoder: Conv1D(kernel 2) + MaxPool1D(2) blocks with 256, 256, 512 filters (§III), then three
dense layers of 2048 units with ReLU to the 256-d bottleneck (§III, §IV "a 256-length vector"). The decoder
mirrors it: dense layers, then UpSampling1D(2) + Conv1DTranspose(kernel 2) blocks back to 128 x 256 (§III).
Loss: mean squared error (§II, §IV); Adam, learning rate 0.0002 (§III); 50 epochs (§V, figure 3). Track vector =
mean of the segment embeddings (the base pooling).

Choices (docs/models.md):

- Depth: figure 1's caption says the final model had "an additional convolutional (deconvolutional) layer and
  max-pooling (upsampling) layer"; the default is that final version, 4 conv + pool blocks with 256, 256, 512,
  512 filters (the 4th filter count is not given: it repeats the 3rd), so 256 frames -> 16 steps x 512 channels
  (8192 values) before the dense layers. ``conv_filters`` sets the blocks (3 entries = the text's version).
- Dense layers: "passed through three dense layers of size 2048" then the 256-d bottleneck: three ReLU layers of
  2048 units followed by a linear 256-unit bottleneck (the embedding); the decoder has a 256 -> 2048 layer, two
  2048 -> 2048 layers and a 2048 -> 8192 layer (all ReLU) before reshaping to (512, 16).
- Padding: convolutions are 'same' (one zero frame on the right, Keras' ``padding="same"`` for kernel 2), so
  lengths halve exactly at each pool; a transposed convolution (kernel 2, stride 1) gives L + 1 frames and its
  last frame is dropped (the mirror). ReLU after every convolution but the last transposed one, whose output is
  linear (MSE regression; the paper names no output activation).
- Input scaling: the paper's losses (random model ~500, trained ~60, §V) fit dB values relative to the clip peak
  (librosa ``ref=np.max``, -80..0 dB). We use the base ``db_to_unit`` (dB relative to the segment peak, floor
  -80 dB, divided by 80 and shifted to [0, 1]), the same quantity scaled by 1/80: the paper's MSE of 60 dB²
  corresponds to ~0.0094 here.
- Training data: each track's back-to-back 256-frame segments (the paper's 4-6 segments per preview), drawn at
  random with replacement; one epoch = as many segments as the training tracks have. Batch size 32 (not given).
- ``conv_filters`` and ``dense_units`` are config fields, so tests (and small libraries) can use a tiny network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from soundalike.audio.features import segment_count

from .base import Encoder, ModelConfig, ModelError, TrackSet, register


@dataclass
class ClothierConfig(ModelConfig):
    """Seed 003 §III hyper-parameters (the batch size is our choice)."""

    embedding_dim: int = 256
    lr: float = 0.0002
    batch_size: int = 32
    epochs: int = 50
    conv_filters: tuple[int, ...] = (256, 256, 512, 512)
    kernel_size: int = 2
    dense_units: int = 2048
    dense_layers: int = 3


def grid_segment(spec: np.ndarray, index: int, frames: int, hop: int) -> np.ndarray:
    """Segment ``index`` of the back-to-back/overlapping grid :func:`soundalike.features.segment` cuts (float32);
    a track shorter than one segment is looped, as there."""
    n_frames = spec.shape[1]
    if n_frames < frames:
        reps = -(-frames // n_frames)
        return np.tile(np.asarray(spec, dtype=np.float32), (1, reps))[:, :frames]
    start = index * hop
    return np.asarray(spec[:, start:start + frames], dtype=np.float32)


def grid_counts(inputs: Sequence[np.ndarray], frames: int, hop: int) -> np.ndarray:
    """How many grid segments each track has."""
    return np.array([segment_count(int(x.shape[1]), frames, hop) for x in inputs], dtype=np.int64)


def sample_grid_segments(inputs: Sequence[np.ndarray], rng: np.random.Generator, count: int, frames: int,
                         hop: int) -> np.ndarray:
    """``count`` segments drawn uniformly (with replacement) from all grid segments of all tracks."""
    counts = grid_counts(inputs, frames, hop)
    ends = np.cumsum(counts)
    flat = rng.integers(0, int(ends[-1]), size=count)
    tracks = np.searchsorted(ends, flat, side="right")
    starts = ends - counts
    out = np.empty((count, inputs[0].shape[0], frames), dtype=np.float32)
    for i, (t, k) in enumerate(zip(tracks, flat, strict=True)):
        out[i] = grid_segment(inputs[int(t)], int(k - starts[t]), frames, hop)
    return out


class _ConvBlock(nn.Module):
    """'Same' 1-D convolution over time (kernel k: k - 1 zero frames on the right), ReLU, max-pool 2."""

    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__()
        self.pad = nn.ConstantPad1d((0, kernel - 1), 0.0)
        self.conv = nn.Conv1d(c_in, c_out, kernel)
        self.pool = nn.MaxPool1d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.relu(self.conv(self.pad(x))))


class _DeconvBlock(nn.Module):
    """Upsampling 2, then a transposed convolution (kernel k, stride 1) cropped back to the input length."""

    def __init__(self, c_in: int, c_out: int, kernel: int, activation: bool) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2)
        self.deconv = nn.ConvTranspose1d(c_in, c_out, kernel)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        y = self.deconv(x)[..., :x.shape[-1]]
        return F.relu(y) if self.activation else y


@register
class Clothier(Encoder):
    """Seed 003's 1-D convolutional autoencoder (convolutions over time, mel bins as channels)."""

    name = "clothier"
    preset_name = "clothier"
    config_cls = ClothierConfig
    source = "003 §II-§V (1-D conv autoencoder, figure 1)"

    def __init__(self, config: ClothierConfig) -> None:
        super().__init__(config)
        filters = [int(f) for f in config.conv_filters]
        n_mels, frames = self.preset.n_mels, self.preset.segment_frames
        if not filters or any(f <= 0 for f in filters):
            raise ModelError("clothier: conv_filters must be a non-empty list of positive filter counts")
        if frames % (2 ** len(filters)):
            raise ModelError(f"clothier: {len(filters)} max-pool layers do not divide {frames} frames evenly")
        if config.kernel_size < 1 or config.dense_units < 1 or config.dense_layers < 1:
            raise ModelError("clothier: kernel_size, dense_units and dense_layers must be positive")
        channels = [n_mels, *filters]
        self.steps = frames // 2 ** len(filters)
        self.flat = filters[-1] * self.steps
        self.convs = nn.Sequential(*[_ConvBlock(a, b, config.kernel_size) for a, b in zip(channels, filters,
                                                                                       strict=False)])
        width = config.dense_units
        enc: list[nn.Module] = []
        for i in range(config.dense_layers):
            enc += [nn.Linear(self.flat if i == 0 else width, width), nn.ReLU()]
        enc.append(nn.Linear(width, config.embedding_dim))
        self.to_code = nn.Sequential(*enc)
        dec: list[nn.Module] = []
        for i in range(config.dense_layers):
            dec += [nn.Linear(config.embedding_dim if i == 0 else width, width), nn.ReLU()]
        dec += [nn.Linear(width, self.flat), nn.ReLU()]
        self.from_code = nn.Sequential(*dec)
        rev = channels[::-1]  # e.g. 512, 512, 256, 256, 128
        self.deconvs = nn.Sequential(*[_DeconvBlock(a, b, config.kernel_size, activation=i < len(filters) - 1)
                                       for i, (a, b) in enumerate(zip(rev, rev[1:], strict=False))])
        self._segments_per_track: float | None = None

    @property
    def cfg(self) -> ClothierConfig:
        """The typed config."""
        assert isinstance(self.config, ClothierConfig)
        return self.config

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Segments ``(n, 128 mels, 256 frames)`` in [0, 1] to ``(n, embedding_dim)`` codes."""
        return self.to_code(self.convs(x).flatten(1))

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Codes to reconstructions ``(n, 128, 256)`` (linear output)."""
        h = self.from_code(code).view(-1, self.cfg.conv_filters[-1], self.steps)
        return self.deconvs(h)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Segments in [0, 1] to their reconstructions."""
        return self.decode(self.encode(x))

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean squared reconstruction error (003 §II, §IV)."""
        x = batch["x"]
        return F.mse_loss(self.reconstruct(x), x), {}

    def sample_batch(self, tracks: TrackSet, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        """Random back-to-back segments of the tracks (the paper's fixed split of each preview)."""
        p = self.preset
        crops = sample_grid_segments(tracks.inputs, rng, batch_size, p.segment_frames, p.segment_hop)
        return {"x": self.prepare(torch.from_numpy(crops))}

    def setup_training(self, lib: Any, train: TrackSet, val: TrackSet, options: dict[str, Any]) -> dict[str, Any]:
        """Count the training segments (one epoch = each segment once on average)."""
        super().setup_training(lib, train, val, options)
        p = self.preset
        counts = grid_counts(train.inputs, p.segment_frames, p.segment_hop) if len(train) else np.ones(1)
        self._segments_per_track = float(counts.mean())
        return {"segments": int(counts.sum()) if len(train) else 0}

    def batches_per_epoch(self, n_tracks: int) -> int:
        """Segments per epoch / batch size; without ``setup_training``, a 30 s preview's 5 segments per track."""
        per_track = self._segments_per_track or 5.0
        return max(1, int(np.ceil(n_tracks * per_track / self.config.batch_size)))
