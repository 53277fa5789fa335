"""Faster precisions on CPUs that multiply them fast: when a model's heaviest layers may run in bfloat16 or int8.

Intel Xeons from Sapphire Rapids on multiply bfloat16 matrices several times faster than float32 (AMX tiles).
Without AMX, CPUs multiply int8 faster than bfloat16 or float32: with AVX-512 VNNI (integer dot products: Intel
from Ice Lake, AMD from Zen 4) and with AVX2 alone (measured on an AMD EPYC, one thread, a pass of musicnn's 2
patches: float32 73 ms, bfloat16 41, int8 23; limited to AVX2: float32 83, int8 37).
Models with such paths (musicnn's front-end filters) take them in eval mode on such CPUs, after checking their
outputs against float32 once (a wrong kernel on an untested CPU must not go unseen: oneDNN's bfloat16 convolution
summed wrongly for some kernel shapes in torch 2.13, docs/performance.md).
``SOUNDALIKE_BFLOAT16=0`` keeps float32 everywhere; ``=1`` takes bfloat16 on any CPU that passes the check;
``SOUNDALIKE_PRECISION=float32|bfloat16|int8`` chooses any of the three (int8: integer products, see
``models/musicnn.py``).
"""

from __future__ import annotations

import os
import threading

import torch

BF16_ENV = "SOUNDALIKE_BFLOAT16"
DECIDING = threading.Lock()  # first passes in several threads decide a model's precision one at a time


FLOAT32, BFLOAT16, INT8 = "float32", "bfloat16", "int8"
PRECISIONS = (FLOAT32, BFLOAT16, INT8)
PRECISION_ENV = "SOUNDALIKE_PRECISION"


def _cpu_has(probe: str) -> bool:
    """``torch.cpu.<probe>()``, False where this PyTorch lacks the probe."""
    try:
        return bool(getattr(torch.cpu, probe)())
    except AttributeError:
        return False


def fast_precision() -> str:
    """The precision of the models' heaviest products on this CPU: ``SOUNDALIKE_PRECISION`` when set (float32,
    bfloat16 or int8; then ``SOUNDALIKE_BFLOAT16=0/1``: float32 / bfloat16); else bfloat16 with AMX tiles, int8
    with AVX-512 VNNI or AVX2, bfloat16 with AVX-512 BF16, float32 otherwise (the fastest on the CPUs measured:
    one with AMX, one with AVX-512 BF16 and VNNI, the latter also limited to AVX2; docs/performance.md). The
    models check a faster path's results against float32 before they take it."""
    choice = os.environ.get(PRECISION_ENV, "").strip().lower()
    if choice in PRECISIONS:
        return choice
    old = os.environ.get(BF16_ENV, "").strip()
    if old in ("0", "1"):
        return BFLOAT16 if old == "1" else FLOAT32
    if _cpu_has("_is_amx_tile_supported"):
        return BFLOAT16  # AMX's bfloat16 tiles outran int8 products there (docs/performance.md)
    if _cpu_has("_is_vnni_supported") or _cpu_has("_is_avx2_supported"):
        return INT8
    if _cpu_has("_is_avx512_bf16_supported"):
        return BFLOAT16
    return FLOAT32


def needs_grad(x: torch.Tensor) -> bool:
    """Whether a pass over ``x`` must keep a gradient (a saliency map, say): then the faster paths, which have
    none, give way to float32."""
    return x.requires_grad and torch.is_grad_enabled()


def versions(*tensors: torch.Tensor | None) -> tuple[int | None, ...]:
    """The version counters of ``tensors`` (None for an inference tensor, which has none and cannot change outside
    inference mode): a cache made from them is stale when the tuple changes."""
    return tuple(None if t is None or t.is_inference() else t._version for t in tensors)
