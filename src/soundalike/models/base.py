"""The one interface every model family implements, and the registry that maps names to families.

An :class:`Encoder` turns a track's stored log-mel spectrogram (dB) into a sequence of segment embeddings and a
pooled track vector. Training objectives differ per family (reconstruction, triplets, contrastive pairs, CF
factors), so each family also says how to draw a training batch and what its loss is; the loop itself lives in
:mod:`soundalike.training`. Configs are dataclasses whose defaults are the paper's hyper-parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from soundalike.audio.features import MelPreset, get_preset, segment, spread_indices

from .errors import ModelError


@dataclass
class ModelConfig:
    """Hyper-parameters shared by every family; subclasses add their own with the paper's defaults."""

    embedding_dim: int = 256
    lr: float = 1e-3
    batch_size: int = 32
    epochs: int = 10
    validation_fraction: float = 0.1
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Build from stored values, ignoring unknown keys and rejecting wrongly typed ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def db_to_unit(spec_db: torch.Tensor, top_db: float = 80.0) -> torch.Tensor:
    """Scale dB spectrogram patches ``(..., n_mels, frames)`` to [0, 1]: 0 = ``top_db`` below the patch peak, 1 = peak.

    Per-patch peak normalisation (librosa's ``ref=np.max, top_db=80``) makes the input independent of playback
    gain, which the seeds' spectrograms were too (MelAE's BCE needs inputs in [0, 1]).
    """
    peak = spec_db.amax(dim=(-2, -1), keepdim=True)
    return ((spec_db - peak) / top_db + 1.0).clamp(0.0, 1.0)


@dataclass
class TrackSet:
    """Tracks given to a model: catalogue ids and, aligned, each track's input (a dB spectrogram, or a vector)."""

    ids: list[int]
    inputs: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.ids)


