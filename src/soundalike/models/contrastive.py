"""Contrastive: a self-supervised encoder where two excerpts of the same track are a positive pair.

Beyond the seeds. Seed 004 (§3, "what the autoencoders learn") argues that reconstruction objectives spend their
capacity on details that do not matter for recommendation; seed 002 §3.2.2 already used "another segment of the
same track" as the positive of a triplet. Here that idea is trained SimCLR-style: a batch holds two random
excerpts of each of ``batch_size`` tracks; each excerpt must pick its partner out of all other excerpts in the
batch (InfoNCE / NT-Xent, temperature 0.1), under audio augmentations that should not change what a track
sounds like (gain against a noise floor, time shift via random crops, frequency masking, additive noise), and,
when asked (off by default; issue 12 compares them on validation), the stronger ones of the contrastive-audio
literature (CLMR, Spijkervet & Burgoyne 2021; COLA, Saeed et al. 2021), done on the spectrogram: pitch shift
(a shift along the mel axis), time stretch (a longer or shorter crop resampled to the excerpt's length), EQ tilt
(a dB slope across the bands) and mixing (another track of the batch added 6–18 dB below).

Network: log-mel excerpts (preset ``melae``: 128 mels, hop 512; 128 frames ≈ 3 s) scaled to [0, 1] per excerpt,
4 conv blocks (3x3 conv, batch norm, ReLU, 2x2 max-pool; 16-32-64-128 channels), global mean + max pooling,
a linear layer to the 256-d embedding, and a 2-layer projection head (128-d) used only by the loss.
Track vector = mean of the embeddings of excerpts taken every 64 frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from soundalike.audio.features import segment

from .base import Encoder, ModelConfig, ModelError, TrackSet, db_to_unit, register, spread_segments
from .precision import BFLOAT16, DECIDING, fast_precision, needs_grad


@dataclass
class ContrastiveConfig(ModelConfig):
    """Hyper-parameters (our choices; see docs/models.md)."""

    embedding_dim: int = 256
    lr: float = 1e-3
    batch_size: int = 32
    epochs: int = 60
    segment_frames: int = 128
    segment_hop: int = 64
    frontend: str = "conv2d"
    input_pool: int = 2  # measured: 2x2 averaging is 5x cheaper than full resolution and as good (docs/models.md)
    channels: tuple[int, ...] = (16, 32, 64, 128)
    projection_dim: int = 128
    temperature: float = 0.1
    pairs_per_track: int = 4
    freq_mask: int = 16
    noise: float = 0.02
    gain_db: float = 12.0
    weight_decay: float = 1e-4
    positives: str = "track"
    excerpts_per_view: int = 1
    pitch_shift: int = 0  # at most this many mel bins up or down
    time_stretch: float = 0.0  # crop length drawn in [1/(1+x), 1+x] x the excerpt, resampled to it
    eq_tilt_db: float = 0.0  # a slope of at most this many dB from the lowest to the highest band
    mix: float = 0.0  # probability that an excerpt gets another track of the batch mixed in
    max_segments: int = 0  # embedding: 0 = every segment of the track; N = N of them evenly spread (cheaper)


def album_groups(albums: Sequence[tuple[int, str]]) -> dict[int, int]:
    """``track id -> group`` for tracks whose (case-folded) album tag at least one other track shares."""
    keys = {tid: album.strip().casefold() for tid, album in albums}
    counts: dict[str, int] = {}
    for key in keys.values():
        if key:
            counts[key] = counts.get(key, 0) + 1
    names = sorted(k for k, c in counts.items() if c > 1)
    index = {k: i for i, k in enumerate(names)}
    return {tid: index[key] for tid, key in keys.items() if key in index}


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                         nn.MaxPool2d(2))


def max_pool2(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 2)`` of ``(n, c, h, w)`` as the maximum of its four strided 2x2 corners: the same values.

    Written here because PyTorch's CPU max-pool kernel on contiguous (NCHW) input took half of this model's
    embedding time (it also computes the indices for a backward pass); this is 6x faster (measured, 1 thread)."""
    h, w = x.shape[2] // 2 * 2, x.shape[3] // 2 * 2
    return torch.maximum(torch.maximum(x[:, :, 0:h:2, 0:w:2], x[:, :, 0:h:2, 1:w:2]),
                         torch.maximum(x[:, :, 1:h:2, 0:w:2], x[:, :, 1:h:2, 1:w:2]))


