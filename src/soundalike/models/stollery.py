"""Stollery: the two-phase model of seed 002 (``/work/shared/seeds/002_f7887e4637c14773.txt`` §3.1.3, §3.2, §3.3.1).

Data (§3.1.3, §3.2.1 "Trimming Clips"; preset ``stollery``): log-mel spectrograms with 40 ms windows at 50 %
overlap (50 frames/s) and 60 bands; 4 s segments (200 frames) overlapping by 2 s (hop 100), 14 per 30 s track.

Phase 1, feature extraction (§3.2.1, figure 3.2): a fully connected autoencoder on the flattened 60 x 200 segment,
input -> hidden layer (N) -> encoding (N) -> decoding hidden layer (N) -> output (60 x 200), N = 128 (the
"encoding size (of the hidden layers)", table 3.1; 128 chosen in §3.2.2). Mean squared error; the thesis's
"recreation accuracy" (cosine similarity between a segment and its reconstruction, §3.2.1) is logged as the extra
metric ``recreation_accuracy``. Adam at 1e-3 (§3.2), batch 64 (figure 3.3), 10 epochs (§3.2.1 "Performance").

Phase 2, similarity (§3.2.2, figure 3.5): one fully connected layer N -> M (M = 128) on the frozen phase-1
encoding, trained with triplet margin loss: anchor = a segment, positive = an adjacent segment of the same track
(the anchor "shifted over by some amount of time"), negative = a segment of a random other track that is never
the anchor's own track nor a copy of it ("not equal to the input index ... some tracks have multiple copies").

A track's representation is the sequence of its 14 segment embeddings (§3.3.1), stored with every vector; the
pooled vector is their mean (§3.3.1 method 1, "mean-to-mean Euclidean distance"). After phase 2 ``encode`` is
projection(encoder(x)); the phase is a buffer, so checkpoints remember it.

Choices (docs/models.md):

- Layers: the thesis follows A. F. Agarap's PyTorch autoencoder guide [14], whose hidden, encoding and decoding
  hidden layers end in ReLU; we keep those, so encodings are non-negative and sparse as §3.2.1 figure 3.4
  observes ("many of the features are unused"). The guide's output layer is a ReLU too, but on our [0, 1] inputs
  (mean ~0.5) a quarter of the output units start negative for every input and never recover (phase-1 MSE 0.093,
  worse than predicting the mean, 0.043, on the synthetic library), so the output is a sigmoid (MSE ~0.02);
  ``output_activation="relu"`` gives the guide's layer. The phase-2 layer is linear.
- Input scaling: the base ``db_to_unit`` per segment (dB relative to the segment peak, floor -80 dB, in [0, 1]);
  the thesis only says the spectrograms were "normalised during training" (§3.3.2).
- Margin: the thesis gives none; it calls PyTorch's ``TML`` with defaults, so margin 1.0 with Euclidean distance
  (``torch.nn.TripletMarginLoss()``).
- Phase-2 batches use the same batch size as phase 1 (64; the thesis used 16 in figure 3.6), since the training
  loop has one batch size; override ``batch_size`` to change both. Phase-2 epochs are not given: 10.
- Positives: anchor segment i and positive i + 1 or i - 1 (direction at random) on the 14-segment grid; tracks
  with fewer than two segments (under 6 s) are never anchors. Negatives: a random segment of another track whose
  spectrogram is not a near-copy of the anchor's: same frame count within 2 % and mean absolute difference of
  the peak-normalised dB spectrograms (floor -80 dB) over their common frames <= ``duplicate_db`` (1 dB). Exact
  copies are already one catalogue track (audio hash); this also catches re-encodes. When a track set has no
  second distinct track (e.g. a one-track validation split), negatives come from the training tracks.
- Training data: phase 1 draws uniformly from all grid segments (the thesis's dataset of 14 clips per track);
  one epoch = as many segments as the training tracks have.
- Epochs: ``phase1_epochs`` + ``phase2_epochs`` (10 + 10). An ``epochs`` setting that differs from the sum (e.g.
  ``--epochs 4``) splits proportionally (2 + 2), each phase at least one epoch; ``epochs=1`` runs phase 1 only.
- The optimiser holds every parameter in both phases (frozen ones have no gradient, so Adam leaves them alone);
  it is rebuilt at the start of phase 2 (fresh moments), and the parameter-group layout stays the same, so a run
  resumed exactly at the phase boundary can load the saved optimiser state.
- Checkpoint selection: the training loop keeps the checkpoint with the lowest validation loss over all epochs,
  but phase-1 MSE and phase-2 triplet losses are not comparable; until the loop restarts its "best" at a new
  phase, the best checkpoint may be a phase-1 model (``NAME.last.pt`` always holds the final phase-2 state).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import Encoder, ModelConfig, ModelError, TrackSet, register
from .clothier import grid_counts, grid_segment, sample_grid_segments


@dataclass
class StolleryConfig(ModelConfig):
    """Seed 002 §3.2 hyper-parameters; ``embedding_dim`` is phase 2's M, ``encoding_dim`` phase 1's N."""

    embedding_dim: int = 128
    encoding_dim: int = 128
    hidden_dim: int = 128
    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 0  # 0 = phase1_epochs + phase2_epochs (set when the model is built)
    phase1_epochs: int = 10
    phase2_epochs: int = 10
    margin: float = 1.0
    duplicate_db: float = 1.0
    output_activation: str = "sigmoid"  # "relu" = the guide the thesis followed (see the module doc)


def _normalised(spec: np.ndarray) -> np.ndarray:
    x = np.asarray(spec, dtype=np.float32)
    return np.maximum(x - x.max(), -80.0)


def duplicate_groups(inputs: Sequence[np.ndarray], tolerance_db: float = 1.0) -> np.ndarray:
    """A group number per track: tracks whose spectrograms are (near-)identical share one (see module doc)."""
    n = len(inputs)
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    if n == 0:
        return parent
    frames = np.array([x.shape[1] for x in inputs], dtype=np.float64)
    bands = np.array([x.shape[0] for x in inputs])
    # Per-band means: their mean absolute difference is at most the full one (a cheap necessary condition).
    coarse = np.stack([np.resize(_normalised(x).mean(axis=1), int(bands.max())) for x in inputs])
    for i in range(n - 1):
        rest = slice(i + 1, n)
        near = ((bands[rest] == bands[i]) & (np.abs(frames[rest] - frames[i]) <= 0.02 * np.maximum(frames[rest],
                                                                                                    frames[i]))
                & (np.abs(coarse[rest] - coarse[i]).mean(axis=1) <= 2 * tolerance_db))
        for j in (i + 1 + np.flatnonzero(near)).tolist():
            if root(i) == root(j):
                continue
            m = int(min(frames[i], frames[j]))
            diff = np.abs(_normalised(inputs[i][:, :m]) - _normalised(inputs[j][:, :m])).mean()
            if float(diff) <= tolerance_db:
                parent[root(j)] = root(i)
    return np.array([root(i) for i in range(n)])


@dataclass
class _TripletPool:
    """Where one track set's triplets come from: anchors among its tracks, negatives among ``inputs``."""

    inputs: list[np.ndarray]
    groups: np.ndarray
    counts: np.ndarray
    anchors: np.ndarray
    duplicates: int


