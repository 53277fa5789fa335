"""CF regression: seed 004's convnet that predicts a track's collaborative-filtering latent factors from audio.

Seed 004 (``seeds/004_3495b76c5a649c02.txt``) §4: a regression network learns to predict, from the spectrogram, the
latent factors a collaborative filtering model gives each song, "so we could predict the representation of a song in
the collaborative filtering space, even if no usage data was available" — the model places tracks that have no
listening data.

Architecture (§5.1, the default): ``dieleman`` mel-spectrograms, 599 frames x 128 bins, the 128 bins as input
channels; four one-dimensional convolutions over time only, filter length 4, ReLU; max-pooling over time of 4
after the first convolution and 2 after the others; a global temporal pooling layer concatenating the mean, the
maximum and the L2 norm over time of every feature; two fully connected layers of 2048 ReLUs with dropout;
a linear output of 40 latent factors. Training (§5.2): mean squared error against the factor vectors first scaled
to unit norm (to take out popularity), minibatch gradient descent with Nesterov momentum, random time crops of
599 frames. Long tracks: the predictions of the 599-frame windows at the preset's hop (300) are averaged.

NIPS-paper variant (§5 "Scaling up", first paragraph): "two convolutional layers and two fully connected layers";
"3 second fragments", the prediction for a longer clip averaged "across these windows". Switch: a window shorter
than the 30 s clip, e.g. ``build("cf-regression", window_frames=60)`` (3 s at ~20 frames/s); such windows get the
NIPS depth (two convolutions, one hidden dense layer + the output) unless ``conv_channels``/``dense_layers`` are
given, training crops ``window_frames`` frames, and a track's windows are back to back.

The factors: the seed used Spotify's ``vector_exp`` (blog) and weighted matrix factorisation (NIPS). Here
``implicit``'s ALS (:func:`soundalike.interactions.als_item_factors`, the same Hu et al. model) over a playlist x
track matrix built by :func:`soundalike.interactions.load_interactions` from the option ``interactions``; tracks
that appear in the data get factors; train/validation tracks without any are left out of training (counted in
the model card) but are embedded like every other track.

Choices (docs/models.md), where the seed is silent:

* Channel widths after the first layer (§6: "256 filters in the first layer"): 256, 512, 512 (doubling once) —
  the text gives no more; the NIPS variant uses 256, 256.
* Convolutions are unpadded ("valid": 599 -> 596 -> 149 -> 146 -> 73 -> 70 -> 35 -> 32 frames); the L2 pooling is
  ``sqrt(sum_t x_t^2 + 1e-8)``; dropout 0.5 after each hidden dense layer.
* Optimiser settings: SGD, Nesterov momentum 0.9, learning rate 0.01, batch 32; 30 epochs of ceil(tracks / 32)
  batches (the seed ran 750 000 updates on 0.5 M tracks, which says nothing for a personal library).
* Input scaling: each window's dB values scaled to [0, 1] below its peak (``db_to_unit``, as the other families),
  making predictions independent of playback gain.
* ALS: regularisation 0.01, 15 iterations, alpha 1 (``implicit``'s defaults; seed 004's comments say they must be
  tuned per data set), deterministic seed = the config seed; playlists stand for users.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from soundalike.audio.features import segment

from .base import Encoder, ModelConfig, ModelError, TrackSet, register

BLOG_CHANNELS = (256, 256, 512, 512)
NIPS_CHANNELS = (256, 256)
CLIP_FRAMES = 599  # 004 §5.1: 599 frames per 30 s clip


@dataclass
class CFRegressionConfig(ModelConfig):
    """Seed 004 §5.1-5.2 hyper-parameters; empty/zero architecture fields mean "the seed's for the window"."""

    embedding_dim: int = 40
    n_factors: int = 40
    window_frames: int = CLIP_FRAMES
    window_hop: int = 0  # 0: the preset's hop (300) for 599-frame windows, back-to-back windows otherwise
    conv_channels: tuple[int, ...] = ()  # () -> BLOG_CHANNELS, or NIPS_CHANNELS for short windows
    pool_sizes: tuple[int, ...] = ()  # between convolutions; () -> BLOG_POOLS / NIPS_POOLS
    filter_length: int = 4
    dense_units: int = 2048
    dense_layers: int = 0  # hidden dense layers; 0 -> 2 (blog), 1 (NIPS)
    dropout: float = 0.5
    lr: float = 0.01
    momentum: float = 0.9
    batch_size: int = 32
    epochs: int = 30
    validation_fraction: float = 0.1
    als_regularization: float = 0.01
    als_iterations: int = 15
    als_alpha: float = 1.0


def temporal_pool(h: torch.Tensor) -> torch.Tensor:
    """Global temporal pooling (004 §5.1): ``(n, C, T)`` -> ``(n, 3C)`` = [mean, max, L2 norm] over time."""
    l2 = torch.sqrt(h.pow(2).sum(dim=-1) + 1e-8)
    return torch.cat([h.mean(dim=-1), h.amax(dim=-1), l2], dim=1)


@register
class CFRegression(Encoder):
    """Seed 004's latent-factor regression convnet; a track's embedding is its predicted factor vector."""

    name = "cf-regression"
    preset_name = "dieleman"
    config_cls = CFRegressionConfig
    source = "004 §4, §5.1, §5.2 (NIPS variant: §5)"

    def __init__(self, config: CFRegressionConfig) -> None:
        super().__init__(config)
        cfg = config
        short = cfg.window_frames < CLIP_FRAMES
        cfg.conv_channels = tuple(int(c) for c in cfg.conv_channels) or (NIPS_CHANNELS if short else BLOG_CHANNELS)
        depth = len(cfg.conv_channels)
        pools = tuple(int(p) for p in cfg.pool_sizes) or tuple([4] + [2] * (depth - 2))[:depth - 1]
        if len(pools) != depth - 1:
            raise ModelError(f"cf-regression: {depth} convolutions need {depth - 1} pool sizes, got {pools}")
        cfg.pool_sizes = pools
        cfg.dense_layers = int(cfg.dense_layers) or (1 if short else 2)
        cfg.window_hop = int(cfg.window_hop) or (self.preset.segment_hop if cfg.window_frames == CLIP_FRAMES
                                                 else cfg.window_frames)
        cfg.embedding_dim = cfg.n_factors
        frames = cfg.window_frames
        for i in range(len(cfg.conv_channels)):
            if frames < cfg.filter_length:
                raise ModelError(f"cf-regression: a {cfg.window_frames}-frame window is too short for "
                                 f"{len(cfg.conv_channels)} convolutions with pooling {cfg.pool_sizes}; use fewer "
                                 "conv_channels or a longer window")
            frames -= cfg.filter_length - 1
            if i < len(pools):
                frames //= pools[i]
        if frames < 1:
            raise ModelError(f"cf-regression: a {cfg.window_frames}-frame window leaves no frame to pool")
        layers: list[nn.Module] = []
        width = self.preset.n_mels
        for i, channels in enumerate(cfg.conv_channels):
            layers += [nn.Conv1d(width, channels, cfg.filter_length), nn.ReLU()]
            if i < len(pools):
                layers.append(nn.MaxPool1d(pools[i]))
            width = channels
        self.convs = nn.Sequential(*layers)
        dense: list[nn.Module] = []
        width *= 3
        for _ in range(cfg.dense_layers):
            dense += [nn.Linear(width, cfg.dense_units), nn.ReLU(), nn.Dropout(cfg.dropout)]
            width = cfg.dense_units
        dense.append(nn.Linear(width, cfg.n_factors))
        self.head = nn.Sequential(*dense)
        self._targets: dict[int, np.ndarray] = {}

    @property
    def cfg(self) -> CFRegressionConfig:
        assert isinstance(self.config, CFRegressionConfig)
        return self.config

    # --- network ----------------------------------------------------------------------------------------------
    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """Prepared windows ``(n, 128, frames)`` to the global temporal pooling output ``(n, 3 x last channels)``."""
        return temporal_pool(self.convs(x))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Prepared windows ``(n, 128, frames)`` (mel bins as channels) to predicted factors ``(n, n_factors)``."""
        return self.head(self.pooled_features(x))

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """MSE between predictions and unit-norm factor vectors (004 §5.2)."""
        return F.mse_loss(self.encode(batch["x"]), batch["target"]), {}

    def segments(self, spec_db: np.ndarray) -> np.ndarray:
        """A track's ``window_frames``-frame windows at ``window_hop`` (short tracks looped to one window)."""
        return segment(np.asarray(spec_db, dtype=np.float32), self.cfg.window_frames, self.cfg.window_hop)

    def embed_track(self, track_input: np.ndarray, device: str = "cpu", max_segments: int = 256
                    ) -> tuple[np.ndarray, np.ndarray]:
        """``(mean prediction over the track's windows, per-window predictions)``."""
        return super().embed_track(track_input, device, max_segments=min(max_segments, 32))

    def sample_batch(self, tracks: TrackSet, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        """Random ``window_frames`` crops of random tracks (004 §5.2 augmentation) and their tracks' targets."""
        if not len(tracks):
            raise ModelError("cf-regression: no tracks to draw a batch from")
        w = self.cfg.window_frames
        picks = rng.integers(0, len(tracks), size=batch_size)
        crops = np.empty((batch_size, self.preset.n_mels, w), dtype=np.float32)
        targets = np.empty((batch_size, self.cfg.n_factors), dtype=np.float32)
        for i, k in enumerate(picks):
            tid = int(tracks.ids[int(k)])
            if tid not in self._targets:
                raise ModelError(f"cf-regression: track {tid} has no target factors (setup_training first)")
            spec = tracks.inputs[int(k)]
            if spec.shape[1] <= w:
                crops[i] = segment(np.asarray(spec, dtype=np.float32), w, w)[0]
            else:
                start = int(rng.integers(0, spec.shape[1] - w + 1))
                crops[i] = spec[:, start:start + w]
            targets[i] = self._targets[tid]
        return {"x": self.prepare(torch.from_numpy(crops)), "target": torch.from_numpy(targets)}

    def optimizer(self) -> torch.optim.Optimizer:
        """Minibatch gradient descent with Nesterov momentum (004 §5.2)."""
        return torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=self.cfg.lr,
                               momentum=self.cfg.momentum, nesterov=True)

    # --- training data: CF factors from listening data ----------------------------------------------------------
    def setup_training(self, lib: Any, train: TrackSet, val: TrackSet, options: dict[str, Any]) -> dict[str, Any]:
        """Fit ALS on the listening data, keep unit-norm factors as targets, drop tracks without any (in place)."""
        from soundalike.evaluation.interactions import InteractionsError, als_item_factors, load_interactions

        unknown = sorted(set(options) - {"interactions", "track_map"})
        if unknown:
            raise ModelError(f"model {self.name!r} takes no training option {', '.join(unknown)} "
                             "(only interactions, track_map)")
        source = options.get("interactions")
        if source is None:
            raise ModelError("cf-regression learns to predict collaborative-filtering factors and needs listening "
                             "data: pass interactions (`soundalike train cf-regression --interactions PATH`: MPD "
                             "JSON slices with a track_uri,path CSV, a folder of M3U playlists, or a CSV of "
                             "list,track rows)")
        cfg = self.cfg
        track_map = options.get("track_map")
        try:
            data = load_interactions(lib, Path(os.fspath(source)), track_map=track_map)
            factors = als_item_factors(data, cfg.n_factors, regularization=cfg.als_regularization,
                                       iterations=cfg.als_iterations, alpha=cfg.als_alpha, seed=cfg.seed)
        except InteractionsError as exc:
            raise ModelError(str(exc)) from None
        norms = np.linalg.norm(factors, axis=1)
        self._targets = {int(t): (f / n).astype(np.float32)
                         for t, f, n in zip(data.track_ids, factors, norms, strict=True) if n > 1e-8}
        dropped = {}
        for label, part in (("train", train), ("validation", val)):
            keep = [i for i, t in enumerate(part.ids) if int(t) in self._targets]
            dropped[label] = len(part) - len(keep)
            part.ids[:] = [part.ids[i] for i in keep]
            part.inputs[:] = [part.inputs[i] for i in keep]
        if not len(train):
            raise ModelError(f"cf-regression: none of the training tracks has listening data in {source} "
                             f"({data.report()})")
        usable = [int(r[0]) for r in lib.conn.execute("SELECT track_id FROM spectrograms WHERE preset=?",
                                                       (self.preset_name,))]
        return {**data.summary(), "interactions": str(source), "cf_model": "implicit ALS",
                "cf_factors": cfg.n_factors, "tracks_with_factors": len(self._targets),
                "catalogue_tracks_without_listening_data": sum(1 for t in usable if t not in self._targets),
                "train_tracks_without_listening_data": dropped["train"],
                "validation_tracks_without_listening_data": dropped["validation"],
                "interactions_report": data.report()}
