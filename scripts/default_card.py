"""Write the shipped default's model card (``src/soundalike/models/pretrained/default.md``) from committed
benchmark JSON: quality from ``benchmarks/results/quality-default.json`` (``scripts/reproduce_default.sh``), cost
from ``benchmarks/results/stages.json`` (``benchmarks/stages.py``). Every figure in the card comes from them.

    .venv/bin/python scripts/default_card.py [--results FILE] [--stages FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

ROWS = [("descriptor", "descriptors alone"), ("descriptor-metric", "descriptors alone, through their metric"),
        ("musicnn-part", "musicnn part alone"), ("contrastive-part", "contrastive part alone"),
        ("previous-default", "previous default (the same parts without metrics: 0.14 / 0.56 / 0.3)"),
        ("musicnn-msd", "musicnn as its package ships it (MSD, every patch analysed; peer tool)"),
        ("default", "**default**")]
ABOUT = {
    "musicnn": "musicnn (Pons & Serra 2019, `soundalike.models.musicnn`), the MagnaTagATune training published in the "
               "`musicnn` package (ISC licence, `MUSICNN-LICENSE`), ported to PyTorch (`scripts/convert_musicnn.py`; "
               "tag probabilities within 3e-6 of the reference implementation). Input: 96-band mel spectrograms at "
               "16 kHz (FFT 512, hop 256), 3 s patches. Embedding: the back end's pooled features — max and mean over "
               "time of the 753 front- and mid-end channels (1506 values, the input of its dense layers) — averaged "
               "over 4 patches evenly spread over the track.",
    "contrastive": "soundalike's self-supervised contrastive family (`soundalike.models.contrastive`: a 2-D conv "
                   "encoder on 128-band mel segments of 3 s at 22.05 kHz, NT-Xent between two augmented excerpts of "
                   "a track), trained for 2000 optimiser steps on *train-all*: 60.8 h of the train albums of "
                   "`benchmarks/album_sets.json`, 200 synthetic tracks and 46.5 h of symbolic music rendered by "
                   "`scripts/render_midi.py` (`scripts/reproduce_training_data.sh`). Embedding: 256 values, the mean "
                   "over 16 of its 3 s segments evenly spread over the analysed window (`max_segments`; every "
                   "segment until `scripts/reproduce_segments.sh` chose 16 on validation).",
}


def _gain(m: dict) -> str:  # type: ignore[type-arg]
    return f"{m['gain']:+.0%} [{m['gain_lo']:+.0%}, {m['gain_hi']:+.0%}]" if "gain" in m else "–"


def _row(result: dict, name: str) -> str:  # type: ignore[type-arg]
    m, p = result["map_at_10"], result["precision_at_10"]
    return (f"| {name} | {m['mean']:.3f} [{m['lo']:.3f}, {m['hi']:.3f}] | {_gain(m)} | "
            f"{_gain(m.get('vs_previous-default', {}))} | {p['mean']:.3f} |")


def _cost(stages: dict) -> list[str]:  # type: ignore[type-arg]
    rows = [r for r in stages["stages"] if r["stage"].startswith("default model")]
    total = stages["cpu_seconds_per_track"]
    window = stages.get("analysed_seconds")
    analysed = "whole tracks" if not window or window >= 600 else f"the default {window:g} s window of each track"
    out = [f"CPU seconds per track, one core, {stages['files']} development soundtracks, {analysed} "
           f"(`benchmarks/results/stages.json`, `{stages['command']}`):", "",
           "| stage | CPU s / track | share of analysis |", "|---|---:|---:|"]
    out += [f"| {r['stage']} | {r['cpu_seconds_per_track']:.3f} | {r['share']:.0%} |" for r in rows]
    out += [f"| the whole analysis (`soundalike index`) | {total:.3f} | 100% |", ""]
    precision = stages.get("musicnn_precision")
    if precision is None and stages.get("musicnn_bfloat16") is not None:  # a run from before int8
        precision = "bfloat16" if stages["musicnn_bfloat16"] else "float32"
    if precision is not None:
        out += [f"musicnn's front-end filters ran in {precision} in this run (with bfloat16 also its mid end's "
                "first convolution and the contrastive part's convolutions). The precision follows the CPU: "
                "bfloat16 with AMX tiles, int8 with AVX-512 VNNI or AVX2, bfloat16 with AVX-512 BF16, float32 "
                "otherwise, with the same quality on the validation albums and the test albums "
                "(`quality-bfloat16.json`, `quality-int8.json` and their test reports); on an AMD EPYC without "
                "AMX musicnn cost 0.15 CPU-s a track in float32, 0.08 in bfloat16 and 0.05 in int8 "
                "(docs/performance.md).", ""]
    return out


def main() -> None:
    """Render the card."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "quality-default.json")
    parser.add_argument("--stages", type=Path, default=ROOT / "benchmarks" / "results" / "stages.json")
    args = parser.parse_args()
    from soundalike.models import load_checkpoint
    from soundalike.models.pretrained import default_metrics, default_parts
    from soundalike.search.metric import load_metric

    parts, metrics = [], default_metrics()
    for part, weight in default_parts():
        if part == "descriptor":
            parts.append(("descriptor", "the handcrafted descriptors (timbre, loudness, rhythm, harmony statistics)",
                          weight, "", metrics.get(part)))
            continue
        _, payload = load_checkpoint(ROOT / "src" / "soundalike" / "models" / "pretrained" / part)
        parts.append((str(payload["model_id"]), f"`{part}`", weight, str(payload["model"]), metrics.get(part)))
    results = json.loads(args.results.read_text())
    stages = json.loads(args.stages.read_text())
    lines = ["# soundalike default model", "",
             "What `soundalike index` embeds with and `--model default` searches: a fusion of three parts, each "
             "z-scored (or, with a learned metric, mapped by it and centred), their cosine similarities weighted "
             "(`default.json`):", "",
             "| part | what | learned metric | weight |", "|---|---|---|---:|"]
    lines += [f"| `{mid}` | {what} | {f'`{m}`' if m else '–'} | {w:g} |" for mid, what, w, _, m in parts]
    lines += ["", "A library indexed before a part shipped searches the parts it has (their weights renormalised) "
              "until `soundalike index` runs again and embeds the rest.", "", "## Architecture"]
    lines += [f"- **{family}**: {ABOUT[family]}" for _, _, _, family, _ in parts if family in ABOUT]
    for mid, _, _, _, name in parts:
        if name:
            info = load_metric(name).info
            lines.append(f"- **metric `{name}`** of `{mid}`: RCA (`soundalike.search.metric`) — the inverse square "
                         f"root of the covariance of tracks within an album, shrunk by {info['shrink']:g} × its mean "
                         f"eigenvalue, fitted on {info['tracks']} tracks of {info['albums']} train albums "
                         "(`scripts/fit_metric.py`); the directions in which an album's tracks differ count less.")
    lines += ["", "## How it was chosen",
              "On the validation albums only (`benchmarks/album_sets.json`: 11 albums held out of all training). "
              "The musicnn part and its 0.2 / 0.8 fusion with the descriptors won among the descriptors, musicnn's "
              "two trainings and layers and the contrastive models of the time "
              "(`benchmarks/results/quality-validation-candidates.json`). Then five contrastive models trained at "
              "equal compute on more music, as a third part (`benchmarks/results/quality-training-data.json`): the "
              "one trained on the 60.8 h with rendered scores won; album positives were level with it and stronger "
              "augmentations hurt. Its weight (0.1, 0.2, 0.3, 0.45 of the fusion) was chosen on validation too "
              "(`benchmarks/results/quality-default-weights.json`). musicnn's Million Song Dataset weights, "
              "validated on all 22 non-test albums where only models that learned nothing from our music compete, "
              "earned a place beside the descriptors and MTT, but every such fusion with the contrastive part stayed "
              "below this default on the validation albums (`benchmarks/results/quality-wide-validation*.json`). "
              "The analysis window (105 s in 7 excerpts, 120 s in 8 before) was chosen on validation too "
              "(`benchmarks/results/quality-shorter-window.json`). Learned metrics (RCA on the train albums) for the "
              "descriptors and the contrastive part, their shrinkage and the weights 0.3 / 0.4 / 0.3 were chosen on "
              "validation by the rule of `scripts/reproduce_metric.sh` (`benchmarks/results/quality-metric*.json`). "
              "The test albums were evaluated after the choices: "
              "*test* as `index` analyses by default, *test-whole-tracks* as first reported.", "",
              "## Same-album retrieval (`benchmarks/results/quality-default.json`, "
              "`bash scripts/reproduce_default.sh WORK`)",
              "Leave one out within each set, cosine; MAP@10 with 95 % bootstrap intervals over albums; gains over "
              "the descriptors and over the previous default on the same resamples (paired).", ""]
    for set_name, data in results["sets"].items():
        lines += [f"**{set_name}** ({data['albums']} albums, {data['queries']} queries)", "",
                  "| embedding | MAP@10 [95 % CI] | vs descriptors [95 % CI] | vs previous default [95 % CI] | P@10 |",
                  "|---|---:|---:|---:|---:|"]
        lines += [_row(data["results"][key], name) for key, name in ROWS if key in data["results"]]
        lines.append("")
    lines += ["## Cost", *_cost(stages),
              "## Use and limits",
              "musicnn learned from MagnaTagATune (25k clips of 5,405 songs, many genres, with and without vocals); "
              "the contrastive part learned from game soundtracks and rendered classical and folk scores; the metrics "
              "learned from 14 game-soundtrack albums what varies within an album; the choice "
              "was made on instrumental game music. The default describes sound (timbre, instrumentation, rhythm, "
              "production), not meaning or popularity. Regenerate this card with `scripts/default_card.py`."]
    out = ROOT / "src" / "soundalike" / "models" / "pretrained" / "default.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