def _after_load(module: nn.Module, _keys: Any) -> None:
    """Loaded weights bring their phase: freeze/unfreeze to match it."""
    assert isinstance(module, Stollery)
    module._apply_phase()


@register
class Stollery(Encoder):
    """Seed 002: fully connected autoencoder (phase 1), then a linear layer trained with triplets (phase 2)."""

    name = "stollery"
    preset_name = "stollery"
    config_cls = StolleryConfig
    source = "002 §3.1.3, §3.2, §3.3.1"

    def __init__(self, config: StolleryConfig) -> None:
        super().__init__(config)
        p1, p2 = int(config.phase1_epochs), int(config.phase2_epochs)
        if p1 < 0 or p2 < 0 or p1 + p2 < 1:
            raise ModelError("stollery: phase1_epochs and phase2_epochs must be >= 0, and not both 0")
        if config.epochs and config.epochs != p1 + p2:  # an explicit total: split it in the same proportion
            total = int(config.epochs)
            p1 = total if total == 1 or p2 == 0 else min(total - 1, max(1, round(total * p1 / (p1 + p2))))
            config.phase1_epochs, config.phase2_epochs = p1, total - p1
        config.epochs = config.phase1_epochs + config.phase2_epochs
        size = self.preset.n_mels * self.preset.segment_frames
        self.encoder = nn.Sequential(nn.Linear(size, config.hidden_dim), nn.ReLU(),
                                     nn.Linear(config.hidden_dim, config.encoding_dim), nn.ReLU())
        outputs = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "linear": nn.Identity}
        if config.output_activation not in outputs:
            raise ModelError(f"stollery: output_activation must be one of {', '.join(outputs)}")
        self.decoder = nn.Sequential(nn.Linear(config.encoding_dim, config.hidden_dim), nn.ReLU(),
                                     nn.Linear(config.hidden_dim, size), outputs[config.output_activation]())
        self.projection = nn.Linear(config.encoding_dim, config.embedding_dim)
        self.triplet_loss = nn.TripletMarginLoss(margin=config.margin)
        self.register_buffer("phase", torch.tensor(1, dtype=torch.int64))
        self.register_load_state_dict_post_hook(_after_load)
        self._pools: dict[tuple[Any, ...], _TripletPool] = {}
        self._train_set: TrackSet | None = None
        self._segments_per_track: float | None = None
        self._apply_phase()

    @property
    def cfg(self) -> StolleryConfig:
        """The typed config."""
        assert isinstance(self.config, StolleryConfig)
        return self.config

    # --- phases ---------------------------------------------------------------------------------------------
    @property
    def current_phase(self) -> int:
        """1 (autoencoder) or 2 (triplet projection)."""
        return int(self.get_buffer("phase").item())

    @property
    def embedding_dim(self) -> int:
        """N (the encoding) in phase 1, M (the embedding) once phase 2 has started."""
        return self.cfg.embedding_dim if self.current_phase == 2 else self.cfg.encoding_dim

    def _apply_phase(self) -> None:
        phase2 = self.current_phase == 2
        for module, trains in ((self.encoder, not phase2), (self.decoder, not phase2), (self.projection, phase2)):
            for p in module.parameters():
                p.requires_grad_(trains)
                if not trains:
                    p.grad = None

    def set_phase(self, phase: int) -> bool:
        """Switch to phase 1 or 2 (freezing the other phase's parameters); True if the phase changed."""
        if phase not in (1, 2):
            raise ModelError(f"stollery has phases 1 and 2, not {phase}")
        changed = phase != self.current_phase
        self.get_buffer("phase").fill_(phase)
        self._apply_phase()
        return changed

    def begin_epoch(self, epoch: int) -> bool:
        """Phase 2 from epoch ``phase1_epochs`` on (0-based); True when the phase changes (new optimiser)."""
        return self.set_phase(2 if epoch >= self.cfg.phase1_epochs else 1)

    def optimizer(self) -> torch.optim.Optimizer:
        """Adam at 1e-3 over every parameter: the frozen phase's get no gradients, so Adam skips them."""
        return torch.optim.Adam(list(self.parameters()), lr=self.config.lr)

    # --- network --------------------------------------------------------------------------------------------
    def encode_phase1(self, x: torch.Tensor) -> torch.Tensor:
        """Segments ``(n, 60, 200)`` in [0, 1] to their phase-1 encodings ``(n, N)``."""
        return self.encoder(x.flatten(1))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Phase-1 encodings, or after phase 2 their projection ``(n, M)``."""
        code = self.encode_phase1(x)
        return self.projection(code) if self.current_phase == 2 else code

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Phase-1 reconstructions of segments in [0, 1]."""
        return self.decoder(self.encode_phase1(x)).view_as(x)

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Phase 1 (batch ``x`` only): MSE and recreation accuracy; phase 2 (``anchor/positive/negative``): triplet
        margin loss and the fraction of triplets whose positive is nearer than the negative."""
        if "anchor" not in batch:
            x = batch["x"]
            y = self.reconstruct(x)
            accuracy = F.cosine_similarity(y.flatten(1), x.flatten(1), dim=1, eps=1e-8).mean()
            return F.mse_loss(y, x), {"recreation_accuracy": float(accuracy.item())}
        with torch.no_grad():  # the phase-1 encoder is frozen in phase 2
            codes = [self.encode_phase1(batch[k]) for k in ("anchor", "positive", "negative")]
        a, p, n = (self.projection(c) for c in codes)
        loss = self.triplet_loss(a, p, n)
        with torch.no_grad():
            ordered = (F.pairwise_distance(a, p) < F.pairwise_distance(a, n)).float().mean()
        return loss, {"triplet_accuracy": float(ordered.item())}

    # --- data -----------------------------------------------------------------------------------------------
    def sample_batch(self, tracks: TrackSet, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        """Phase 1: random grid segments ``x``; phase 2: ``anchor``, ``positive``, ``negative`` segments (and the
        anchors again as ``x``, what the training loop's reconstruction plot shows)."""
        p = self.preset
        if self.current_phase == 1:
            crops = sample_grid_segments(tracks.inputs, rng, batch_size, p.segment_frames, p.segment_hop)
            return {"x": self.prepare(torch.from_numpy(crops))}
        idx = self.sample_triplets(tracks, rng, batch_size)
        pool = self.triplet_pool(tracks)
        out = {}
        for key, column in (("anchor", 0), ("positive", 2), ("negative", 4)):
            segs = np.stack([grid_segment(pool.inputs[int(t)], int(s), p.segment_frames, p.segment_hop)
                             for t, s in zip(idx[:, column], idx[:, column + 1], strict=True)])
            out[key] = self.prepare(torch.from_numpy(segs))
        out["x"] = out["anchor"]
        return out

    def warm(self, tracks: TrackSet) -> None:
        """Phase 2: the triplet pool, built once rather than in every batch worker."""
        if self.current_phase == 2:
            self.triplet_pool(tracks)

    def triplet_pool(self, tracks: TrackSet) -> _TripletPool:
        """Anchors, negatives and duplicate groups of a track set (cached per set)."""
        key = (tuple(tracks.ids), tuple(id(x) for x in tracks.inputs))
        pool = self._pools.get(key)
        if pool is not None:
            return pool
        p, tol = self.preset, self.cfg.duplicate_db
        inputs = list(tracks.inputs)
        groups = duplicate_groups(inputs, tol)
        duplicates = len(inputs) - len(set(groups.tolist()))
        extra = self._train_set
        if len(set(groups.tolist())) < 2 and extra is not None and extra is not tracks:
            mine = set(tracks.ids)
            inputs += [x for t, x in zip(extra.ids, extra.inputs, strict=True) if t not in mine]
            groups = duplicate_groups(inputs, tol)
        counts = grid_counts(inputs, p.segment_frames, p.segment_hop)
        anchors = np.flatnonzero(counts[:len(tracks)] >= 2)
        pool = _TripletPool(inputs, groups, counts, anchors, duplicates)
        self._pools[key] = pool
        return pool

    def sample_triplets(self, tracks: TrackSet, rng: np.random.Generator, count: int) -> np.ndarray:
        """``(count, 6)`` int rows ``anchor track, anchor segment, positive track, positive segment, negative
        track, negative segment``; track numbers index ``triplet_pool(tracks).inputs`` (the set's tracks first)."""
        pool = self.triplet_pool(tracks)
        if not len(pool.anchors):
            raise ModelError("stollery phase 2 needs tracks of at least two segments (6 s)")
        rows = np.empty((count, 6), dtype=np.int64)
        for i in range(count):
            a = int(pool.anchors[rng.integers(len(pool.anchors))])
            n_seg = int(pool.counts[a])
            s = int(rng.integers(n_seg))
            step = 1 if s == 0 else -1 if s == n_seg - 1 else int(rng.choice((-1, 1)))
            others = np.flatnonzero(pool.groups != pool.groups[a])
            if not len(others):
                raise ModelError("stollery phase 2 needs at least two different tracks (negatives come from "
                                 "other tracks, never copies of the anchor)")
            n = int(others[rng.integers(len(others))])
            rows[i] = (a, s, a, s + step, n, int(rng.integers(pool.counts[n])))
        return rows

    def setup_training(self, lib: Any, train: TrackSet, val: TrackSet, options: dict[str, Any]) -> dict[str, Any]:
        """Remember the training tracks (spare negatives), count segments and near-duplicate tracks."""
        super().setup_training(lib, train, val, options)
        p = self.preset
        self._train_set = train
        self._pools.clear()
        counts = grid_counts(train.inputs, p.segment_frames, p.segment_hop) if len(train) else np.ones(1)
        self._segments_per_track = float(counts.mean())
        card: dict[str, Any] = {"segments": int(counts.sum()) if len(train) else 0,
                                "phase1_epochs": self.cfg.phase1_epochs, "phase2_epochs": self.cfg.phase2_epochs}
        if self.cfg.phase2_epochs and len(train):
            card["duplicate_tracks"] = self.triplet_pool(train).duplicates
        return card

    def batches_per_epoch(self, n_tracks: int) -> int:
        """Segments per epoch / batch size; without ``setup_training``, 14 segments (30 s) per track."""
        per_track = self._segments_per_track or 14.0
        return max(1, int(np.ceil(n_tracks * per_track / self.config.batch_size)))
