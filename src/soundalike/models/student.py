"""Student: a small convnet on the library's own mel spectrogram taught to give a pretrained teacher's features.

Issue 12 item 3 asks to use musicnn "as a teacher if a smaller student is faster at equal quality", and the
analysis-speed issue (13) needs the default's embedding cheaper: musicnn wants its own spectrogram (16 kHz, 96
bands: a resampling and a second STFT per track) and a wide first layer. The student reads the ``melae``
spectrogram every analysis computes anyway (22.05 kHz, 128 bands, hop 512) and learns, on training music only, to
regress the teacher's output for the same ~3 s of audio (knowledge distillation of features, Hinton et al. 2015;
FitNets, Romero et al. 2015): for every teacher patch of 187 frames at 16 kHz (2.99 s), the ``melae`` patch of
128 frames (2.97 s) starting at the same time. Targets are standardised per feature over the training patches,
so every feature counts alike in the mean squared error and the output is already in the space the fusion
z-scores.

Network: the contrastive part's conv blocks (3x3 conv, batch norm, ReLU, 2x2 max-pool) after 2x2 input
averaging, wider (32-64-128-256 channels), global mean + max pooling, and a two-layer head to the teacher's width.
Track vector = mean over ``max_patches`` evenly spread 128-frame patches (4, as the default's musicnn part).
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

from soundalike.audio.features import get_preset, segment

from .base import Encoder, ModelConfig, ModelError, TrackSet, db_to_unit, register, spread_segments
from .contrastive import _block, fused_block


@dataclass
class StudentConfig(ModelConfig):
    """Hyper-parameters (our choices; docs/models.md)."""

    embedding_dim: int = 1506  # the teacher's width (musicnn's pooled features)
    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 8
    teacher: str = "default.pt"  # a shipped model's name or file (default.pt, musicnn-mtt, ...) or a checkpoint path
    teacher_hop: int = 94  # teacher frames between the starts of two training patches (94 at 16 kHz ≈ 1.5 s)
    segment_frames: int = 128
    input_pool: int = 2
    channels: tuple[int, ...] = (32, 64, 128, 256)
    hidden: int = 512
    max_patches: int = 4  # embedding: this many patches evenly spread over the track (0: every patch)
    weight_decay: float = 1e-4


def resolve_teacher(name: str) -> Path:
    """The checkpoint file a teacher name means: a shipped model (``default.pt``, ``musicnn-mtt``, ...) or a path."""
    from .pretrained import _file, shipped_checkpoint

    path = shipped_checkpoint(name) or _file(name)
    if path.is_file():
        return path
    if Path(name).is_file():
        return Path(name)
    raise ModelError(f"student: teacher {name!r} is neither a shipped model nor a checkpoint file")


def aligned_start(teacher_frame: int, teacher_preset: Any, student_preset: Any) -> int:
    """The student spectrogram's frame that starts at the same time as ``teacher_frame`` of the teacher's."""
    seconds = teacher_frame * teacher_preset.hop_length / teacher_preset.sr
    return int(round(seconds * student_preset.sr / student_preset.hop_length))


@register
class Student(Encoder):
    """A cheap convnet on ``melae`` patches that regresses a teacher's (standardised) patch features."""

    name = "student"
    preset_name = "melae"
    config_cls = StudentConfig
    source = "beyond the seeds (issue 12 item 3: musicnn as a teacher)"
    cpu_batch = 16

    def __init__(self, config: StudentConfig) -> None:
        super().__init__(config)
        channels = list(config.channels)
        self.convs = nn.Sequential(*[_block(c_in, c_out) for c_in, c_out in zip([1, *channels], channels,
                                                                                  strict=False)])
        self.head = nn.Sequential(nn.Linear(2 * channels[-1], config.hidden), nn.ReLU(),
                                  nn.Linear(config.hidden, config.embedding_dim))
        # The teacher's per-feature mean and spread over the training patches (what the output is standardised by).
        self.target_mean: torch.Tensor
        self.target_std: torch.Tensor
        self.register_buffer("target_mean", torch.zeros(config.embedding_dim))
        self.register_buffer("target_std", torch.ones(config.embedding_dim))
        self._targets: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def cfg(self) -> StudentConfig:
        """The typed config."""
        assert isinstance(self.config, StudentConfig)
        return self.config

    def id_suffix(self) -> str:
        """``-pN`` when the embedding takes another number of patches than 4."""
        return "" if self.cfg.max_patches == 4 else f"-p{self.cfg.max_patches}"

    def segments(self, spec_db: np.ndarray) -> np.ndarray:
        """The track's 128-frame patches back to back, ``max_patches`` of them evenly spread."""
        frames = self.cfg.segment_frames
        return spread_segments(segment(np.asarray(spec_db, dtype=np.float32), frames, frames), self.cfg.max_patches)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Patches ``(n, 128, frames)`` in [0, 1] to standardised teacher features ``(n, embedding_dim)``."""
        h = x.unsqueeze(1)
        if self.cfg.input_pool > 1:  # average neighbouring bins and frames (as the contrastive part)
            h = F.avg_pool2d(h, self.cfg.input_pool)
        if self.training:
            h = self.convs(h)
        else:  # the same values within float rounding, about half the CPU (contrastive.fused_block)
            for block in self.convs:
                h = fused_block(block, h)
        return self.head(torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1))

    # --- training -----------------------------------------------------------------------------------------------
    def _cache_path(self, lib: Any, teacher_id: str) -> Path:
        """Where the teacher's targets for this library, teacher, hop and patch width are kept."""
        name = f"student-targets-{teacher_id}-h{self.cfg.teacher_hop}-f{self.cfg.segment_frames}.npz"
        return Path(lib.root) / "cache" / name

    def _teacher_targets(self, lib: Any, ids: list[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """``track id -> (student start frames, teacher features float16)`` for every teacher patch of the tracks
        the teacher can take (cached in the library with each track's audio hash: a resumed run does not run the
        teacher again, and an id a new track took over is not mistaken for the old one). The teacher reads its
        whole spectrogram, computed where the library lacks it (a scan may keep only a model's patches)."""
        from soundalike.app.progress import progress_bar
        from soundalike.library.catalog import CatalogError
        from soundalike.library.scan import ensure_spectrograms

        from .checkpoint import load_checkpoint

        teacher, payload = load_checkpoint(resolve_teacher(self.cfg.teacher))
        if teacher.embedding_dim != self.cfg.embedding_dim:
            raise ModelError(f"student: the teacher gives {teacher.embedding_dim} values a patch; "
                             f"set embedding_dim={teacher.embedding_dim}")
        ensure_spectrograms(lib, teacher.preset_name, on_progress=None)
        hashes = {int(t.id): str(t.audio_hash) for t in lib.tracks(ids)}
        cache = self._cache_path(lib, str(payload["model_id"]))
        done: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if cache.is_file():
            with np.load(cache) as stored:
                for key in stored.files:
                    tid = int(key[1:]) if key.startswith("s") else None
                    if tid in hashes and str(stored[f"h{tid}"]) == hashes[tid]:
                        done[tid] = (stored[key], stored[f"t{tid}"])
        want = [t for t in ids if int(t) not in done]
        frames, hop = teacher.preset.segment_frames, self.cfg.teacher_hop
        student_preset = get_preset(self.preset_name)
        with progress_bar("teacher features", unit="tracks") as update, torch.inference_mode():
            for n, tid in enumerate(want, 1):
                update("teacher", n, len(want))
                try:
                    spec = np.asarray(lib.spectrogram(int(tid), teacher.preset_name), dtype=np.float32)
                except CatalogError:  # its file no longer decodes: left out of training
                    continue
                n_student = lib.spectrogram(int(tid), self.preset_name).shape[1]
                starts = np.arange(0, max(1, spec.shape[1] - frames + 1), hop)
                patches = segment(spec, frames, frames) if spec.shape[1] < frames else \
                    np.stack([spec[:, s:s + frames] for s in starts])
                outs = [teacher.encode(teacher.prepare(torch.from_numpy(patches[i:i + teacher.cpu_batch])))
                        for i in range(0, len(patches), teacher.cpu_batch)]
                aligned = np.array([min(aligned_start(int(s), teacher.preset, student_preset),
                                        max(0, n_student - self.cfg.segment_frames)) for s in starts], dtype=np.int64)
                done[int(tid)] = (aligned, torch.cat(outs).numpy().astype(np.float16))
        if want:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(cache.name + f".{os.getpid()}.tmp.npz")
            arrays: dict[str, Any] = {}
            for t, (starts_, feats) in done.items():
                arrays.update({f"s{t}": starts_, f"t{t}": feats, f"h{t}": np.array(hashes[t])})
            np.savez(tmp, **arrays)
            os.replace(tmp, cache)
        return done

    def setup_training(self, lib: Any, train: TrackSet, val: TrackSet, options: dict[str, Any]) -> dict[str, Any]:
        """Run the teacher over every training and validation track (patches every ``teacher_hop`` frames; tracks
        it cannot take leave both sets) and standardise its features by the training patches' mean and spread (a
        resumed run keeps the ones it was trained with)."""
        super().setup_training(lib, train, val, options)
        targets = self._teacher_targets(lib, [*train.ids, *val.ids])
        for part in (train, val):
            keep = [i for i, t in enumerate(part.ids) if int(t) in targets]
            part.ids[:] = [part.ids[i] for i in keep]
            part.inputs[:] = [part.inputs[i] for i in keep]
        if not len(train):
            raise ModelError(f"student: no training track of {lib.root} has the teacher's spectrogram")
        self._targets = targets
        stacked = np.concatenate([targets[int(t)][1] for t in train.ids]).astype(np.float32)
        if bool(self.target_mean.eq(0).all()) and bool(self.target_std.eq(1).all()):  # not restored from a run
            self.target_mean.copy_(torch.from_numpy(stacked.mean(axis=0)))
            self.target_std.copy_(torch.from_numpy(np.maximum(stacked.std(axis=0), 1e-3)))
        return {"teacher": self.cfg.teacher, "teacher_patches": int(len(stacked))}

    def sample_batch(self, tracks: TrackSet, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        """Random teacher patches of random tracks: the aligned ``melae`` patches and the standardised targets."""
        frames = self.cfg.segment_frames
        picks = rng.integers(0, len(tracks), size=batch_size)
        x = np.empty((batch_size, tracks.inputs[0].shape[0], frames), dtype=np.float32)
        y = np.empty((batch_size, self.cfg.embedding_dim), dtype=np.float32)
        for j, t in enumerate(picks):
            starts, feats = self._targets[int(tracks.ids[int(t)])]
            k = int(rng.integers(0, len(starts)))
            spec = tracks.inputs[int(t)]
            crop = np.asarray(spec[:, starts[k]:starts[k] + frames], dtype=np.float32)
            x[j] = crop if crop.shape[1] == frames else segment(np.asarray(spec, dtype=np.float32), frames, frames)[0]
            y[j] = feats[k]
        target = (torch.from_numpy(y) - self.target_mean) / self.target_std
        return {"x": db_to_unit(torch.from_numpy(x)), "y": target}

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean squared error to the standardised teacher features; also their mean cosine."""
        out = self.encode(batch["x"])
        loss = F.mse_loss(out, batch["y"])
        cosine = F.cosine_similarity(out.detach(), batch["y"], dim=1).mean().item()
        return loss, {"cosine": cosine}

    def batches_per_epoch(self, n_tracks: int) -> int:
        """Every teacher patch of the training tracks about once an epoch."""
        patches = sum(len(s) for s, _ in self._targets.values()) or n_tracks
        share = n_tracks / max(1, len(self._targets))
        return max(1, int(patches * share) // self.cfg.batch_size)

    def optimizer(self) -> torch.optim.Optimizer:
        """AdamW, as the contrastive part."""
        return torch.optim.AdamW([p for p in self.parameters() if p.requires_grad], lr=self.cfg.lr,
                                 weight_decay=self.cfg.weight_decay)

