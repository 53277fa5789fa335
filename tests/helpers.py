"""Helpers for tests: small real audio signals and files written on the fly (no committed audio)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050


def make_signal(seconds: float, freq: float = 440.0, sr: int = SR, seed: int = 0, noise: float = 0.02,
                channels: int = 1) -> np.ndarray:
    """A harmonic tone with a little noise and an amplitude pulse: distinct per ``freq`` and ``seed``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = sum(0.25 / h * np.sin(2 * np.pi * freq * h * t) for h in (1, 2, 3))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * (1 + seed % 3) * t) ** 2) + noise * rng.standard_normal(t.size)
    x = x.astype(np.float32)
    return np.stack([x, 0.5 * x], axis=1) if channels == 2 else x


def write_audio(path: Path, y: np.ndarray, sr: int = SR) -> Path:
    """Write ``y`` with the format implied by the extension (m4a through PyAV)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix.lower()
    if ext == ".m4a":
        import av

        mono = y if y.ndim == 1 else y.mean(axis=1)
        with av.open(str(path), "w") as c:
            s = c.add_stream("aac", rate=sr)
            s.layout = "mono"
            frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1).astype(np.float32), format="flt", layout="mono")
            frame.sample_rate = sr
            for pkt in s.encode(frame):
                c.mux(pkt)
            for pkt in s.encode(None):
                c.mux(pkt)
    elif ext == ".opus":
        import soxr

        sf.write(path, soxr.resample(y, sr, 48000), 48000, format="OGG", subtype="OPUS")
    elif ext in (".aif", ".aiff"):
        sf.write(path, y, sr, format="AIFF", subtype="PCM_16")
    else:
        sf.write(path, y, sr)
    return path


def synth_library(root: Path, styles: list[str], *, tracks_per_style: int = 3, duration: float = 8.0, seed: int = 3,
                  presets: tuple[str, ...] = ()) -> Path:
    """A small synthetic library at ``root/music``, indexed into ``root/lib`` (plus extra preset spectrograms)."""
    from soundalike import synth
    from soundalike.library.catalog import Library
    from soundalike.library.scan import ensure_spectrograms, scan

    synth.make_library(root / "music", styles=styles, tracks_per_style=tracks_per_style, duration=duration,
                       seed=seed)
    with Library.open(root / "lib") as lib:
        scan(lib, [root / "music"], isolate=False)
        for preset in presets:
            ensure_spectrograms(lib, preset)
    return root


def run_cli(*args: str) -> tuple[int, str, str]:
    """``soundalike ARGS`` in this process: ``(exit code, stdout, stderr)``."""
    from typer.testing import CliRunner

    from soundalike.app.cli import app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def library_tracks(root: Path) -> list:  # type: ignore[type-arg]
    """Every track of the library at ``root/lib``."""
    from soundalike.library.catalog import Library

    with Library.open(root / "lib") as lib:
        return lib.tracks()


def track_set(lib, preset: str = "melae"):  # type: ignore[no-untyped-def]
    """Every track of ``lib`` with its stored ``preset`` spectrogram, as a model's TrackSet."""
    from soundalike.models.base import TrackSet

    ids = [t.id for t in lib.tracks()]
    return TrackSet(ids, [lib.spectrogram(i, preset) for i in ids])


def fit_steps(model, batch, steps: int, *, train_mode: bool = True):  # type: ignore[no-untyped-def]
    """Loss of one fixed batch before and after ``steps`` optimiser steps on it, and the last extra metrics."""
    import torch

    opt = model.optimizer()
    model.train(train_mode)
    first = model.loss(batch)[0].item()
    for _ in range(steps):
        loss, _ = model.loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        last, extra = model.loss(batch)
    return first, last.item(), extra


def short_error(response, status: int | tuple[int, ...]) -> str:  # type: ignore[no-untyped-def]
    """The response has the expected 4xx status and a short JSON message, never a stack trace."""
    expected = (status,) if isinstance(status, int) else status
    assert response.status_code in expected, (response.status_code, response.text)
    detail = response.json()["detail"]
    assert isinstance(detail, str) and 0 < len(detail) < 300
    assert "Traceback" not in response.text and 'File "' not in response.text
    return detail

SERVER_TOKEN = "s3cret-token"
"""The token of the server tests' token-protected app."""


def written_tags(path: Path) -> dict[str, str]:
    """artist/album/title as read back by ``mutagen.File(path, easy=True)`` (ID3 frames for WAV)."""
    import mutagen

    f = mutagen.File(path, easy=True)
    assert f is not None and f.tags is not None
    if path.suffix == ".wav":
        return {
            k: str(f.tags[frame].text[0])
            for k, frame in (("artist", "TPE1"), ("album", "TALB"), ("title", "TIT2"))
        }
    return {k: f[k][0] for k in ("artist", "album", "title")}


def read_back(path: Path) -> tuple[np.ndarray, int]:
    """Samples and rate of a written file (m4a through PyAV)."""
    if path.suffix == ".m4a":
        import av

        with av.open(str(path)) as c:
            stream = c.streams.audio[0]
            x = np.concatenate([fr.to_ndarray().reshape(-1) for fr in c.decode(stream)])
            return x.astype(np.float32), stream.sample_rate
    x, sr = sf.read(path, dtype="float32", always_2d=False)
    return x, sr
