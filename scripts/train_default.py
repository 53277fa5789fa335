"""Train the pretrained default model shipped in ``src/soundalike/models/pretrained/`` and write its model card.

    .venv/bin/python scripts/train_default.py --library TRAINLIB --music-root DEVMUSIC \\
        --heldout-library HELDLIB --heldout-root HELDMUSIC [--epochs 60] [--out-dir src/soundalike/models/pretrained]

TRAINLIB is an indexed library holding the development soundtracks (``scripts/fetch_debian_music.sh DEVMUSIC``)
and, optionally, synthetic music (``soundalike demo`` style, see ``--synthetic``); HELDLIB the held-out
soundtracks (``fetch_debian_music.sh --set heldout``), never trained on. The script trains the ``contrastive``
family with the configuration in :data:`DEFAULT_CONFIG`, measures same-album retrieval (MAP@10, precision@10) of
the model alone and fused with the descriptors against the descriptors alone on both sets, then copies the best
checkpoint to ``OUT_DIR/default.pt`` and writes ``OUT_DIR/default.md`` (the model card).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

# The configuration measured best in docs/models.md ("The pretrained default"): the contrastive encoder on
# 2x2-averaged 128-frame excerpts (5x cheaper than full resolution, as good on held-out music).
FAMILY = "contrastive"
DEFAULT_CONFIG: dict[str, Any] = {"input_pool": 2}
MAX_BYTES = 20 * 1024 * 1024


def _retrieval(lib: Any, key: str, root: Path | None) -> dict[str, float]:
    from models import retrieval_row  # benchmarks/models.py

    return retrieval_row(lib, key, root)


def measure(lib_path: Path, root: Path | None, checkpoint: Path) -> dict[str, Any]:
    """Descriptors, the model, and both fused, on one library (the model is embedded into it first)."""
    from soundalike.library.catalog import Library
    from soundalike.models.embedding import embed_library

    with Library.open(lib_path, create=False) as lib:
        model_id, _ = embed_library(lib, checkpoint)
        return {"descriptor": _retrieval(lib, "descriptor", root), "model": _retrieval(lib, model_id, root),
                "default (descriptor+model)": _retrieval(lib, f"descriptor+{model_id}", root)}


def _table(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| embedding | " + " | ".join(f"{name} MAP@10 | {name} P@10" for name in results) + " |",
             "|---|" + "---:|" * (2 * len(results))]
    keys = list(next(iter(results.values())))
    for key in keys:
        cells = []
        for res in results.values():
            row, base = res[key], res["descriptor"]
            change = row["map_at_10"] / max(base["map_at_10"], 1e-9) - 1
            cells += [f"{row['map_at_10']:.3f} ({change:+.0%})" if key != "descriptor" else
                      f"{row['map_at_10']:.3f}", f"{row['precision_at_10']:.3f}"]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return lines


def _epoch_seconds(payload: dict[str, Any], seconds: float, epochs: int) -> float:
    """Median measured epoch time (runs before epoch timing was recorded: wall time over epochs)."""
    times = payload.get("history", {}).get("epoch_seconds") or []
    return float(sorted(times)[len(times) // 2]) if times else seconds / max(epochs, 1)


def model_card(payload: dict[str, Any], results: dict[str, dict[str, Any]], seconds: float, args: Any) -> str:
    """The Markdown model card."""
    import torch

    data = payload.get("data", {})
    cfg = payload["config"]
    return "\n".join([
        "# soundalike default model", "",
        f"`{payload['model_id']}` — the `{payload['model']}` family (docs/models.md), what `soundalike index` embeds "
        "with and `--model default` searches (fused with the handcrafted descriptors, each part z-scored, equal "
        "weights).", "",
        "## Architecture",
        f"Log-mel excerpts of {cfg['segment_frames']} frames (preset `melae`: 22.05 kHz, hop 512, 128 mels, ≈3 s), "
        f"scaled to [0, 1] per excerpt, averaged {cfg['input_pool']}x{cfg['input_pool']}; "
        f"{len(cfg['channels'])} conv blocks ({'-'.join(str(c) for c in cfg['channels'])} channels, 3x3, batch "
        f"norm, ReLU, 2x2 max-pool), global mean + max pooling, linear to a {cfg['embedding_dim']}-d embedding. "
        f"Track vector: mean of the embeddings of excerpts every {cfg['segment_hop']} frames.", "",
        "## Training",
        f"Self-supervised (no labels): InfoNCE between two augmented excerpts of the same track (temperature "
        f"{cfg['temperature']}; gain ±{cfg['gain_db']} dB, frequency masks ≤ {cfg['freq_mask']} bands, noise "
        f"{cfg['noise']}), AdamW lr {cfg['lr']}, batch {cfg['batch_size']} tracks, {payload.get('epoch')} epochs "
        f"(best by validation loss of {args.epochs}), seed {cfg['seed']}; "
        f"{_epoch_seconds(payload, seconds, args.epochs):.0f} s per epoch with {torch.get_num_threads()} CPU "
        "thread(s).",
        f"Data: {data.get('train_tracks')} training + {data.get('validation_tracks')} validation tracks "
        f"({data.get('frames', 0) * 512 / 22050 / 3600:.1f} h): the development soundtracks of "
        "`scripts/fetch_debian_music.sh` (Debian game-music packages: wesnoth, warzone2100, hyperrogue, supertux, "
        "supertuxkart, pingus, flare, extremetuxracer; their licences are free: GPL, CC-BY-SA and the like)"
        + (" and synthetic music from `soundalike.synth`." if args.synthetic else "."), "",
        "## Same-album retrieval (leave one out, cosine over pooled vectors)",
        "`development` = the training music (tracks seen without labels: what a model trained on a library gives "
        "that library); `held-out` = 12 other soundtracks never trained on (`--set heldout`): how the shipped "
        "model does on new music. Change in MAP@10 against the descriptors in brackets.", "",
        *_table(results), "",
        "## Use and limits",
        "Trained on instrumental game music only (orchestral, chiptune, rock, electronic, ambient); it has not "
        "heard vocals-led pop, speech or live recordings and will place them less well. It describes sound "
        "(timbre, texture, production), not meaning or popularity. Reproduce with "
        "`scripts/train_default.py` (this card is written by it).", "",
    ])


def main(argv: list[str] | None = None) -> int:
    """Train, measure, install."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--library", type=Path, required=True, help="Indexed training library.")
    parser.add_argument("--music-root", type=Path, required=True, help="Development music root (albums = folders).")
    parser.add_argument("--eval-library", type=Path, help="Library to measure the development numbers on "
                                                          "(default: --library; give the dev-only library when "
                                                          "--library also holds synthetic music).")
    parser.add_argument("--heldout-library", type=Path, help="Indexed held-out library.")
    parser.add_argument("--heldout-root", type=Path, help="Held-out music root.")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--synthetic", action="store_true", help="Say in the card that --library has synthetic music.")
    parser.add_argument("--work", type=Path, default=Path("default-model-work"), help="Folder for checkpoints.")
    parser.add_argument("--out-dir", type=Path, default=Path("src/soundalike/models/pretrained"))
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)

    import torch

    from soundalike.library.catalog import Library
    from soundalike.models import load_checkpoint
    from soundalike.models.checkpoint import read_checkpoint
    from soundalike.models.training import last_checkpoint_path, train

    if args.threads:
        torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    checkpoint = args.work / "default.pt"
    started = time.monotonic()
    last = last_checkpoint_path(checkpoint)
    if last.exists() or not checkpoint.exists():  # a run cut short resumes from its last epoch
        with Library.open(args.library, create=False) as lib:
            train(lib, FAMILY, checkpoint, epochs=args.epochs, resume=last.exists(), **DEFAULT_CONFIG)
    seconds = time.monotonic() - started
    _, payload = load_checkpoint(checkpoint)
    if last.exists():  # the last epoch's history has every epoch's time; the best checkpoint's may stop earlier
        payload["history"] = read_checkpoint(last).get("history", payload.get("history", {}))
    results = {"development": measure(args.eval_library or args.library, args.music_root, checkpoint)}
    if args.heldout_library:
        results["held-out"] = measure(args.heldout_library, args.heldout_root, checkpoint)
    if checkpoint.stat().st_size > MAX_BYTES:
        raise SystemExit(f"{checkpoint} is {checkpoint.stat().st_size} bytes, over the 20 MB the package may carry")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(checkpoint, args.out_dir / "default.pt")
    (args.out_dir / "default.md").write_text(model_card(payload, results, seconds, args))
    print(json.dumps({"model_id": payload["model_id"], "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
