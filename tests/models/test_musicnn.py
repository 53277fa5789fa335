"""musicnn ported to PyTorch: the published weights give the reference implementation's tag probabilities, and the
model embeds a library like any other (no TensorFlow, nothing fetched)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import run_cli
from soundalike import synth
from soundalike.audio.features import log_mel
from soundalike.library.catalog import Library
from soundalike.models import ModelError, load_checkpoint
from soundalike.models.pretrained import shipped_checkpoint
from soundalike.models.training import train

FIXTURE = json.loads((Path(__file__).parent / "data" / "musicnn_reference.json").read_text())


@pytest.mark.parametrize(("dataset", "precision", "atol"), [
    ("msd", "float32", 1e-3), ("mtt", "float32", 1e-3), ("msd", "bfloat16", 5e-3), ("mtt", "bfloat16", 5e-3),
    ("msd", "int8", 3e-2), ("mtt", "int8", 3e-2)])
def test_tag_probabilities_match_the_reference_implementation(dataset: str, precision: str, atol: float) -> None:
    """The 50 tag probabilities of every 3 s patch of 3 clips, within 1e-3 of TensorFlow's in float32 (measured:
    ~3e-6), within 5e-3 with the front-end filters and the first mid-end convolution in bfloat16 (measured: 3.8e-3
    and 4.6e-3 with AMX, from 1.7e-3 to 4.7e-3 with the front end alone on other CPUs) and 3e-2 in int8 (measured:
    1.7e-2); the faster paths forced here on whatever the CPU."""
    path = shipped_checkpoint(f"musicnn-{dataset}")
    assert path is not None
    model, payload = load_checkpoint(path)
    assert model.use_precision(precision) == precision
    assert payload["config"]["dataset"] == dataset and len(model.labels) == 50
    for (style, seed, seconds), expected in zip(FIXTURE["clips"], FIXTURE["models"][dataset]["reference"],
                                               strict=True):
        y = synth.render_track(style, seed, duration=seconds, sr=16000)
        segments = torch.from_numpy(model.segments(log_mel(y, "musicnn")))
        with torch.no_grad():
            got = model.tag_probabilities(model.prepare(segments)).numpy()
        assert got.shape == np.asarray(expected).shape == (int(seconds // 3), 50)
        np.testing.assert_allclose(got, np.asarray(expected), atol=atol)


def test_the_environment_then_the_cpu_choose_the_front_ends_precision(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from soundalike.models import musicnn, precision

    model, _ = load_checkpoint(shipped_checkpoint("musicnn-mtt"))  # type: ignore[arg-type]
    monkeypatch.setenv(precision.BF16_ENV, "0")
    assert precision.fast_precision() == "float32" and model.use_bfloat16() is False
    assert all(block.precision == "float32" for block in (*model.timbral, *model.temporal))
    monkeypatch.setenv(precision.BF16_ENV, "1")
    assert precision.fast_precision() == "bfloat16" and model.use_bfloat16() is True  # the seeded check passes
    assert all(block.precision == "bfloat16" for block in (*model.timbral, *model.temporal))
    for choice in ("float32", "bfloat16", "int8"):  # SOUNDALIKE_PRECISION decides before SOUNDALIKE_BFLOAT16
        monkeypatch.setenv(precision.PRECISION_ENV, choice)
        assert precision.fast_precision() == choice and model.use_precision() == choice
    monkeypatch.setenv(precision.PRECISION_ENV, "fastest")  # not a precision: the other settings decide
    assert precision.fast_precision() == "bfloat16"
    monkeypatch.delenv(precision.PRECISION_ENV)
    with pytest.raises(ValueError, match="unknown precision"):
        model.use_precision("float16")
    monkeypatch.delenv(precision.BF16_ENV)
    # the CPU decides: bfloat16 with AMX, int8 with AVX-512 VNNI or AVX2, bfloat16 with AVX-512 BF16, else float32
    table = {(False, False, False, False): "float32", (True, False, False, True): "bfloat16",
             (True, True, True, True): "bfloat16", (False, True, False, True): "int8",
             (False, False, False, True): "int8", (False, True, True, True): "int8",
             (False, False, True, False): "bfloat16"}
    for (amx, vnni, avx512_bf16, avx2), want in table.items():
        for probe, on in (("amx_tile", amx), ("vnni", vnni), ("avx512_bf16", avx512_bf16), ("avx2", avx2)):
            monkeypatch.setattr(torch.cpu, f"_is_{probe}_supported", lambda on=on: on)
        assert precision.fast_precision() == want
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")  # a PyTorch without a probe: the others decide
    monkeypatch.delattr(torch.cpu, "_is_vnni_supported")
    monkeypatch.delattr(torch.cpu, "_is_avx2_supported")
    assert precision.fast_precision() == "float32"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    fresh, _ = load_checkpoint(shipped_checkpoint("musicnn-mtt"))  # type: ignore[arg-type]
    fresh.embed_tracks([np.full((96, 400), -30.0, dtype=np.float32)])  # the first pass decides
    assert fresh._precision == precision.fast_precision() == "bfloat16" and fresh._bfloat16
    # a kernel that gets the sums wrong is caught by the start-up check, and float32 is kept
    monkeypatch.setenv(precision.BF16_ENV, "1")
    broken, _ = load_checkpoint(shipped_checkpoint("musicnn-mtt"))  # type: ignore[arg-type]
    original = musicnn._FreqPooledConv.pooled_first_bf16
    monkeypatch.setattr(musicnn._FreqPooledConv, "pooled_first_bf16", lambda self, x: original(self, x) * 1.2)
    assert broken.use_bfloat16() is False

    def quiet_filters_lost(self: musicnn._FreqPooledConv, x: torch.Tensor) -> torch.Tensor:
        out = original(self, x)  # filters whose outputs stay small come out as zeros: caught filter by filter
        small = out.abs().amax(dim=(0, 2)) < 0.5 * out.abs().max()
        return torch.where(small[None, :, None], torch.zeros_like(out), out)

    monkeypatch.setattr(musicnn._FreqPooledConv, "pooled_first_bf16", quiet_filters_lost)
    assert broken.use_bfloat16() is False
    monkeypatch.setattr(musicnn._FreqPooledConv, "pooled_first_bf16", original)
    assert broken.use_bfloat16() is True
    mid = musicnn._TimeConv.forward_bf16  # the mid end's bfloat16 product is checked too
    monkeypatch.setattr(musicnn._TimeConv, "forward_bf16", lambda self, x: mid(self, x) * 1.2)
    assert broken.use_bfloat16() is False
    assert all(block.precision == "float32" for block in broken.midend)
    monkeypatch.setenv(precision.PRECISION_ENV, "int8")  # the int8 path is checked the same way
    assert broken.use_precision() == "int8"
    int8 = musicnn._FreqPooledConv.pooled_first_int8
    monkeypatch.setattr(musicnn._FreqPooledConv, "pooled_first_int8", lambda self, x: int8(self, x) * 1.2)
    assert broken.use_precision() == "float32"
    monkeypatch.setattr(musicnn._FreqPooledConv, "pooled_first_int8", int8)

    def no_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("_int_mm: not implemented for this CPU")

    monkeypatch.setattr(torch, "_int_mm", no_kernel)  # a kernel missing on some CPU: float32, no crash
    assert broken.use_precision() == "float32"


@pytest.mark.parametrize(("precision", "cosine", "largest"), [("bfloat16", 0.9999, 1e-2), ("int8", 0.999, 4e-2)])
def test_faster_embeddings_are_float32s_within_a_small_angle(monkeypatch: pytest.MonkeyPatch, precision: str,
                                                             cosine: float, largest: float) -> None:
    """bfloat16 and int8 front ends embed within a small angle of float32 (measured on 10 development tracks:
    cosine 0.99998 and 0.9997 at worst)."""
    from soundalike.models import musicnn

    model, _ = load_checkpoint(shipped_checkpoint("musicnn-mtt"))  # type: ignore[arg-type]
    rng = np.random.default_rng(2)
    specs = [rng.normal(-40, 15, (96, 187 * 4)).astype(np.float32) for _ in range(3)]
    model.use_bfloat16(False)
    exact = model.embed_tracks(specs)
    calls = []
    name = f"pooled_first_{'bf16' if precision == 'bfloat16' else precision}"
    original = getattr(musicnn._FreqPooledConv, name)
    monkeypatch.setattr(musicnn._FreqPooledConv, name, lambda self, x: calls.append(1) or original(self, x))
    model.use_precision(precision)
    fast = model.embed_tracks(specs)
    assert len(calls) == 5 * 6  # the 2 timbral and 3 temporal blocks, in each of the 6 passes of 2 patches
    assert [block.precision for block in model.midend] == [precision if precision == "bfloat16" else "float32"] + [
        "float32"] * 2
    for (a, _), (b, _) in zip(exact, fast, strict=True):
        assert not np.array_equal(a, b)  # the faster path ran
        assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) > cosine
        assert float(np.abs(a - b).max()) < largest * float(np.abs(a).max())


def test_banded_filters_give_the_valid_correlation_of_every_filter() -> None:
    from soundalike.models.musicnn import banded_filters

    gen = torch.Generator().manual_seed(1)
    weight, x = torch.randn(5, 3, 7, generator=gen), torch.randn(2, 3, 4 * 8 + 6, generator=gen)
    matrix = banded_filters(weight, 8)  # (3 * (8 + 6), 8 * 5)
    rows = x.unfold(2, 14, 8).transpose(1, 2).reshape(-1, 3 * 14)  # 4 windows of 3 x 14 per input
    got = (rows @ matrix).reshape(2, 4 * 8, 5).transpose(1, 2)
    want = torch.nn.functional.conv1d(x, weight)  # (2, 5, 32)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
@pytest.mark.parametrize("which", ["timbral", "temporal"])
def test_faster_filters_follow_the_weights_and_serve_autograd_after_inference_mode(which: str, precision: str
                                                                                   ) -> None:
    model, _ = load_checkpoint(shipped_checkpoint("musicnn-mtt"))  # type: ignore[arg-type]
    model.use_precision(precision)
    block = model.timbral[0] if which == "timbral" else model.temporal[0]
    x = torch.nn.functional.pad(torch.rand(2, 1, 187, 96), (0, 0, *block.pad))
    with torch.inference_mode():  # the filters are first made here, as the embedding makes them
        block.pooled(x, precision)
    with torch.no_grad():  # a changed bias or batch-norm sign is seen (the filters are made again)
        block.conv.bias += 1.0
        block.bn.weight[:3] *= -1.0
        want = block.pooled_first(x)
    got = block.pooled(x, precision)
    assert not torch.equal(got, want)  # the faster path ran
    scale = want.abs().amax(dim=(0, 2)) + 0.01 * want.abs().max()
    assert bool(((got - want).abs().amax(dim=(0, 2)) <= 0.1 * scale).all())
    probe = x.clone().requires_grad_(True)  # a gradient through the block (e.g. a saliency map): neither has one,
    block(probe[:, :, block.pad[0]:probe.shape[2] - block.pad[1]]).sum().backward()  # so float32 serves it
    assert probe.grad is not None and bool(probe.grad.abs().sum() > 0)


def test_musicnn_hears_what_its_tags_say() -> None:
    model, _ = load_checkpoint(shipped_checkpoint("musicnn-mtt"))  # type: ignore[arg-type]
    tags = {}
    for style in ("techno", "classical"):
        y = synth.render_track(style, 3, duration=9.0, sr=16000)
        with torch.no_grad():
            probs = model.tag_probabilities(model.prepare(torch.from_numpy(model.segments(log_mel(y, "musicnn")))))
        tags[style] = dict(zip(model.labels, probs.mean(dim=0).tolist(), strict=True))
    assert tags["techno"]["techno"] > tags["classical"]["techno"]
    assert tags["classical"]["classical"] > tags["techno"]["classical"]


def test_a_library_embedded_with_musicnn_answers_queries(styled: Path, tmp_path: Path) -> None:
    import shutil

    library = tmp_path / "lib"
    shutil.copytree(styled / "lib", library)
    code, out, err = run_cli("index", str(styled / "music"), "--library", str(library), "--model", "musicnn",
                             "--json")
    assert code == 0, err
    [embedded] = json.loads(out)["library"]["embedded"]
    assert embedded["model_id"].startswith("musicnn-") and embedded["tracks"] == 24
    for model in ("musicnn", "musicnn-msd", f"descriptor+{embedded['model_id']}"):
        code, out, err = run_cli("similar", "1", "--library", str(library), "--model", model, "-f", "json",
                                 "--distance", "dtw", "-k", "3")
        assert code == 0 and len(json.loads(out)["results"]) == 3, err
    with Library.open(library) as lib:
        ids, vectors = lib.vectors(embedded["model_id"])
        assert vectors.shape == (24, 200)
        with pytest.raises(ModelError, match="not trained here"):
            train(lib, "musicnn", tmp_path / "m.pt", epochs=1)


def test_front_end_with_the_max_first_equals_the_published_order() -> None:
    """Eval mode takes the max over frequency before ReLU and batch norm (the min where the batch norm's scale is
    negative, as the shipped weights have in every block): the same values as bn(relu(conv)).amax."""
    model, _ = load_checkpoint(shipped_checkpoint("musicnn-msd"))  # type: ignore[arg-type]
    x = torch.from_numpy(np.random.default_rng(0).normal(0, 1, (3, 1, 187, 96)).astype(np.float32))
    for block in (*model.timbral, *model.temporal):
        assert bool((block.bn.weight < 0).any()) and bool((block.bn.weight > 0).any())
        padded = torch.nn.functional.pad(x, (0, 0, *block.pad))
        with torch.no_grad():
            published = block.bn(torch.relu(block.conv(padded))).amax(dim=3)
            np.testing.assert_allclose(block(x).numpy(), published.numpy(), rtol=1e-6, atol=1e-6)


def test_embedding_in_small_cpu_batches_equals_one_big_batch() -> None:
    model, _ = load_checkpoint(shipped_checkpoint("musicnn-msd"))  # type: ignore[arg-type]
    rng = np.random.default_rng(1)
    specs = [rng.normal(-40, 15, (96, frames)).astype(np.float32) for frames in (400, 1000, 187)]
    assert model.cpu_batch < sum(len(model.segments(s)) for s in specs)
    small = model.embed_tracks(specs)
    model.cpu_batch = 256  # type: ignore[misc]  # this instance only
    big = model.embed_tracks(specs)
    for (a, sa), (b, sb) in zip(small, big, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(sa, sb, rtol=1e-5, atol=1e-5)


def test_int8_gives_the_same_integers_on_a_cpu_without_vnni(tmp_path: Path) -> None:
    """Without VNNI (oneDNN limited to AVX2, what such a CPU runs) int8 products add 128 to the input bytes and sum
    pairs of byte products in int16 with saturation: the inputs' 128 steps keep those sums exact, so that path
    passes the start-up check and embeds as this CPU does (with 255 input steps it was off by up to 4.7)."""
    import os
    import subprocess
    import sys

    code = ("import sys, numpy as np, torch\n"
            "from soundalike.models import load_checkpoint\n"
            "from soundalike.models.pretrained import shipped_checkpoint\n"
            "m, _ = load_checkpoint(shipped_checkpoint('musicnn-mtt'))\n"
            "assert m.use_precision() == 'int8', 'the int8 path disagrees with float32'\n"
            "x = np.random.default_rng(3).normal(-40, 15, (2, 96, 187)).astype(np.float32)\n"
            "with torch.inference_mode():\n"
            "    np.save(sys.argv[1], m.encode(m.prepare(torch.from_numpy(x))).numpy())\n")
    outputs = []
    for name, isa in (("native", {}), ("avx2", {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"})):
        out = tmp_path / f"{name}.npy"
        env = {**os.environ, "SOUNDALIKE_PRECISION": "int8", **isa}
        done = subprocess.run([sys.executable, "-c", code, str(out)], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-800:]
        outputs.append(np.load(out))
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-4, atol=1e-4)