class Encoder(nn.Module):
    """Segments in, segment embeddings out; the pooled track vector is their mean unless a family says otherwise."""

    name: ClassVar[str] = ""
    preset_name: ClassVar[str] = "melae"
    config_cls: ClassVar[type[ModelConfig]] = ModelConfig
    source: ClassVar[str] = ""
    # Segments per forward pass when embedding on the CPU. A pass's activations are freed as soon as it ends, and
    # glibc's malloc returns any block above its mmap threshold (at most 32 MB) to the kernel, which must zero
    # fresh pages for the next pass: with hundreds of MB per pass that was most of the system time of `soundalike
    # index` (docs/performance.md). Families with big activations per segment set a smaller number.
    cpu_batch: ClassVar[int] = 256

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config

    @property
    def preset(self) -> MelPreset:
        """The mel preset the model was built for."""
        return get_preset(self.preset_name)

    @property
    def embedding_dim(self) -> int:
        """Size of one segment embedding."""
        return self.config.embedding_dim

    def id_suffix(self) -> str:
        """What a model id adds to ``family-weightshash`` when settings make the same weights embed differently."""
        return ""

    @classmethod
    def stored_key(cls, config: ModelConfig) -> str:
        """The feature-store key of the spectrogram a model with ``config`` embeds from (default: its preset's
        name; a family that reads a few patches of it may keep only those, :func:`features.patches_key`)."""
        return cls.preset_name

    @property
    def input_key(self) -> str:
        """:meth:`stored_key` of this model."""
        return type(self).stored_key(self.config)

    @property
    def input_keys(self) -> tuple[str, ...]:
        """The stored spectrograms the model can embed from, in the order it prefers them: its :attr:`input_key`,
        then its preset's whole spectrogram (what libraries from before such keys hold)."""
        return tuple(dict.fromkeys((self.input_key, self.preset_name)))

    def segments(self, spec_db: np.ndarray) -> np.ndarray:
        """Cut one track's ``(n_mels, frames)`` spectrogram into the model's input segments (float32)."""
        return segment(np.asarray(spec_db, dtype=np.float32), self.preset.segment_frames, self.preset.segment_hop)

    def prepare(self, segments: torch.Tensor) -> torch.Tensor:
        """Scale raw dB segments ``(n, n_mels, frames)`` to what the network takes (default: [0, 1] per patch)."""
        return db_to_unit(segments)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Prepared segments ``(n, n_mels, frames)`` to embeddings ``(n, embedding_dim)``."""
        raise NotImplementedError

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor | None:
        """Autoencoders: prepared segments to their reconstructions; other families return None."""
        return None

    def pool(self, segment_embeddings: torch.Tensor) -> torch.Tensor:
        """The track vector from its segment embeddings (mean, as seed 000 §4.2 does)."""
        return segment_embeddings.mean(dim=0)

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """The training loss of one batch from :meth:`sample_batch`, and extra metrics to log."""
        raise NotImplementedError

    def sample_batch(self, tracks: TrackSet, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        """One training batch drawn from the tracks' inputs (default: random segments, for autoencoders)."""
        crops = random_segments(tracks.inputs, rng, batch_size, self.preset.segment_frames)
        return {"x": self.prepare(torch.from_numpy(crops))}

    def warm(self, tracks: TrackSet) -> None:
        """Build, in the training process, what :meth:`sample_batch` caches, so batch workers inherit it (default:
        nothing)."""

    # --- data hooks: where inputs come from (defaults: the preset's cached spectrograms) ----------------------
    input_kind: ClassVar[str] = "spectrogram"

    def load_inputs(self, lib: Any, track_ids: Sequence[int]) -> list[np.ndarray]:
        """Each track's input from the catalogue ``lib``: its stored dB spectrogram under the first of
        :attr:`input_keys` it has."""
        from soundalike.library.catalog import CatalogError

        *preferred, last = self.input_keys
        out = []
        for t in track_ids:
            for key in preferred:
                try:
                    out.append(lib.spectrogram(int(t), key))
                    break
                except CatalogError:
                    continue
            else:
                out.append(lib.spectrogram(int(t), last))
        return out

    def setup_training(self, lib: Any, train: TrackSet, val: TrackSet, options: dict[str, Any]) -> dict[str, Any]:
        """Prepare anything training needs besides inputs (e.g. CF targets); returns facts for the model card."""
        if options:
            raise ModelError(f"model {self.name!r} takes no training options ({', '.join(sorted(options))})")
        return {}

    def query_input(self, analysis: Any) -> np.ndarray:
        """The input for an outside (cold-start) file from its :class:`soundalike.analysis.Analysis`."""
        found = [k for k in self.input_keys if k in analysis.spectrograms]
        return analysis.spectrograms[found[0] if found else self.input_keys[-1]]

    def trackable(self, lib: Any, track_ids: Sequence[int]) -> list[int]:
        """The subset of ``track_ids`` this model can embed (default: all of them)."""
        return [int(t) for t in track_ids]

    def embed_track(self, track_input: np.ndarray, device: str = "cpu", max_segments: int = 256
                    ) -> tuple[np.ndarray, np.ndarray]:
        """``(pooled vector, segment embeddings)`` of one track's input, float32 (no gradients)."""
        return self._embed_together([track_input], device, max_segments)[0]

    def embed_tracks(self, track_inputs: Sequence[np.ndarray], device: str = "cpu", max_segments: int = 256
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`embed_track` of several tracks, their segments encoded together in batches of ``max_segments``
        (fewer, larger forward passes: musicnn's 4 patches a track are too few to fill one)."""
        if type(self).embed_track is not Encoder.embed_track:  # a family with its own embedding: one at a time
            return [self.embed_track(x, device, max_segments) for x in track_inputs]
        return self._embed_together(track_inputs, device, max_segments)

    def _embed_together(self, track_inputs: Sequence[np.ndarray], device: str, max_segments: int
                        ) -> list[tuple[np.ndarray, np.ndarray]]:
        """The segments of every track encoded in shared batches (of at most :attr:`cpu_batch` on the CPU), split
        back and pooled per track."""
        segs = [self.segments(np.asarray(x, dtype=np.float32)) for x in track_inputs]
        if not segs:
            return []
        flat = np.concatenate(segs)
        if torch.device(device).type == "cpu":
            max_segments = min(max_segments, self.cpu_batch)
        outs = []
        with torch.inference_mode():
            for start in range(0, len(flat), max_segments):
                x = self.prepare(torch.from_numpy(flat[start:start + max_segments]).to(device))
                outs.append(self.encode(x).cpu())
            seqs = torch.cat(outs).split([len(s) for s in segs])
            return [(self.pool(seq).numpy().astype(np.float32), seq.numpy().astype(np.float32)) for seq in seqs]

    def begin_epoch(self, epoch: int) -> bool:
        """Called before each epoch (0-based); return True when the optimiser must be rebuilt (e.g. a new
        training phase that trains other parameters, as seed 002's phase 2)."""
        return False

    def batches_per_epoch(self, n_tracks: int) -> int:
        """How many batches make one epoch over ``n_tracks`` tracks."""
        return max(1, -(-n_tracks // self.config.batch_size))

    def optimizer(self) -> torch.optim.Optimizer:
        """The paper's optimiser (Adam at ``config.lr`` over trainable parameters unless a family says otherwise)."""
        return torch.optim.Adam([p for p in self.parameters() if p.requires_grad], lr=self.config.lr)


def spread_segments(segments: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` of a track's segments, evenly spread over it (all of them when ``limit`` is 0)."""
    if not limit or len(segments) <= limit:
        return segments
    return segments[spread_indices(len(segments), limit)]


def random_segments(tracks: Sequence[np.ndarray], rng: np.random.Generator, count: int, frames: int
                    ) -> np.ndarray:
    """``count`` random ``frames``-wide crops, each from a random track (tracks shorter than a crop are looped)."""
    out = np.empty((count, tracks[0].shape[0], frames), dtype=np.float32)
    picks = rng.integers(0, len(tracks), size=count)
    for i, t in enumerate(picks):
        spec = tracks[int(t)]
        if spec.shape[1] <= frames:
            out[i] = segment(np.asarray(spec, dtype=np.float32), frames, frames)[0]
        else:
            start = int(rng.integers(0, spec.shape[1] - frames + 1))
            out[i] = spec[:, start:start + frames]
    return out


_REGISTRY: dict[str, type[Encoder]] = {}


def register(cls: type[Encoder]) -> type[Encoder]:
    """Class decorator: make a family available by its ``name``."""
    if not cls.name:
        raise ModelError(f"{cls.__name__} has no name")
    _REGISTRY[cls.name] = cls
    return cls


def model_names() -> list[str]:
    """Names of every registered model family."""
    from . import _load_all

    _load_all()
    return sorted(_REGISTRY)


def model_class(name: str) -> type[Encoder]:
    """The family called ``name``; raises :class:`ModelError` listing the known ones."""
    names = model_names()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(names)}") from None


def build(name: str, **overrides: Any) -> Encoder:
    """A freshly initialised model of family ``name`` with the paper's config, updated by ``overrides``."""
    cls = model_class(name)
    config = cls.config_cls()
    for key, value in overrides.items():
        if value is None:
            continue
        if not hasattr(config, key):
            raise ModelError(f"model {name!r} has no setting {key!r}")
        setattr(config, key, value)
    torch.manual_seed(config.seed)
    return cls(config)
