"""bfloat16 on CPUs that multiply it fast: when a model's heaviest layers may run in it, and the pieces they share.

Intel Xeons from Sapphire Rapids on multiply bfloat16 matrices several times faster than float32 (AMX tiles);
CPUs with AVX-512 BF16 but no AMX (AMD Zen 4 and later, Intel Cooper Lake) about twice as fast (their dot-product
instruction takes pairs of bfloat16; measured on an AMD EPYC: musicnn's front end 62 -> 33 ms a pass, one thread).
Models with a bfloat16 path (musicnn's front-end filters) take it in eval mode on such CPUs, after checking their
outputs against float32 once (a wrong kernel on an untested CPU must not go unseen: oneDNN's bfloat16 convolution
summed wrongly for some kernel shapes in torch 2.13, docs/performance.md).
``SOUNDALIKE_BFLOAT16=0`` keeps float32 everywhere; ``=1`` takes bfloat16 on any CPU that passes the check.
"""

from __future__ import annotations

import os
import threading

import torch

BF16_ENV = "SOUNDALIKE_BFLOAT16"
DECIDING = threading.Lock()  # first passes in several threads decide a model's precision one at a time


def bfloat16_fast() -> bool:
    """Whether bfloat16 paths may be taken: on CPUs with AMX tiles or AVX-512 BF16, unless
    ``SOUNDALIKE_BFLOAT16=0``; ``=1`` on any CPU (slower than float32 without either). The models check their
    results against float32 before they take it."""
    choice = os.environ.get(BF16_ENV, "").strip()
    if choice in ("0", "1"):
        return choice == "1"
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        try:
            if getattr(torch.cpu, probe)():
                return True
        except AttributeError:  # a PyTorch without the probe
            continue
    return False


def versions(*tensors: torch.Tensor | None) -> tuple[int | None, ...]:
    """The version counters of ``tensors`` (None for an inference tensor, which has none and cannot change outside
    inference mode): a cache made from them is stale when the tuple changes."""
    return tuple(None if t is None or t.is_inference() else t._version for t in tensors)
