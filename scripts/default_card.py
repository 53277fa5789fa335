"""Write the shipped default's model card (``src/soundalike/models/pretrained/default.md``) from the committed
quality benchmark (``benchmarks/results/quality.json``): every figure in the card comes from that JSON.

    .venv/bin/python scripts/default_card.py [--results benchmarks/results/quality.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def _row(result: dict, name: str) -> str:  # type: ignore[type-arg]
    m, p = result["map_at_10"], result["precision_at_10"]
    gain = f"{m['gain']:+.0%} [{m['gain_lo']:+.0%}, {m['gain_hi']:+.0%}]" if "gain" in m else "–"
    return f"| {name} | {m['mean']:.3f} [{m['lo']:.3f}, {m['hi']:.3f}] | {gain} | {p['mean']:.3f} |"


def main() -> None:
    """Render the card."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "quality.json")
    args = parser.parse_args()
    from soundalike.models import load_checkpoint
    from soundalike.models.pretrained import default_checkpoint, default_weights

    checkpoint = default_checkpoint()
    assert checkpoint is not None
    _, payload = load_checkpoint(checkpoint)
    dw, mw = default_weights()
    results = json.loads(args.results.read_text())
    model_key = next(k for k in results["embeddings"] if k.endswith("pretrained/default.pt"))
    lines = [
        "# soundalike default model", "",
        f"`{payload['model_id']}` — what `soundalike index` embeds with and `--model default` searches, fused with "
        f"the handcrafted descriptors: each part z-scored, the cosine weighted {dw:g} descriptors / {mw:g} model "
        "(`default.json`).", "",
        "## Architecture",
        "musicnn (Pons & Serra 2019, `soundalike.models.musicnn`), the MagnaTagATune training published in the "
        "`musicnn` package (ISC licence, `MUSICNN-LICENSE`), ported to PyTorch (`scripts/convert_musicnn.py`; tag "
        "probabilities within 3e-6 of the reference implementation). Input: 96-band mel spectrograms at 16 kHz "
        "(FFT 512, hop 256), 3 s patches. Embedding: the back end's pooled features — max and mean over time of "
        "the 753 front- and mid-end channels (1506 values, the input of its dense layers) — averaged over 4 patches "
        "evenly spread over the track.", "",
        "## How it was chosen",
        "On the validation albums only (`benchmarks/album_sets.json`: 11 albums held out of all training), among "
        "the descriptors, musicnn's two trainings and layers, self-supervised contrastive models and their fusions "
        "(`benchmarks/results/quality-validation-candidates.json`, docs/models.md): the pooled layer beat the "
        "penultimate one; 4 patches per track were as good as every patch within the intervals at a fraction of "
        "the cost; the 0.2 / 0.8 weights beat equal ones. The test albums were evaluated once, after the choice.",
        "",
        "## Same-album retrieval (`benchmarks/results/quality.json`, `bash scripts/reproduce_quality.sh WORK`)",
        "Leave one out within each set, cosine; MAP@10 with 95 % bootstrap intervals over albums; the gain over the "
        "descriptors on the same resamples.", ""]
    for set_name, data in results["sets"].items():
        lines += [f"**{set_name}** ({data['albums']} albums, {data['queries']} queries)", "",
                  "| embedding | MAP@10 [95 % CI] | vs descriptors [95 % CI] | P@10 |", "|---|---:|---:|---:|",
                  _row(data["results"]["descriptor"], "descriptor"),
                  _row(data["results"][model_key], "model"),
                  _row(data["results"]["default"], "default (descriptor+model)"), ""]
    lines += [
        "## Use and limits",
        "musicnn learned from MagnaTagATune (25k clips of 5,405 songs, many genres, with and without vocals); the "
        "choice was made on instrumental game music. It describes sound (timbre, instrumentation, rhythm, "
        "production), not meaning or popularity. Regenerate this card with `scripts/default_card.py`."]
    out = ROOT / "src" / "soundalike" / "models" / "pretrained" / "default.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
