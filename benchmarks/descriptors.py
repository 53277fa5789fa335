"""Descriptors version 2 against version 1 on real files: CPU, how far the vectors move, and the bandwidth's accuracy.

    python benchmarks/descriptors.py FOLDER [--max-files N] [--out FILE.json]

Decodes each file's analysis window as ``soundalike index`` does, computes its STFT and log-mel once, then
:func:`soundalike.audio.descriptors.describe` with ``FRAME_STEP = 1`` (version 1: the spectral statistics over
every frame) and ``FRAME_STEP = 2`` (version 2), alternated, one thread, CPU time (``time.process_time``). Reports
the CPU per track of each, the largest change of any descriptor in units of that descriptor's spread across the
files, and the smallest cosine between a file's two standardised vectors. Also the spectral bandwidth's largest
relative error against an exact float64 computation on the floored spectra ``describe`` passes, for the float32
form it uses and for the float64 E[f²] − c² form it replaced.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402


def _bandwidth_errors(power: np.ndarray, sr: int, n_fft: int) -> tuple[float, float]:
    """Largest relative bandwidth error of ``spectral_shape`` and of the replaced float64 form, against exact."""
    import librosa

    from soundalike.audio.descriptors import TOP_DB, spectral_shape

    floored = np.maximum(power, power.max() * 10.0 ** (-TOP_DB / 10.0))
    magnitude = np.sqrt(floored)
    ours = spectral_shape(floored, sr, n_fft, magnitude)["bandwidth"].astype(np.float64)
    freq = librosa.fft_frequencies(sr=sr, n_fft=n_fft).astype(np.float32)
    m64, f64 = magnitude.astype(np.float64), freq.astype(np.float64)
    total = m64.sum(axis=0)
    centre = (f64 @ m64) / total
    exact = np.sqrt((((f64[:, None] - centre) ** 2) * m64).sum(axis=0) / total)
    safe = magnitude.sum(axis=0)
    c32 = (freq @ magnitude) / safe  # the float64 form's centroid was float32
    old = np.sqrt(np.maximum((f64**2) @ m64 / safe - c32.astype(np.float64) ** 2, 0.0))
    return float(np.max(np.abs(ours - exact) / exact)), float(np.max(np.abs(old - exact) / exact))


def run(files: list[str]) -> dict[str, Any]:
    """The measurements above over ``files`` (the first is a warm-up, not counted)."""
    import soundalike.audio.descriptors as descriptors
    from soundalike.audio.analysis import ANALYSIS_SR, DEFAULT_WINDOW
    from soundalike.audio.decode import load_window
    from soundalike.audio.features import get_preset, log_mel, power_spectrogram

    preset = get_preset("melae")
    seconds = {1: 0.0, 2: 0.0}
    vectors: dict[int, list[np.ndarray]] = {1: [], 2: []}
    errors_new, errors_old = [], []
    for n, path in enumerate(files):
        y, _ = load_window(path, ANALYSIS_SR, max_duration=DEFAULT_WINDOW.seconds, excerpts=DEFAULT_WINDOW.excerpts)
        power = power_spectrogram(y, preset)
        mel_db = log_mel(y, preset, power=power)
        for step in ((1, 2) if n % 2 else (2, 1)):  # alternated
            descriptors.FRAME_STEP = step
            started = time.process_time()
            v = descriptors.describe(y, preset, power=power, mel_db=mel_db)
            if n:
                seconds[step] += time.process_time() - started
                vectors[step].append(v)
        if n:
            new, old = _bandwidth_errors(power, preset.sr, preset.n_fft)
            errors_new.append(new)
            errors_old.append(old)
    descriptors.FRAME_STEP = 2
    v1, v2 = np.array(vectors[1], np.float64), np.array(vectors[2], np.float64)
    spread = v1.std(axis=0) + 1e-12
    moved = np.abs(v2 - v1) / spread
    z1, z2 = (v1 - v1.mean(axis=0)) / spread, (v2 - v1.mean(axis=0)) / spread
    cosine = (z1 * z2).sum(axis=1) / np.linalg.norm(z1, axis=1) / np.linalg.norm(z2, axis=1)
    worst = int(np.argmax(moved.max(axis=0)))
    counted = len(files) - 1
    return {"files": counted,
            "cpu_seconds_per_track": {"version_1": round(seconds[1] / counted, 4),
                                      "version_2": round(seconds[2] / counted, 4)},
            "largest_change_in_spreads": round(float(moved.max()), 4),
            "largest_change_descriptor": descriptors.DESCRIPTOR_NAMES[worst],
            "median_change_in_spreads": round(float(np.median(moved)), 6),
            "smallest_standardised_cosine": round(float(cosine.min()), 6),
            "bandwidth_relative_error": {"float32_about_median": max(errors_new),
                                         "float64_replaced": max(errors_old)}}


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module doc."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--max-files", type=int, default=31, help="files spread over the folder (one warm-up)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    from soundalike.audio.decode import is_audio_path

    found = sorted(str(p) for p in args.folder.rglob("*") if p.is_file() and is_audio_path(p))
    files = found[:: max(1, len(found) // args.max_files)][: args.max_files]
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from analysis import _emit  # benchmarks/analysis.py
    from stages import package_info  # benchmarks/stages.py

    payload = {"benchmark": "descriptors",
               "command": " ".join(["benchmarks/descriptors.py", *(argv if argv is not None else sys.argv[1:])]),
               "package": package_info(), **run(files)}
    return _emit(payload, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
