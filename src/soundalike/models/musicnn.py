"""musicnn (Pons & Serra, 2019): a music-tagging CNN pretrained on real music, ported to PyTorch.

"musicnn: pre-trained convolutional neural networks for music audio tagging", Jordi Pons and Xavier Serra,
ISMIR 2019 late-breaking demo; weights from the ``musicnn`` package (ISC licence, © Music Technology Group,
Universitat Pompeu Fabra 2019; notice in ``pretrained/MUSICNN-LICENSE``). Two trainings are shipped, converted
once by ``scripts/convert_musicnn.py`` (no TensorFlow at run time, nothing fetched): ``musicnn-msd`` (Million Song
Dataset, 50 Last.fm tags) and ``musicnn-mtt`` (MagnaTagATune, 50 tags).

The network, as ``musicnn/models.py`` builds ``MTT_musicnn`` / ``MSD_musicnn``:

- input: 3 s patches (187 frames) of a 96-band mel spectrogram at 16 kHz (FFT 512, hop 256), compressed as
  ``log10(10000·mel_power + 1)``, time first; batch normalisation over the single input channel;
- front end, musically motivated: two *timbral* convolutions spanning 7 frames x 38 and x 67 mel bands
  (204 filters each, time padded by 3) and three *temporal* ones spanning 128, 64 and 32 frames x 1 band
  (51 filters each, TensorFlow "same" padding), each ReLU → batch norm → max over frequency: 561 channels;
- mid end: three 1-D convolutions over time (7 frames, 64 filters, ReLU → batch norm), the second and third
  residual; the front-end and the three mid-end outputs are concatenated: 753 channels;
- back end: max and mean over time (interleaved per channel: 1506 values) → batch norm → dense 200 (ReLU) →
  batch norm = the **penultimate** layer → dense 50 (sigmoid: tag probabilities).

Batch norms use TensorFlow's epsilon (0.001). The track embedding is the penultimate layer of the 3 s patches
(back to back, as the package's extractor cuts them; ``max_patches`` of them evenly spread when set), averaged.
Not trainable here: its weights come from the package (``soundalike train`` refuses it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from soundalike.audio.features import patches_key

from .base import Encoder, ModelConfig, ModelError, TrackSet, register, spread_segments
from .precision import BFLOAT16, DECIDING, FLOAT32, INT8, PRECISIONS, fast_precision, needs_grad, versions

TF_BN_EPSILON = 1e-3
_T = TypeVar("_T")
N_MELS = 96
PATCH_FRAMES = 187

MTT_LABELS = ("guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano",
              "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing", "vocals",
              "no vocals", "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop", "soft",
              "sitar", "solo", "man", "classic", "choir", "voice", "new age", "dance", "male voice", "female vocal",
              "beats", "harp", "cello", "no voice", "weird", "country", "metal", "female voice", "choral")
MSD_LABELS = ("rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
              "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul",
              "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies",
              "blues", "hard rock", "ambient", "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop",
              "70s", "party", "country", "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal",
              "Progressive rock", "60s", "rnb", "indie pop", "sad", "House", "happy")


@dataclass
class MusicnnConfig(ModelConfig):
    """The published architecture (``build_musicnn``: 1.6x front-end filters, 64 mid-end filters, 200 units)."""

    embedding_dim: int = 200
    dataset: str = "msd"  # which training the weights come from: msd or mtt (only the tag names differ)
    frontend_scale: float = 1.6
    midend_filters: int = 64
    n_tags: int = 50
    epochs: int = 0
    max_patches: int = 0  # 0: every 3 s patch of the track; N: N patches evenly spread over it (cheaper)
    layer: str = "penultimate"  # or "pooled": the back end's max and mean over time (1506 values, before dense)


# Outputs per row of the bfloat16 front-end products (:func:`banded_filters`): frames of the temporal filters,
# mel bands of the timbral ones. Measured with AMX: 16-64 frames alike, 4-8 bands alike, 16 slower; with AVX-512
# BF16 (AMD EPYC) 16 frames and 4 bands take a tenth less than 32 and 8 (a pass 43 -> 38 ms), 2 bands no less.
TIME_BLOCK = 16
MEL_BLOCK = 4


def banded_filters(weight: torch.Tensor, block: int) -> torch.Tensor:
    """Filters ``(filters, rows, k)`` as the banded matrix ``(rows·(block + k - 1), block·filters)`` whose product
    with a window of ``rows x (block + k - 1)`` inputs (row major) gives ``block`` consecutive outputs of every
    filter along the last axis (a "valid" correlation; output major, then filter): column ``b·filters + f`` holds
    filter ``f`` shifted by ``b`` along that axis."""
    filters, rows, k = weight.shape
    matrix = weight.new_zeros(rows, block + k - 1, block, filters)
    for b in range(block):
        matrix[:, b:b + k, b] = weight.permute(1, 2, 0)
    return matrix.reshape(rows * (block + k - 1), block * filters)


BF16_TOLERANCE = 0.1  # largest error of a bfloat16 or int8 front-end filter at the start-up check, of its scale
# (seen: bfloat16 0.024)


def _rows(windows: torch.Tensor, row_dims: int, ones: bool) -> torch.Tensor:
    """Unfolded ``windows`` whose last ``row_dims`` axes are a window, as a matrix of one window a row, with a last
    column of ones if ``ones`` (copied once either way: an unfolded view is not contiguous)."""
    lead, window = windows.shape[:-row_dims], windows.shape[-row_dims:]
    width = int(np.prod(window))
    if not ones:
        return windows.reshape(-1, width)
    rows = windows.new_empty(int(np.prod(lead)), width + 1)
    rows[:, width] = 1
    rows[:, :width].view(*lead, *window).copy_(windows)
    return rows


def _bn(channels: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(channels, eps=TF_BN_EPSILON)


class _Cached(nn.Module):
    """A convolution ``conv`` and its batch norm ``bn``, with forms of their weights kept for eval-mode passes and
    the batch norm as those passes apply it."""

    conv: nn.Conv1d | nn.Conv2d
    bn: nn.BatchNorm1d | nn.BatchNorm2d

    def _cached(self, name: str, device: torch.device, make: Callable[[], _T]) -> _T:
        """``make()``, kept as ``name`` and made again only when a weight it comes from changed."""
        key = (versions(self.conv.weight, self.conv.bias, self.bn.weight), device, self.conv.weight.dtype)
        cached = getattr(self, name, None)
        if cached is None or cached[0] != key:
            with torch.inference_mode(False), torch.no_grad():
                cached = (key, make())
            setattr(self, name, cached)
        return cached[1]

    def _relu_bn(self, z: torch.Tensor) -> torch.Tensor:
        """ReLU and the eval-mode batch norm of the convolution's outputs ``(n, filters, T)`` (for the front end:
        its maxima over frequency; BatchNorm2d wants 4-D input: the same batch norm, on 3-D)."""
        bn = self.bn
        return F.batch_norm(F.relu(z), bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


class _FreqPooledConv(_Cached):
    """A 2-D convolution over (time, mel), ReLU, batch norm, then the max over the remaining mel axis."""

    def __init__(self, filters: int, time: int, mel: int, pad: tuple[int, int]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, filters, (time, mel))
        self.bn = nn.BatchNorm2d(filters, eps=TF_BN_EPSILON)
        self.pad = pad  # (before, after) along time
        self.precision = FLOAT32  # eval mode: of :meth:`pooled_first`, ``_bf16`` or ``_int8`` (Musicnn.use_precision)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, 1, T, mel)`` to ``(n, filters, T)``: batch norm before the max, as the original (in eval mode
        computed as :meth:`pooled_first`, the same values, or :meth:`pooled_first_bf16` or ``_int8``)."""
        x = F.pad(x, (0, 0, *self.pad))
        if self.training:
            return self.bn(F.relu(self.conv(x))).amax(dim=3)
        return self.pooled(x, self.precision)

    def pooled(self, x: torch.Tensor, precision: str) -> torch.Tensor:
        """:meth:`pooled_first` of time-padded ``x`` in ``precision`` (float32, bfloat16 or int8; neither of the
        last two has a gradient, so a pass that needs one, such as a saliency map, takes float32 there)."""
        if needs_grad(x):
            return self.pooled_first(x)
        if precision == BFLOAT16:
            return self.pooled_first_bf16(x)
        if precision == INT8:
            return self.pooled_first_int8(x)
        return self.pooled_first(x)

    def pooled_first(self, x: torch.Tensor) -> torch.Tensor:
        """``bn(relu(conv(x))).amax(dim=3)`` of time-padded ``x`` in eval mode, with the max over frequency first.

        ReLU and the eval-mode batch norm (per channel ``a·v + b``) are monotone in each value, so the max over
        frequency commutes with them — as the min where ``a < 0``, which is taken as ``-max`` of a convolution with
        those channels' weights negated (exact in floating point). ReLU and batch norm then run on ``(n, filters,
        T)`` instead of making two more copies of the ``(n, filters, T, mel)`` output: a quarter less CPU, and
        ~60 MB less per 3 s patch that the allocator got fresh from the kernel on each pass (docs/performance.md).
        """
        bn = self.bn
        sign = torch.where(bn.weight < 0, -1.0, 1.0).to(x.dtype)
        bias = self.conv.bias
        assert bias is not None  # built with one
        z = F.conv2d(x, self.conv.weight * sign[:, None, None, None], bias * sign)
        return self._relu_bn(z.amax(dim=3) * sign[:, None])

    def pooled_first_bf16(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`pooled_first` (of time-padded ``x``) with the convolution as bfloat16 matrix products and the
        max over frequency on their bfloat16 outputs (float32 in and out): for CPUs with AMX tiles or AVX-512 BF16
        (:func:`fast_precision`), where it costs a third (AMX) or a half (AVX-512 BF16) of the float32 convolution
        (relative errors ~5e-3; docs/performance.md).

        The products are plain bfloat16 matrix products, the most used bfloat16 kernel there is (oneDNN's own
        bfloat16 convolution was as fast but gave wrong sums for some kernel shapes, a 2-channel input with 64 x 1
        or 32 x 1 kernels, torch 2.13): rows of input windows times :func:`banded_filters`, which give a block of
        neighbouring outputs each. Unfolding one window per output (``kt x km`` values, up to 128 x 1 or 7 x 67)
        copied more than the product cost; a block's window overlaps the next one's by the kernel only.

        The bias is added inside the products, and the max over frequency is taken on the outputs' bits read as
        int16, in a third of the time of PyTorch's bfloat16 max, with the same values after ReLU: bfloat16 is sign
        and magnitude, so as int16 the positive values keep their order and every negative one is below them. The
        int16 max is thus the max wherever some value is positive, and some negative value where none is (ReLU
        makes both 0). The filters whose batch norm scales by ``a < 0``, where the max of ``bn(relu(v))`` is at
        the min of ``v``, have a product of their own, reduced by the int16 min: the min wherever all values are
        positive, and negative (as the true min) where some are not."""
        rows, fold = self._windows(x[:, 0].to(torch.bfloat16), ones=True)
        groups, order, rest = self._bf16_weights(x.device)
        parts = [fold(torch.mm(rows, matrix).view(torch.int16), least) for matrix, least in groups]
        # (n, filters, frames) in the filters' order: whole rows gathered
        picked = torch.cat(parts, dim=2).transpose(1, 2).index_select(1, order).view(torch.bfloat16).float()
        return self._relu_bn(picked.add_(rest[:, None]))

    def pooled_first_int8(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`pooled_first` (of time-padded ``x``) with the convolution as an int8 matrix product (int32 sums)
        and the max over frequency in int32: for CPUs without AMX, where integer products (AVX-512 VNNI, or AVX2's
        pairs of byte products) outrun bfloat16 and float32 ones.

        Each patch is quantised to the 128 steps from -128 to -1 between its own minimum and maximum (about
        ``-0.35..1.1`` after the input's batch norm), each filter to 255 steps of its own largest weight. Without
        VNNI (AVX2) oneDNN adds 128 to the input bytes and sums pairs of byte products in int16 with saturation:
        inputs of 0..127 then keep every pair sum within int16 (2·127·127), so every CPU gives the same
        integers — with 255 input steps the AVX2 sums overflowed, off by up to 4.7 (tested under
        ``ONEDNN_MAX_CPU_ISA=AVX2``). The patch's offset adds ``offset·sum(filter)`` to every output of a filter:
        a constant per patch and filter, so it is added after the max, like the bias. Embeddings within cosine
        ~0.9997 of float32 (bfloat16: 0.99998; docs/performance.md)."""
        matrix, scale, total, bias, sign = self._int8_weights(x.device)
        lo, hi = x.amin(dim=(1, 2, 3)), x.amax(dim=(1, 2, 3))
        step = ((hi - lo) / 127).clamp_min(1e-12)
        mid = lo + 128 * step  # the patch's minimum is -128 steps from it, its maximum -1
        q = torch.round((x[:, 0] - mid[:, None, None]) / step[:, None, None]).clamp_(-128, -1).to(torch.int8)
        picked = self._banded_max(q, matrix, torch._int_mm).float()  # (n, frames, filters)
        z = picked * (step[:, None, None] * scale) + (mid[:, None, None] * total + bias)
        return self._relu_bn((z * sign).transpose(1, 2).contiguous())  # batch norm: twice as fast on rows

    def _banded_max(self, x: torch.Tensor, matrix: torch.Tensor,
                    product: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """The max over frequency ``(n, frames, filters)`` of the convolution of time-padded ``x`` ``(n, length,
        mel)`` with the :func:`banded_filters` ``matrix``, in their dtype, through ``product`` (a matrix product)."""
        rows, fold = self._windows(x)
        return fold(product(rows, matrix), False)

    def _windows(self, x: torch.Tensor, ones: bool = False
                 ) -> tuple[torch.Tensor, Callable[[torch.Tensor, bool], torch.Tensor]]:
        """Rows of input windows of time-padded ``x`` ``(n, length, mel)``, each a block of neighbouring outputs
        of a product with :func:`banded_filters` (``ones``: with a last column of ones, for a bias row), and
        ``fold(z, least)``: the max (``least``: the min) over frequency ``(n, frames, filters)`` of such a product
        ``z`` ``(rows, block·filters)``."""
        kt, km = self.conv.kernel_size
        n, length, mel = x.shape
        frames = length - kt + 1
        if km == 1:  # temporal filters: each mel band's signal in rows of TIME_BLOCK outputs
            blocks = -(-frames // TIME_BLOCK)
            signal = F.pad(x.transpose(1, 2), (0, blocks * TIME_BLOCK + kt - 1 - length))  # zeros past the end
            windows = signal.unfold(2, TIME_BLOCK + kt - 1, TIME_BLOCK)  # (n, mel, blocks, width)

            def fold_time(z: torch.Tensor, least: bool) -> torch.Tensor:
                z = z.reshape(n, mel, blocks * TIME_BLOCK, -1)[:, :, :frames]
                return z.amin(dim=1) if least else z.amax(dim=1)
            return _rows(windows, 1, ones), fold_time
        # timbral filters: every kt frames in rows of MEL_BLOCK neighbouring bands
        bands = mel - km + 1
        blocks = -(-bands // MEL_BLOCK)
        x = F.pad(x, (0, blocks * MEL_BLOCK + km - 1 - mel))  # zeros above the top band
        windows = x.unfold(1, kt, 1).unfold(2, MEL_BLOCK + km - 1, MEL_BLOCK)  # (n, T, blocks, kt, width)

        def fold_mel(z: torch.Tensor, least: bool) -> torch.Tensor:
            z = z.reshape(n, frames, blocks * MEL_BLOCK, -1)[:, :, :bands]
            return z.amin(dim=2) if least else z.amax(dim=2)
        return _rows(windows, 2, ones), fold_mel

    def _banded(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The sign-flipped filters of :meth:`pooled_first` as float32 :func:`banded_filters` (banded along time
        for the temporal filters, along the mel bands for the timbral ones), their sign-flipped bias and the signs;
        made inside :meth:`_cached` (plain tensors, even when first asked for under inference mode)."""
        bias = self.conv.bias
        assert bias is not None  # built with one
        sign = torch.where(self.bn.weight.detach().to(device) < 0, -1.0, 1.0)
        w = self.conv.weight.detach().to(device).float() * sign[:, None, None, None]
        if self.conv.kernel_size[1] == 1:
            matrix = banded_filters(w[:, 0, :, 0][:, None], TIME_BLOCK)
        else:
            matrix = banded_filters(w[:, 0], MEL_BLOCK)
        return matrix, bias.detach().to(device).float() * sign, sign

    def _bf16_weights(self, device: torch.device
                      ) -> tuple[list[tuple[torch.Tensor, bool]], torch.Tensor, torch.Tensor]:
        """For :meth:`pooled_first_bf16`: per group of filters — those whose batch norm scales by ``a >= 0``, then
        those with ``a < 0`` (an empty group left out) — the bfloat16 :func:`banded_filters` of their weights (not
        sign-flipped) with a last row of biases, and whether the group takes the min over frequency; where each
        filter is among the groups' columns side by side; and what each bias loses in bfloat16."""
        def make() -> tuple[list[tuple[torch.Tensor, bool]], torch.Tensor, torch.Tensor]:
            km = self.conv.kernel_size[1]
            weight = self.conv.weight.detach().to(device).float()[:, 0]
            bias = self.conv.bias.detach().to(device).float()  # type: ignore[union-attr]
            negative = self.bn.weight.detach().to(device) < 0
            groups, members = [], []
            for least in (False, True):
                index = (negative if least else ~negative).nonzero().flatten()
                if len(index):
                    block = TIME_BLOCK if km == 1 else MEL_BLOCK
                    matrix = banded_filters(weight[index, :, 0][:, None] if km == 1 else weight[index], block)
                    matrix = torch.cat([matrix, bias[index].repeat(block)[None]])
                    groups.append((matrix.to(torch.bfloat16), least))
                    members.append(index)
            # what the bias loses in bfloat16 is added after the max (a constant per filter)
            return groups, torch.argsort(torch.cat(members)), bias - bias.to(torch.bfloat16).float()
        return self._cached("_bf16_cache", device, make)

    def _int8_weights(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        """For :meth:`pooled_first_int8`: the banded matrix in int8 (each filter in steps of its largest weight /
        127), each filter's step and the sum of its quantised weights (float32), the bias and the signs."""
        def make() -> tuple[torch.Tensor, ...]:
            matrix, bias, sign = self._banded(device)
            filters = sign.numel()
            # columns: output major, then filter; the first block's columns hold each filter's taps once
            scale = (matrix[:, :filters].abs().amax(dim=0) / 127).clamp_min(1e-12)
            q = torch.round(matrix / scale.repeat(matrix.shape[1] // filters)).clamp_(-127, 127)
            return q.to(torch.int8), scale, q[:, :filters].sum(dim=0) * scale, bias, sign
        return self._cached("_int8_cache", device, make)


class _TimeConv(_Cached):
    """A 1-D convolution over time (7 frames, "valid" after padding 3 each side), ReLU, batch norm."""

    def __init__(self, c_in: int, filters: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, filters, 7, padding=3)
        self.bn = _bn(filters)
        self.precision = FLOAT32  # eval mode: bfloat16 takes :meth:`forward_bf16` (Musicnn.use_precision)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, c_in, T)`` to ``(n, filters, T)`` (float32 where a gradient is needed)."""
        if self.precision == BFLOAT16 and not self.training and not needs_grad(x):
            return self.forward_bf16(x)
        return self.bn(F.relu(self.conv(x)))

    def forward_bf16(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` in eval mode with the convolution as one bfloat16 matrix product: every tap's filters
        stacked, times the time-padded patches side by side, then the taps' products summed along the diagonal in
        float32. With AMX under half the CPU of oneDNN's float32 convolution (bfloat16's gave wrong sums for some
        shapes, see :meth:`_FreqPooledConv.pooled_first_bf16`)."""
        n, channels, length = x.shape
        taps = self.conv.kernel_size[0]
        pad = int(self.conv.padding[0])
        matrix, bias = self._cached("_bf16_cache", x.device, lambda: self._tap_matrix(x.device))
        padded = x.new_zeros((channels, n, length + 2 * pad), dtype=torch.bfloat16)  # patches side by side
        padded[:, :, pad:pad + length].copy_(x.transpose(0, 1))
        y = torch.mm(matrix, padded.view(channels, -1)).view(taps, -1, n, length + 2 * pad)  # (taps, filters, ...)
        z = y[0, :, :, :length].float() + bias[:, None, None]
        for tap in range(1, taps):
            z += y[tap, :, :, tap:tap + length]
        return self._relu_bn(z.transpose(1, 0))  # (n, filters, length)

    def _tap_matrix(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The filters as ``(taps·filters, c_in)`` in bfloat16 (tap major) and the bias (float32)."""
        weight = self.conv.weight.detach().to(device).float()  # (filters, c_in, taps)
        bias = self.conv.bias
        assert bias is not None  # built with one
        return weight.permute(2, 0, 1).reshape(-1, weight.shape[1]).to(torch.bfloat16), bias.detach().to(device)


@register
class Musicnn(Encoder):
    """musicnn's penultimate layer, pretrained on real music (see the module doc)."""

    name = "musicnn"
    preset_name = "musicnn"
    config_cls = MusicnnConfig
    source = "Pons & Serra 2019 (musicnn, ISMIR LBD)"
    # The first convolution's output is 9 MB per 3 s patch: two patches a pass stay below malloc's mmap threshold
    # (measured: 0.18 CPU-s of system time per track at 64 a pass, none at 2, user time the same or lower).
    cpu_batch = 2

    def __init__(self, config: MusicnnConfig) -> None:
        super().__init__(config)
        timbral = int(config.frontend_scale * 128)
        temporal = int(config.frontend_scale * 32)
        self.input_bn = nn.BatchNorm2d(1, eps=TF_BN_EPSILON)
        self.timbral = nn.ModuleList([_FreqPooledConv(timbral, 7, int(0.4 * N_MELS), (3, 3)),
                                      _FreqPooledConv(timbral, 7, int(0.7 * N_MELS), (3, 3))])
        # TensorFlow "same" padding for an even kernel k puts (k - 1) // 2 frames before, the rest after.
        self.temporal = nn.ModuleList([_FreqPooledConv(temporal, k, 1, ((k - 1) // 2, k - 1 - (k - 1) // 2))
                                       for k in (128, 64, 32)])
        front = 2 * timbral + 3 * temporal
        self.midend = nn.ModuleList([_TimeConv(front, config.midend_filters),
                                     _TimeConv(config.midend_filters, config.midend_filters),
                                     _TimeConv(config.midend_filters, config.midend_filters)])
        pooled = 2 * (front + 3 * config.midend_filters)
        self.pool_bn = _bn(pooled)
        self.dense = nn.Linear(pooled, config.embedding_dim)
        self.dense_bn = _bn(config.embedding_dim)
        self.output = nn.Linear(config.embedding_dim, config.n_tags)
        self._precision: str | None = None  # the front end's, decided on the first forward pass in eval mode

    @property
    def _bfloat16(self) -> bool | None:
        """Whether the front end runs in bfloat16 (None: not decided yet)."""
        return None if self._precision is None else self._precision == BFLOAT16

    def use_precision(self, precision: str | None = None) -> str:
        """Run the front end's timbral and temporal filters in ``precision`` (float32, bfloat16 or int8) in eval
        mode, and with bfloat16 the mid end's first convolution too; ``None``: :func:`fast_precision`'s on the CPU, if
        :meth:`_agrees` with float32 there, else float32. Returns the choice."""
        with DECIDING:  # first passes in two threads decide one at a time; blocks are set before the choice
            if precision is None:
                precision = fast_precision() if self.dense.weight.device.type == "cpu" else FLOAT32
                if precision != FLOAT32 and not self._agrees(precision):
                    precision = FLOAT32
            if precision not in PRECISIONS:
                raise ValueError(f"unknown precision {precision!r} (one of {', '.join(PRECISIONS)})")
            for block in self._front_blocks():
                block.precision = precision
            # the mid end's first convolution (561 channels in) too; on 64 channels bfloat16 saves nothing
            self._mid_blocks()[0].precision = BFLOAT16 if precision == BFLOAT16 else FLOAT32
            self._precision = precision
        return precision

    def use_bfloat16(self, on: bool | None = None) -> bool:
        """:meth:`use_precision` with bfloat16 (True), float32 (False) or the CPU's choice (None); whether the
        front end runs in bfloat16."""
        return self.use_precision(None if on is None else BFLOAT16 if on else FLOAT32) == BFLOAT16

    def _front_blocks(self) -> list[_FreqPooledConv]:
        return [b for b in (*self.timbral, *self.temporal) if isinstance(b, _FreqPooledConv)]

    def _mid_blocks(self) -> list[_TimeConv]:
        return [b for b in self.midend if isinstance(b, _TimeConv)]

    def _agrees(self, precision: str) -> bool:
        """Whether the front-end blocks in ``precision`` (and with bfloat16 the first mid-end block) give float32's
        outputs on a seeded batch of spectrogram patches, every filter within :data:`BF16_TOLERANCE` of its own
        largest value (plus a hundredth of the block's, for filters that barely respond): a guard against a kernel
        that sums wrongly, or is missing, on an untested CPU."""
        gen = torch.Generator().manual_seed(0)
        device = self.dense.weight.device
        spec_db = torch.randn(self.cpu_batch, N_MELS, PATCH_FRAMES, generator=gen) * 15.0 - 40.0

        def close(got: torch.Tensor, want: torch.Tensor) -> bool:
            scale = want.abs().amax(dim=(0, 2))
            scale = scale + 0.01 * scale.max()
            return bool(((got - want).abs().amax(dim=(0, 2)) <= BF16_TOLERANCE * scale).all())

        with torch.inference_mode():
            h = self.input_bn(self.prepare(spec_db.to(device)).unsqueeze(1))
            front = []
            try:  # RuntimeError: a kernel this PyTorch lacks on this CPU (or device)
                for block in self._front_blocks():
                    x = F.pad(h, (0, 0, *block.pad))
                    front.append(block.pooled_first(x))
                    if not close(block.pooled(x, precision), front[-1]):
                        return False
                if precision == BFLOAT16:
                    mid = self._mid_blocks()[0]
                    x = torch.cat(front, dim=1)
                    return close(mid.forward_bf16(x), mid.bn(F.relu(mid.conv(x))))
            except RuntimeError:
                return False
        return True

    @property
    def embedding_dim(self) -> int:
        """200 (the penultimate layer) or 1506 (the pooled features under it)."""
        if self.config.layer == "pooled":  # type: ignore[attr-defined]
            return int(self.dense.in_features)
        return int(self.config.embedding_dim)

    def id_suffix(self) -> str:
        """``-pooled`` and ``-pN`` where the layer or the number of patches differ from the published extractor's."""
        cfg = self.config
        assert isinstance(cfg, MusicnnConfig)
        return ("-pooled" if cfg.layer == "pooled" else "") + (f"-p{cfg.max_patches}" if cfg.max_patches else "")

    @property
    def labels(self) -> tuple[str, ...]:
        """The tag names of the training the weights come from."""
        return MSD_LABELS if self.config.dataset == "msd" else MTT_LABELS  # type: ignore[attr-defined]

    @classmethod
    def stored_key(cls, config: ModelConfig) -> str:
        """``musicnn-pN`` with ``max_patches`` N: a scan keeps only the N patches this model reads
        (:func:`soundalike.audio.analysis.patch_log_mel`); ``musicnn`` (the whole spectrogram) otherwise."""
        return patches_key(cls.preset_name, int(getattr(config, "max_patches", 0)))

    def segments(self, spec_db: np.ndarray) -> np.ndarray:
        """The track's 3 s patches back to back, or ``max_patches`` of them evenly spread over the track."""
        return spread_segments(super().segments(spec_db), self.config.max_patches)  # type: ignore[attr-defined]

    def prepare(self, segments: torch.Tensor) -> torch.Tensor:
        """Stored dB segments ``(n, 96, 187)`` to musicnn's input ``(n, 187, 96)``: ``log10(10000·power + 1)``
        (computed in float32: the package's float16 overflows to inf on loud bins)."""
        power = torch.pow(10.0, segments.float() / 10.0)
        return torch.log10(10000.0 * power + 1.0).transpose(1, 2)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The back end's input ``(n, 1506)``: max and mean over time of the 753 front- and mid-end channels."""
        if self._precision is None and not self.training:
            self.use_precision()
        h = self.input_bn(x.unsqueeze(1))  # (n, 1, T, 96)
        front = torch.cat([block(h) for block in (*self.timbral, *self.temporal)], dim=1)  # (n, 561, T)
        m1 = self.midend[0](front)
        m2 = self.midend[1](m1) + m1
        m3 = self.midend[2](m2) + m2
        features = torch.cat([front, m1, m2, m3], dim=1)  # (n, 753, T)
        return torch.stack([features.amax(dim=2), features.mean(dim=2)], dim=2).flatten(1)  # max, mean per channel

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(penultimate (n, 200), logits (n, 50))`` of prepared patches ``(n, frames, 96)``."""
        penultimate = self.dense_bn(F.relu(self.dense(self.pool_bn(self.pooled(x)))))
        return penultimate, self.output(penultimate)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer (or, with ``layer="pooled"``, the pooled features under it) of prepared patches."""
        if self.config.layer == "pooled":  # type: ignore[attr-defined]
            return self.pooled(x)
        return self.features(x)[0]

    def tag_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """The 50 tag probabilities of prepared patches (the package's taggram rows)."""
        return torch.sigmoid(self.features(x)[1])

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Not trained here: the weights are musicnn's."""
        raise ModelError("musicnn is pretrained on real music and not trained here: use it with "
                         "`soundalike index PATH --model musicnn`")

    def sample_batch(self, tracks: TrackSet, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        """Not trained here."""
        raise ModelError("musicnn is not trained here")
