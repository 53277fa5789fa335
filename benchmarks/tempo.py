"""The tempo from every tempogram column against every TEMPO_STEP-th one, on real files: CPU and changed estimates.

    python benchmarks/tempo.py FOLDER [FOLDER ...] [--steps 1 8] [--out FILE.json]

Decodes every audio file under the folders with the window ``soundalike index`` uses by default, computes the onset
envelope as :func:`soundalike.audio.descriptors.describe` does (log-mel clipped 60 dB below its peak), then
:func:`~soundalike.audio.descriptors.estimate_tempo` once per step (the order rotated from file to file), one thread,
CPU time. Reports the CPU per track of each step, how many files' estimates differ from step 1's, and the largest
difference in octaves (``tempo_log2``, the descriptor that holds it).
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


def run(files: list[str], steps: list[int]) -> dict[str, Any]:
    """The measurements above over ``files`` (undecodable files skipped); the first file's CPU is a warm-up, not
    counted, but its estimates are compared like every other file's."""
    import librosa

    from soundalike.audio import AudioError
    from soundalike.audio.analysis import ANALYSIS_SR, DEFAULT_WINDOW
    from soundalike.audio.decode import load_window
    from soundalike.audio.descriptors import TOP_DB, estimate_tempo
    from soundalike.audio.features import get_preset, log_mel

    preset = get_preset("melae")
    seconds = dict.fromkeys(steps, 0.0)
    tempos: dict[int, list[float]] = {s: [] for s in steps}
    skipped = 0
    timed = 0
    for n, path in enumerate(files):
        try:
            y, _ = load_window(path, ANALYSIS_SR, max_duration=DEFAULT_WINDOW.seconds,
                               excerpts=DEFAULT_WINDOW.excerpts)
        except AudioError:
            skipped += 1
            continue
        mel_db = log_mel(y, preset)
        mel_db = np.maximum(mel_db, mel_db.max() - TOP_DB)
        onset = librosa.onset.onset_strength(S=mel_db, sr=preset.sr, hop_length=preset.hop_length)
        for step in steps[n % len(steps):] + steps[: n % len(steps)]:
            started = time.process_time()
            tempo = estimate_tempo(onset, preset.sr, preset.hop_length, step=step)
            if timed:
                seconds[step] += time.process_time() - started
            tempos[step].append(tempo)
        timed += 1
    reference = np.log2(np.maximum(tempos[steps[0]], 1.0))
    rows = {}
    for step in steps:
        octaves = np.abs(np.log2(np.maximum(tempos[step], 1.0)) - reference)
        rows[str(step)] = {"cpu_seconds_per_track": round(seconds[step] / max(timed - 1, 1), 5),
                           "estimates_changed": int(np.count_nonzero(octaves)),
                           "largest_change_octaves": round(float(octaves.max(initial=0.0)), 4)}
    return {"files": timed, "skipped": skipped, "window_seconds": DEFAULT_WINDOW.seconds,
            "reference_step": steps[0], "steps": rows}


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module doc."""
    from soundalike.audio.descriptors import TEMPO_STEP

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, TEMPO_STEP],
                        help="tempogram steps; the first is the reference (default: 1 and TEMPO_STEP)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    from soundalike.audio.decode import is_audio_path

    files = sorted(str(p) for folder in args.folders for p in folder.rglob("*") if p.is_file() and is_audio_path(p))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from analysis import _emit  # benchmarks/analysis.py
    from stages import package_info  # benchmarks/stages.py

    payload = {"benchmark": "tempo",
               "command": " ".join(["benchmarks/tempo.py", *(argv if argv is not None else sys.argv[1:])]),
               "package": package_info(), "tempo_step": TEMPO_STEP, **run(files, args.steps)}
    return _emit(payload, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
