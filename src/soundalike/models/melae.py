"""MelAE: the 2-D convolutional autoencoder of seed 000 (§4.1, appendix B table 6).

Encoder: 128x128x1 -> Conv2D(3x3, 16) -> MaxPool 2 -> Conv2D(3x3, 8) -> MaxPool 2 -> Conv2D(3x3, 16) -> MaxPool 2
-> Flatten (16x16x16) -> Dense(256) = the embedding. Decoder: the mirror, UpSampling instead of MaxPool, and a
final one-filter Conv2D. Trained with binary cross-entropy on [0, 1]-scaled patches, Adam lr 0.0008, 5 random
128x128 patches per track per epoch (§4.1.3); converged after 5 epochs. Track embedding = mean over patches taken
at stride 0.7 (§4.2.1).

Choices (docs/models.md): table 6's decoder "Dense(256) -> Reshape(16,16,16)" cannot be literal (256 values do not
fill 16x16x16 = 4096), so the decoder's dense layer has 4096 units; convolutions use 'same' padding and ReLU,
the embedding layer is linear and the output sigmoid (the paper names no activations); batch size 32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import Encoder, ModelConfig, register


@dataclass
class MelAEConfig(ModelConfig):
    """Seed 000 §4.1.3 hyper-parameters."""

    embedding_dim: int = 256
    lr: float = 0.0008
    batch_size: int = 32
    epochs: int = 5
    patches_per_track: int = 5


@register
class MelAE(Encoder):
    """Seed 000's MelAE (table 6)."""

    name = "melae"
    preset_name = "melae"
    config_cls = MelAEConfig
    source = "000 §4.1, appendix B table 6"

    def __init__(self, config: MelAEConfig) -> None:
        super().__init__(config)
        self.encoder_convs = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.to_code = nn.Linear(16 * 16 * 16, config.embedding_dim)
        self.from_code = nn.Linear(config.embedding_dim, 16 * 16 * 16)
        self.decoder_convs = nn.Sequential(
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2),
            nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2),
            nn.Conv2d(16, 1, 3, padding=1),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Patches ``(n, 128, 128)`` in [0, 1] to 256-d codes."""
        h = self.encoder_convs(x.unsqueeze(1))
        return self.to_code(h.flatten(1))

    def decode_logits(self, code: torch.Tensor) -> torch.Tensor:
        """Codes to reconstruction logits ``(n, 128, 128)``."""
        h = F.relu(self.from_code(code)).view(-1, 16, 16, 16)
        return self.decoder_convs(h).squeeze(1)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Patches in [0, 1] to their reconstructions in [0, 1]."""
        return torch.sigmoid(self.decode_logits(self.encode(x)))

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Binary cross-entropy between patches and reconstructions (000 §4.1.3)."""
        x = batch["x"]
        loss = F.binary_cross_entropy_with_logits(self.decode_logits(self.encode(x)), x)
        return loss, {}

    def batches_per_epoch(self, n_tracks: int) -> int:
        """5 random patches per track per epoch."""
        cfg = self.config
        assert isinstance(cfg, MelAEConfig)
        return max(1, -(-n_tracks * cfg.patches_per_track // cfg.batch_size))