def fused_block(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A :func:`_block` (conv, batch norm, ReLU, 2x2 max-pool) in eval mode with the batch norm folded into the
    convolution (``torch.nn.utils.fusion``) and ReLU after the pool (they commute): equal within float rounding.
    In ``x``'s dtype and memory format (bfloat16, channels last: :meth:`Contrastive.encode` on CPUs with AMX)."""
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    assert isinstance(block, nn.Sequential)
    conv, bn = block[0], block[1]
    assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
    assert bn.running_mean is not None and bn.running_var is not None
    weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight,
                                        bn.bias)
    if x.dtype != torch.bfloat16:
        return F.relu(max_pool2(F.conv2d(x, weight, bias, padding=conv.padding)))
    w16 = weight.to(torch.bfloat16)
    if x.shape[1] > 1 and x.is_contiguous(memory_format=torch.channels_last):
        w16 = w16.contiguous(memory_format=torch.channels_last)
    # the max on the bits as int16: the same values after ReLU, faster (see Musicnn's pooled_first_bf16)
    z = F.conv2d(x, w16, bias.to(torch.bfloat16), padding=conv.padding)
    return F.relu(max_pool2(z.view(torch.int16)).view(torch.bfloat16))


def _block1d(c_in: int, c_out: int, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv1d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm1d(c_out), nn.ReLU()]
    if pool:
        layers.append(nn.MaxPool1d(2))
    return nn.Sequential(*layers)


