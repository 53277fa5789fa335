"""Where `soundalike index` spends its CPU per track: each stage of the analysis timed on its own, on real files.

    python benchmarks/stages.py FOLDER [--max-files N] [--json] [--out FILE]
    PYTHONPATH=OLD_CHECKOUT/src python benchmarks/stages.py FOLDER ...   # an older version, for before/after

Runs the stages of :func:`soundalike.audio.analysis.analyse_file` and of the default model's embedding one after
the other on each file, in this process, one thread (as an index worker runs), and reports CPU seconds
(``time.process_time``: what a shared machine's noise changes least) per track and per stage, plus the start-up
cost of a worker process and of the ``soundalike`` command. The stages are the very functions the scan calls, so
their sum is the analysis cost less the catalogue and feature-store writes (measured apart: ``commit``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")


def _start_up_seconds(code: str) -> float:
    """CPU seconds of a fresh interpreter that runs ``code`` (imports included)."""
    from analysis import _child_cpu  # benchmarks/analysis.py

    return _child_cpu([sys.executable, "-c", code])[0]


def package_info() -> dict[str, Any]:
    """Which soundalike ran: its folder, its checkout's commit and whether the package differs from it."""
    import soundalike

    package = Path(soundalike.__file__).parent
    commit = subprocess.run(["git", "-C", str(package), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    changed = subprocess.run(["git", "-C", str(package), "status", "--porcelain", "."], capture_output=True,
                             text=True).stdout.strip()
    return {"path": str(package), "commit": commit or None, "changed": bool(changed)}


def profile(files: list[str], seconds: float | None = None, decoder: str | None = None) -> dict[str, Any]:
    """Per-stage CPU seconds over ``files`` (the first file is a warm-up and not counted), analysing what
    ``soundalike index --analyse-seconds SECONDS`` would (default: what it does by default), decoding with
    ``decoder`` (``decode.DECODERS``; default: a new library's)."""
    import numpy as np
    import torch

    from soundalike.audio import decode as audio
    from soundalike.audio.analysis import (
        ANALYSIS_SR,
        MAX_ANALYSED_SECONDS,
        Analysis,
        at_rate,
        audio_hash,
        file_hash,
        read_tags,
    )
    try:  # a checkout from before musicnn's patches were cut out: the whole spectrogram
        from soundalike.audio.analysis import patch_log_mel
    except ImportError:
        patch_log_mel = None
    from soundalike.audio.descriptors import describe
    from soundalike.audio.features import get_preset, log_mel, power_spectrogram
    from soundalike.library.catalog import Library
    from soundalike.models import load_checkpoint
    from soundalike.models.pretrained import default_checkpoints

    torch.set_num_threads(1)
    try:  # an older checkout (before/after runs) analysed whole files up to MAX_ANALYSED_SECONDS in 10 excerpts
        from soundalike.audio.analysis import DEFAULT_WINDOW, Window

        chosen = DEFAULT_WINDOW if seconds is None else Window.of_seconds(seconds)
        window = (chosen.seconds, chosen.excerpts)
    except ImportError:
        window = (MAX_ANALYSED_SECONDS, 10)
    if decoder is not None and not hasattr(audio, "load_window"):
        raise SystemExit("--decoder needs a checkout whose decode module has decoders")
    models = [load_checkpoint(checkpoint)[0] for checkpoint in default_checkpoints()]
    totals: dict[str, float] = defaultdict(float)
    audio_seconds = 0.0
    times: dict[str, float] = defaultdict(float)
    clock = 0.0

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.process_time()
        times[stage] += now - clock
        clock = now

    with tempfile.TemporaryDirectory() as tmp, Library.open(Path(tmp) / "lib") as lib:
        for n, path in enumerate([files[0], *files]):
            times.clear()
            clock = time.process_time()
            fhash = file_hash(path)
            lap("file hash")
            if hasattr(audio, "load_window"):  # one opening of the file for its header and samples
                y, info = audio.load_window(path, ANALYSIS_SR, max_duration=window[0], excerpts=window[1],
                                            decoder=decoder or audio.DEFAULT_DECODER)
            else:  # an older checkout (before/after runs): a probe, then the samples, as its analyse_file did
                info = audio.probe(path)
                y = audio.load_excerpts(path, ANALYSIS_SR, max_duration=window[0], excerpts=window[1])
            lap("decode + resample to 22.05 kHz")
            ahash = audio_hash(y)
            lap("audio hash")
            tags = read_tags(path)
            lap("tags")
            base = get_preset("melae")
            power = power_spectrogram(y, base)
            lap("STFT")
            mel_db = log_mel(y, base, power=power)
            lap("mel + dB")
            descriptor = describe(y, base, power=power, mel_db=mel_db)
            lap("descriptors")
            spectrograms = {"melae": mel_db.astype(np.float16)}
            for model in models:
                key = getattr(model, "input_key", model.preset_name)  # an older checkout: the whole spectrogram
                if key not in spectrograms:
                    spectrograms[key] = (patch_log_mel(y, ANALYSIS_SR, key) if patch_log_mel is not None else
                                         log_mel(at_rate(y, ANALYSIS_SR, model.preset.sr), model.preset)
                                         ).astype(np.float16)
                    lap("default models' spectrograms (resample + mel)")
            result = Analysis(ahash, float(info.duration), y.size / ANALYSIS_SR, tags, spectrograms, descriptor)
            track_id, _ = lib.add_analysis(os.fsencode(os.path.abspath(path)) + str(n).encode(), 1, n, fhash + str(n),
                                           result)
            lap("commit (feature store + catalogue)")
            for model in models:
                pooled, seq = model.embed_track(spectrograms[getattr(model, "input_key", model.preset_name)])
                lap(f"default model's embedding ({model.name})")
                with lib.transaction():
                    lib.put_vector(track_id, f"bench-{model.name}", pooled, seq)
                lap("commit (feature store + catalogue)")
            if n == 0:
                continue
            audio_seconds += y.size / ANALYSIS_SR
            for stage, seconds in times.items():
                totals[stage] += seconds
    count = len(files)
    total = sum(totals.values())
    stages = [{"stage": stage, "cpu_seconds_per_track": round(seconds / count, 4),
               "share": round(seconds / total, 3)} for stage, seconds in sorted(totals.items(), key=lambda kv: -kv[1])]
    return {"files": count, "analysed_seconds": window[0],
            "decoder": decoder or getattr(audio, "DEFAULT_DECODER", None),
            "audio_hours": round(audio_seconds / 3600, 3),
            "cpu_seconds_per_track": round(total / count, 4), "stages": stages,
            # musicnn's front-end filters in bfloat16 (CPUs with AMX or AVX-512 BF16; None: a checkout from before
            # that choice), and their precision (float32, bfloat16 or int8; None: a checkout from before int8)
            "musicnn_bfloat16": next((getattr(m, "_bfloat16", None) for m in models if m.name == "musicnn"), None),
            "musicnn_precision": next((getattr(m, "_precision", None) for m in models if m.name == "musicnn"), None)}


def main(argv: list[str] | None = None) -> int:
    """Profile and print (or write) the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--max-files", type=int, default=24)
    parser.add_argument("--json", action="store_true", help="Print only the JSON.")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--analyse-seconds", type=float, default=None,
                        help="As soundalike index's option (0: whole tracks); default: its default.")
    parser.add_argument("--decoder", default=None, help="Decode Ogg as a library with this decoder would "
                        "(ffmpeg-ogg: new libraries; libsndfile: libraries indexed before).")
    args = parser.parse_args(argv)
    from analysis import _emit, machine_info, spread_files  # benchmarks/analysis.py

    files = spread_files(args.folder, args.max_files)
    if not files:
        print(f"no audio files under {args.folder}", file=sys.stderr)
        return 2
    result = profile(files, args.analyse_seconds, args.decoder)
    result["start_up"] = {
        "worker process (imports of an analysis worker)": round(_start_up_seconds(
            "import soundalike.library.scan, soundalike.audio.analysis, soundalike.audio.descriptors"
            ", soundalike.models"), 3),
        "soundalike command (--help)": round(_start_up_seconds("from soundalike.app.cli import main"), 3),
        # what a worker pays once more on its first file: its lazy imports (before 00ff467 librosa's, with
        # scipy.signal, scipy.stats and numba compiling)
        "worker process and its first analysis (5 s of noise)": round(_start_up_seconds(
            "import numpy as np; from soundalike.audio.analysis import analyse_waveform; "
            "analyse_waveform(np.random.default_rng(0).standard_normal(110250).astype(np.float32) * 0.1)"), 3),
        "PyTorch and the default's models loaded (an embedding's start-up)": round(_start_up_seconds(
            "from soundalike.models import load_checkpoint; from soundalike.models.pretrained import "
            "default_checkpoints; [load_checkpoint(c) for c in default_checkpoints()]"), 3)}
    payload = {"benchmark": "stages", "command": " ".join(["benchmarks/stages.py", *(argv or sys.argv[1:])]),
               "package": package_info(),
               "folder": str(args.folder), "machine": machine_info(),
               **result}
    if not args.json:
        for row in result["stages"]:
            print(f"{row['stage']:48s} {row['cpu_seconds_per_track']:.4f} s/track  {row['share']:.0%}",
                  file=sys.stderr)
    return _emit(payload, args.out)


if __name__ == "__main__":
    sys.exit(main())
