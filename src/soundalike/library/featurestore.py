"""On-disk spectrogram store: append-only float16 chunk files, read back through memory maps.

Each spectrogram is one contiguous C-order ``(n_mels, n_frames)`` float16 block in a chunk file
``<root>/<preset>/chunk_NNNNN.f16``; where it lies (chunk, byte offset, shape) is recorded in the catalogue in
the same transaction that records the track. Data is written and flushed *before* that commit, so a crash can
only leave unreferenced bytes at a chunk's end — never a catalogue row pointing at missing data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHUNK_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Location:
    """Where one spectrogram lies."""

    chunk: int
    offset: int
    n_mels: int
    n_frames: int


class FeatureStore:
    """Append and memory-map float16 spectrograms for one library."""

    def __init__(self, root: str | os.PathLike[str], chunk_bytes: int = CHUNK_BYTES) -> None:
        self.root = Path(root)
        self.chunk_bytes = chunk_bytes

    def _chunk_path(self, preset: str, chunk: int) -> Path:
        return self.root / preset / f"chunk_{chunk:05d}.f16"

    def _current_chunk(self, preset: str) -> int:
        folder = self.root / preset
        chunks = sorted(int(p.stem.split("_")[1]) for p in folder.glob("chunk_*.f16")) if folder.exists() else []
        if not chunks:
            return 0
        last = chunks[-1]
        return last + 1 if self._chunk_path(preset, last).stat().st_size >= self.chunk_bytes else last

    def append(self, preset: str, spectrogram: np.ndarray) -> Location:
        """Write one ``(n_mels, n_frames)`` spectrogram durably and return where it lies."""
        data = np.ascontiguousarray(spectrogram, dtype=np.float16)
        if data.ndim != 2:
            raise ValueError(f"spectrogram must be 2-D, got shape {data.shape}")
        chunk = self._current_chunk(preset)
        path = self._chunk_path(preset, chunk)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as f:
            offset = f.tell()
            # An interrupted earlier write may have left a half value at the end: keep blocks 2-byte aligned.
            if offset % 2:
                f.write(b"\0")
                offset += 1
            f.write(data.tobytes())
            f.flush()
            os.fsync(f.fileno())
        return Location(chunk, offset, data.shape[0], data.shape[1])

    def read(self, preset: str, loc: Location) -> np.ndarray:
        """A read-only memory map of the stored spectrogram (float16, ``(n_mels, n_frames)``)."""
        return np.memmap(self._chunk_path(preset, loc.chunk), dtype=np.float16, mode="r", offset=loc.offset,
                         shape=(loc.n_mels, loc.n_frames))

    def disk_bytes(self) -> int:
        """Bytes used by all chunk files."""
        return sum(p.stat().st_size for p in self.root.glob("*/chunk_*.f16"))