@register
class Contrastive(Encoder):
    """Self-supervised InfoNCE encoder over same-track excerpt pairs."""

    name = "contrastive"
    preset_name = "melae"
    config_cls = ContrastiveConfig
    source = "beyond the seeds (004 §3 motivation, 002 §3.2.2 positives)"
    # 16 excerpts a pass keep each activation below malloc's mmap threshold (measured: 0.05 CPU-s of system time
    # per track at 256 a pass, none at 16, user time the same).
    cpu_batch = 16

    def __init__(self, config: ContrastiveConfig) -> None:
        super().__init__(config)
        channels = list(config.channels)
        if config.frontend == "conv1d":  # mel bins as channels, convolutions over time only (as seed 004 §5)
            ins = [self.preset.n_mels // config.input_pool, *channels[:-1]]
            self.convs = nn.Sequential(*[_block1d(c_in, c_out, pool=i < len(channels) - 1)
                                         for i, (c_in, c_out) in enumerate(zip(ins, channels, strict=True))])
        else:
            self.convs = nn.Sequential(*[_block(c_in, c_out) for c_in, c_out in zip([1, *channels], channels,
                                                                                      strict=False)])
        self.to_embedding = nn.Linear(2 * channels[-1], config.embedding_dim)
        self.projection = nn.Sequential(nn.Linear(config.embedding_dim, config.embedding_dim), nn.ReLU(),
                                        nn.Linear(config.embedding_dim, config.projection_dim))
        if config.positives not in ("track", "album"):
            raise ModelError(f"contrastive: positives must be 'track' or 'album', not {config.positives!r}")
        self._groups: dict[int, int] = {}
        self._bfloat16: bool | None = None  # eval-mode convolutions in bfloat16: decided on the first pass

    @property
    def cfg(self) -> ContrastiveConfig:
        """The typed config."""
        assert isinstance(self.config, ContrastiveConfig)
        return self.config

    def segments(self, spec_db: np.ndarray) -> np.ndarray:
        """Excerpts of ``segment_frames`` every ``segment_hop`` frames (``max_segments`` of them evenly spread when
        set: embedding only, training crops its own)."""
        segs = segment(np.asarray(spec_db, dtype=np.float32), self.cfg.segment_frames, self.cfg.segment_hop)
        return spread_segments(segs, self.cfg.max_segments)

    def id_suffix(self) -> str:
        """``-sN`` when the embedding takes ``N`` segments of a track rather than all of them."""
        return f"-s{self.cfg.max_segments}" if self.cfg.max_segments else ""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Excerpts ``(n, 128, frames)`` in [0, 1] to embeddings ``(n, embedding_dim)``."""
        if self.cfg.input_pool > 1:  # average neighbouring bins and frames: ~5x less compute at pool 2
            x = F.avg_pool2d(x.unsqueeze(1), self.cfg.input_pool).squeeze(1)
        if self.cfg.frontend == "conv1d":
            h = self.convs(x)
            h = torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)
        else:
            h = x.unsqueeze(1)
            if self.training:
                h = self.convs(h)
            else:  # embedding: the same values within float rounding, half the CPU (fused_block)
                h = self._fused_convs(h, self.use_bfloat16() if self._bfloat16 is None else self._bfloat16)
            h = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return self.to_embedding(h)

    def _fused_convs(self, h: torch.Tensor, bfloat16: bool) -> torch.Tensor:
        """The conv blocks in eval mode (:func:`fused_block`); with ``bfloat16`` in bfloat16, channels last after the
        first block (oneDNN's kernels for one input channel are fast only in the plain layout)."""
        bfloat16 = bfloat16 and not needs_grad(h)
        if bfloat16:
            h = h.to(torch.bfloat16)
        for i, block in enumerate(self.convs):
            h = fused_block(block, h)
            if bfloat16 and i == 0:
                h = h.contiguous(memory_format=torch.channels_last)
        return h.float()

    def use_bfloat16(self, on: bool | None = None) -> bool:
        """Run the eval-mode conv blocks in bfloat16 (``on``), in float32 (False), or (None) in bfloat16 where the
        CPU's fast precision is bfloat16 (AMX: oneDNN's bfloat16 convolutions take a third of float32's) and a
        seeded batch's embeddings agree with float32's (each within 5 % of the batch's largest value: a guard
        against a kernel that sums wrongly on an untested CPU); returns the choice."""
        with DECIDING:
            if on is None:
                on = self.to_embedding.weight.device.type == "cpu" and fast_precision() == BFLOAT16 \
                    and self._agrees()
            self._bfloat16 = on
        return on

    def _agrees(self) -> bool:
        """Whether the conv blocks in bfloat16 give float32's features on a seeded batch of excerpts."""
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(4, 1, 64, 64, generator=gen).to(self.to_embedding.weight.device)
        with torch.inference_mode():
            want = self._fused_convs(x, False)
            try:
                got = self._fused_convs(x, True)
            except RuntimeError:  # a kernel this PyTorch lacks on this CPU
                return False
        return bool((got - want).abs().amax() <= 0.05 * want.abs().amax())

    def _augment(self, spec_db: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        n, n_mels, _ = spec_db.shape
        cfg = self.cfg
        if cfg.pitch_shift > 0:
            for i, shift in enumerate(rng.integers(-cfg.pitch_shift, cfg.pitch_shift + 1, n)):
                if shift:  # move the bands up or down; the emptied edge repeats the nearest band
                    spec_db[i] = spec_db[i].roll(int(shift), dims=0)
                    if shift > 0:
                        spec_db[i, :shift] = spec_db[i, shift:shift + 1]
                    else:
                        spec_db[i, shift:] = spec_db[i, shift - 1:shift]
        if cfg.eq_tilt_db > 0:
            tilt = rng.uniform(-cfg.eq_tilt_db, cfg.eq_tilt_db, (n, 1, 1)).astype(np.float32)
            spec_db = spec_db + torch.from_numpy(tilt) * torch.linspace(-0.5, 0.5, n_mels).view(1, -1, 1)
        if cfg.mix > 0 and n > 1:
            mixed = np.flatnonzero(rng.random(n) < cfg.mix)
            if len(mixed):  # power sum with another excerpt of the batch, 6-18 dB below
                other = (mixed + rng.integers(1, n, len(mixed))) % n
                level = torch.from_numpy(rng.uniform(-18.0, -6.0, (len(mixed), 1, 1)).astype(np.float32))
                a, b = spec_db[mixed], spec_db[other] + level
                top = torch.maximum(a, b)
                spec_db[mixed] = top + 10.0 * torch.log10(1.0 + 10.0 ** (-(a - b).abs() / 10.0))
        # Gain against a fixed floor: quiet passages sink into it, loud ones do not — a real level change.
        gain = torch.from_numpy(rng.uniform(-cfg.gain_db, cfg.gain_db, (n, 1, 1)).astype(np.float32))
        x = db_to_unit((spec_db + gain).clamp(min=-100.0))
        if cfg.noise > 0:
            x = (x + cfg.noise * torch.from_numpy(rng.standard_normal(x.shape).astype(np.float32))).clamp(0, 1)
        if cfg.freq_mask > 0:
            widths = rng.integers(0, cfg.freq_mask + 1, n)
            starts = rng.integers(0, n_mels - widths + 1)
            for i in range(n):
                x[i, starts[i]:starts[i] + widths[i], :] = 0.0
        return x

    def _crop(self, spec: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random ``segment_frames`` excerpt (time-stretched when asked) of one ``(n_mels, frames)`` input."""
        frames = self.cfg.segment_frames
        width = frames
        if self.cfg.time_stretch > 0:
            bound = np.log1p(self.cfg.time_stretch)
            width = max(8, int(round(frames * float(np.exp(rng.uniform(-bound, bound))))))
        if spec.shape[1] <= width:
            crop = segment(np.asarray(spec, dtype=np.float32), width, width)[0]
        else:
            start = int(rng.integers(0, spec.shape[1] - width + 1))
            crop = np.asarray(spec[:, start:start + width], dtype=np.float32)
        if width == frames:
            return crop
        stretched = F.interpolate(torch.from_numpy(crop)[None], size=frames, mode="linear", align_corners=False)
        return stretched[0].numpy()

    def sample_batch(self, tracks: TrackSet, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        """Two random, independently augmented excerpts of each of ``batch_size`` distinct tracks."""
        frames, per_view = self.cfg.segment_frames, max(1, self.cfg.excerpts_per_view)
        picks = rng.choice(len(tracks), size=min(batch_size, len(tracks)), replace=False)
        views = []
        for _ in range(2):
            crops = np.empty((len(picks) * per_view, tracks.inputs[0].shape[0], frames), dtype=np.float32)
            for j, t in enumerate(np.repeat(picks, per_view)):
                crops[j] = self._crop(tracks.inputs[int(t)], rng)
            views.append(self._augment(torch.from_numpy(crops), rng))
        ids = [int(tracks.ids[int(t)]) for t in picks]
        groups = [self._groups.get(t, -1 - t) for t in ids]  # a track without a group is a group of its own
        return {"a": views[0], "b": views[1], "groups": torch.tensor(groups, dtype=torch.int64)}

    def setup_training(self, lib: Any, train: TrackSet, val: TrackSet, options: dict[str, Any]) -> dict[str, Any]:
        """With ``positives="album"``, group tracks by their album tag (tracks of one album are positives)."""
        super().setup_training(lib, train, val, options)
        if self.cfg.positives != "album":
            return {"positives": "track"}
        ids = [*train.ids, *val.ids]
        self._groups = album_groups([(t.id, t.album) for t in lib.tracks(ids)])
        return {"positives": "album", "albums": len(set(self._groups.values()))}

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """NT-Xent: each excerpt against its partner, all other 2(B-1) excerpts as negatives; with album groups,
        every other excerpt of the same album is a positive too (SupCon, Khosla et al. 2020, "L_out")."""
        per_view = max(1, self.cfg.excerpts_per_view)
        h = self.encode(torch.cat([batch["a"], batch["b"]]))
        if per_view > 1:  # a view is several excerpts of the track: their mean embedding is contrasted
            h = h.view(-1, per_view, h.shape[-1]).mean(dim=1)
        z = F.normalize(self.projection(h), dim=1)
        n = batch["a"].shape[0] // per_view
        logits = z @ z.T / self.cfg.temperature
        logits.fill_diagonal_(float("-inf"))
        targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
        groups = batch.get("groups")
        if groups is None:
            groups = torch.arange(n)
        g = torch.cat([groups, groups]).to(z.device)
        positive = (g[:, None] == g[None, :]).fill_diagonal_(False)
        log_prob = F.log_softmax(logits, dim=1).masked_fill(~positive, 0.0)
        loss = -(log_prob.sum(dim=1) / positive.sum(dim=1).clamp(min=1)).mean()
        accuracy = (logits.argmax(dim=1) == targets).float().mean().item()
        return loss, {"pair_accuracy": accuracy}

    def batches_per_epoch(self, n_tracks: int) -> int:
        """``pairs_per_track`` pairs of each track per epoch."""
        per_batch = min(self.cfg.batch_size, n_tracks)
        return max(1, -(-n_tracks * self.cfg.pairs_per_track // per_batch))

    def optimizer(self) -> torch.optim.Optimizer:
        """AdamW (weight decay helps a small self-supervised net on a small library)."""
        return torch.optim.AdamW([p for p in self.parameters() if p.requires_grad], lr=self.cfg.lr,
                                 weight_decay=self.cfg.weight_decay)
