"""Media helpers: content types of audio files and spectrogram images (PNG, rendered with Pillow)."""

from __future__ import annotations

import io
import mimetypes
from functools import lru_cache
from pathlib import Path

import numpy as np

# What browsers and players expect; mimetypes alone misses several (opus, m4a, flac on some systems).
AUDIO_TYPES = {
    ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".oga": "audio/ogg", ".opus": "audio/ogg", ".flac": "audio/flac",
    ".wav": "audio/wav", ".aif": "audio/aiff", ".aiff": "audio/aiff", ".m4a": "audio/mp4", ".mp4": "audio/mp4",
    ".aac": "audio/aac", ".wma": "audio/x-ms-wma", ".wv": "audio/x-wavpack", ".ape": "audio/x-ape",
    ".mka": "audio/x-matroska", ".webm": "audio/webm", ".caf": "audio/x-caf", ".w64": "audio/x-w64",
}


def audio_content_type(path: str | Path) -> str:
    """The content type to serve an audio file with (by extension)."""
    suffix = Path(path).suffix.lower()
    return AUDIO_TYPES.get(suffix) or mimetypes.guess_type(str(path))[0] or "application/octet-stream"


@lru_cache(maxsize=1)
def _magma() -> np.ndarray:
    """The 256-colour magma map as uint8 RGB (from matplotlib, once)."""
    import matplotlib

    return (matplotlib.colormaps["magma"](np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)


def spectrogram_png(spectrogram: np.ndarray, *, width: int = 900, height: int = 200, dynamic_range: float = 80.0
                    ) -> bytes:
    """A log-mel spectrogram ``(n_mels, frames)`` in dB as a ``width`` x ``height`` PNG: low frequencies at the
    bottom, the loudest ``dynamic_range`` dB coloured (magma), time squeezed to ``width`` by averaging frames."""
    from PIL import Image

    spec = np.asarray(spectrogram, dtype=np.float32)
    if spec.ndim != 2 or spec.size == 0:
        raise ValueError("a spectrogram is a non-empty 2-D array")
    spec = np.nan_to_num(spec, nan=-200.0, posinf=0.0, neginf=-200.0)
    n_mels, frames = spec.shape
    columns = max(1, min(width, frames))  # a long track: frames averaged; a short one: stretched below
    edges = np.linspace(0, frames, columns + 1).astype(np.int64)
    pooled = np.add.reduceat(spec, edges[:-1], axis=1) / np.maximum(np.diff(edges), 1)
    top = float(pooled.max())
    level = np.clip((pooled - (top - dynamic_range)) / dynamic_range, 0.0, 1.0)
    # A palette image: one byte per pixel compresses several times better than RGB.
    image = Image.fromarray((level[::-1] * 255).astype(np.uint8), "P")
    image.putpalette(_magma().ravel().tolist())
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()
