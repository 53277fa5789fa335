"""The search space of an embedding: how stored (raw) vectors become the unit vectors that are searched.

Every part of a key is z-scored with column statistics, scaled to unit length and weighted, and the parts are
placed side by side: a plain key (``descriptor``, ``contrastive-1a2b3c4d``) has one part, a fused key joins parts
with ``+`` (``descriptor+contrastive-1a2b3c4d``) and each part counts equally in the cosine similarity, unless the
key weighs them (``descriptor@0.2+musicnn-…@0.8``: the cosine is the weighted mean of the parts' cosines). Why
z-score: descriptor columns have unrelated units, and learned embeddings share a large common offset that would
make every cosine close to 1.

A part may name a learned metric after its model (``descriptor#rca-1a2b3c4d@0.14``,
:mod:`soundalike.search.metric`): its raw vectors then go through that fixed map first, and the library's statistics
only centre the mapped columns (the metric's whitening sets their scale; z-scoring them again would undo it).

Segment sequences (for sequence distances) go through the same transform, row by row, with the same statistics;
a part without a time axis (the descriptors: one vector per track) contributes its pooled block to every row,
so a fused key compares sequences by ``Σ weight · cos`` of its parts.

A key may end with ``~nnK`` (``default`` would, were ``default.json`` to name ``neighbours``; it does not): its
search vectors are then smoothed over the library's neighbourhood — each track's vector is the weighted mean of
its K nearest tracks' (itself included), and an outside query is expanded the same way
(:mod:`soundalike.search.neighbours`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from soundalike.audio import descriptors
from soundalike.library.catalog import DESCRIPTOR_MODEL, CatalogError, Library

from .metric import METRIC_MARK, Metric, MetricError, load_metric, split_metric
from .vectors import standardise, unit_rows


class SpaceError(ValueError):
    """A transform that cannot be applied: wrong dimensions, or no segment sequence where one is needed."""


def split_part(part: str) -> tuple[str, float | None]:
    """``name@weight`` to ``(name, weight)``; a part without ``@`` has no weight of its own (None)."""
    name, _, weight = part.partition("@")
    if not weight:
        return name, None
    try:
        value = float(weight)
    except ValueError:
        raise SpaceError(f"{part!r}: the weight after @ must be a number") from None
    if not value > 0:
        raise SpaceError(f"{part!r}: the weight after @ must be positive")
    return name, value


#: What ends a key whose search vectors are smoothed over K neighbours (``descriptor+contrastive-1a2b~nn5``).
NEIGHBOURS_MARK = "~nn"
#: The largest K a key may ask for (the graph keeps K - 1 neighbours a track; the validation runs used 5 to 10).
MAX_NEIGHBOURS = 64
_MARKED = re.compile(r"^(.+)~nn([0-9]+)$", re.ASCII)


def split_neighbours(key: str) -> tuple[str, int]:
    """``KEY~nnK`` to ``(KEY, K)``; a key that does not end with the mark has K = 0 (no smoothing: ``~nn`` inside a
    name, such as a checkpoint's path, is part of it). :class:`SpaceError` for a K outside 2..``MAX_NEIGHBOURS``,
    written with a leading zero, or marked twice."""
    found = _MARKED.match(key)
    if found is None:
        return key, 0
    base, count = found.group(1), found.group(2)
    k = int(count)
    if str(k) != count or not 2 <= k <= MAX_NEIGHBOURS or _MARKED.match(base):
        raise SpaceError(f"{key!r}: {NEIGHBOURS_MARK}K ends a key once, with K from 2 to {MAX_NEIGHBOURS} "
                         f"(e.g. descriptor{NEIGHBOURS_MARK}5)")
    return base, k


def with_neighbours(key: str, neighbours: int) -> str:
    """``key`` marked to be smoothed over ``neighbours`` tracks (unchanged for 0)."""
    return f"{split_neighbours(key)[0]}{NEIGHBOURS_MARK}{neighbours}" if neighbours else key


def _split_parts(key: str) -> list[tuple[str, str | None, float | None]]:
    """``(stored model, metric name or None, weight or None)`` of every part of ``key`` (``~nnK`` left aside)."""
    out = []
    for part in split_neighbours(key)[0].split("+"):
        if not part:
            continue
        name, weight = split_part(part)
        try:
            model, metric = split_metric(name)
        except MetricError as exc:
            raise SpaceError(str(exc)) from None
        out.append((model, metric, weight))
    return out


def model_parts(key: str) -> list[str]:
    """The stored embeddings a (possibly fused, possibly weighted: ``a@0.2+b@0.8``, possibly smoothed: ``~nn5``,
    possibly with metrics: ``a#rca-1a2b3c4d``) key is made of."""
    names = [model for model, _, _ in _split_parts(key)]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # a part's columns are found by its model: each embedding is one part of a key
        raise SpaceError(f"{key!r}: {', '.join(twice)} named twice; a key names each embedding once")
    return names


def part_metrics(key: str, match: bool = True) -> list[Metric | None]:
    """The learned metric each part of ``key`` names (None where it names none); :class:`SpaceError` for an
    unknown one or (``match``: the key's parts are resolved model ids) one fitted for another embedding."""
    out: list[Metric | None] = []
    for model, name, _ in _split_parts(key):
        try:
            metric = load_metric(name) if name is not None else None
        except MetricError as exc:
            raise SpaceError(str(exc)) from None
        part = f"{model}{METRIC_MARK}{name}"
        if match and metric is not None and metric.model != model:
            raise SpaceError(f"{part!r}: {name} was fitted for {metric.model}, not {model}")
        if match and metric is not None and model == DESCRIPTOR_MODEL and \
                metric.info.get("descriptor_version") != descriptors.DESCRIPTOR_VERSION:
            raise SpaceError(f"{part!r}: {name} was fitted on version {metric.info.get('descriptor_version')} "
                             f"descriptors; this soundalike computes version {descriptors.DESCRIPTOR_VERSION}")
        out.append(metric)
    return out


def part_weights(key: str) -> list[float]:
    """Each part's share of the cosine similarity: the ``@`` weights of the key, normalised to sum to 1 (equal
    shares where none are given)."""
    given = [weight for _, _, weight in _split_parts(key)]
    if all(w is None for w in given):
        return [1.0 / len(given)] * len(given)
    if any(w is None for w in given):
        raise SpaceError(f"{key!r}: give every part a weight (a@0.2+b@0.8), or none")
    total = sum(w for w in given if w is not None)
    return [float(w) / total for w in given if w is not None]


@dataclass
class EmbeddingPart:
    """One stored embedding inside a (possibly fused) search vector: its columns' statistics and its weight."""

    model: str
    dim: int
    mean: np.ndarray
    std: np.ndarray
    weight: float = 1.0
    metric: Metric | None = None  # a learned map applied to raw rows before ``mean`` and ``std``

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """Raw rows ``(..., dim)`` of this part to (mapped,) z-scored, unit-length rows scaled by ``sqrt(weight)``."""
        x = np.asarray(raw, dtype=np.float32)
        if x.shape[-1] != self.dim:
            raise SpaceError(f"{self.model}: expected vectors of dimension {self.dim}, got shape {x.shape}")
        if self.metric is not None:
            x = self.metric.apply(x)
        return np.float32(np.sqrt(self.weight)) * unit_rows((x - self.mean) / self.std)


@dataclass
class Embedding:
    """How raw vectors of a key become searchable ones, with the statistics frozen when it was fitted.

    ``built_on`` is how many tracks the statistics came from; ``kind`` the index kind they were fitted for
    (``flat`` or ``ivf``): :mod:`soundalike.search.index` refits both together (see its rebuild rule).
    """

    model: str
    parts: list[EmbeddingPart]
    built_on: int = 0
    kind: str = "flat"
    descriptor_version: int = 0  # of the descriptors the statistics were fitted on (0: no descriptor part)
    neighbours: int = 0  # the K of a key's ``~nnK``: search vectors smoothed over K tracks (0: none)

    @property
    def dim(self) -> int:
        """Columns of a search vector (the parts side by side)."""
        return sum(p.dim for p in self.parts)

    def slices(self) -> dict[str, slice]:
        """Where each part's columns are, in raw and in search vectors alike."""
        out, start = {}, 0
        for part in self.parts:
            out[part.model] = slice(start, start + part.dim)
            start += part.dim
        return out

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Raw vectors ``(n, dim)`` (parts side by side, in key order) to unit-length search vectors ``(n, dim)``."""
        x = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if x.shape[1] != self.dim:
            raise SpaceError(f"{self.model}: expected vectors of dimension {self.dim}, got shape {x.shape}")
        blocks = [part.transform(x[:, cols]) for part, cols in zip(self.parts, self.slices().values(), strict=True)]
        return unit_rows(np.hstack(blocks))

    def has_sequences(self) -> bool:
        """Whether some part is a learned model (descriptors have no time axis, so no segment sequence)."""
        return any(p.model != DESCRIPTOR_MODEL for p in self.parts)

    def sequence(self, search_vector: np.ndarray, segments: Mapping[str, np.ndarray | None]) -> np.ndarray:
        """A track's segment sequence in the search space ``(n_segments, dim)``: each part's raw segments
        transformed like its pooled vector; a part without segments repeats its block of ``search_vector``.

        Parts with different segment counts are brought to the longest count by nearest-index resampling.
        Raises :class:`SpaceError` when no part has segments."""
        v = np.asarray(search_vector, dtype=np.float32).ravel()
        given = {m: np.asarray(s, dtype=np.float32) for m, s in segments.items() if s is not None and len(s)}
        if not given:
            raise SpaceError(f"{self.model}: no segment sequence (sequence distances need a learned model)")
        length = max(len(s) for s in given.values())
        blocks = []
        for part, cols in zip(self.parts, self.slices().values(), strict=True):
            seq = given.get(part.model)
            if seq is None:
                blocks.append(np.broadcast_to(v[cols], (length, part.dim)))
                continue
            if len(seq) != length:
                seq = seq[np.round(np.linspace(0, len(seq) - 1, length)).astype(np.int64)]
            blocks.append(part.transform(seq))
        return unit_rows(np.hstack(blocks))

    def to_json(self) -> dict[str, Any]:
        """JSON-ready statistics (written beside the index)."""
        out: dict[str, Any] = {"model": self.model, "built_on": self.built_on, "kind": self.kind,
                               "descriptor_version": self.descriptor_version, "parts": [
            {"model": p.model, "dim": p.dim, "mean": p.mean.tolist(), "std": p.std.tolist(), "weight": p.weight,
             **({"metric": p.metric.name} if p.metric is not None else {})}  # only then: fingerprints stay
            for p in self.parts]}
        if self.neighbours:  # only then: the statistics' fingerprint (the re-rank store's) stays what it was
            out["neighbours"] = self.neighbours
        return out

    @classmethod
    def from_json(cls, saved: Mapping[str, Any]) -> Embedding:
        """The inverse of :meth:`to_json`; raises ``KeyError``/``TypeError``/``ValueError`` on a bad payload (also
        when it names a metric this build does not ship)."""
        parts = [EmbeddingPart(str(p["model"]), int(p["dim"]), np.asarray(p["mean"], np.float32),
                               np.asarray(p["std"], np.float32), float(p["weight"]),
                               load_metric(str(p["metric"])) if p.get("metric") else None) for p in saved["parts"]]
        for p in parts:
            if p.mean.shape != (p.dim,) or p.std.shape != (p.dim,):
                raise ValueError(f"statistics of {p.model} do not have {p.dim} values")
        return cls(str(saved["model"]), parts, int(saved.get("built_on", 0)), str(saved.get("kind", "flat")),
                   int(saved.get("descriptor_version", 0)), int(saved.get("neighbours", 0)))

    def describe(self) -> dict[str, Any]:
        """The key and its parts (model, dimension, weight): what an export says about its vectors."""
        return {"model": self.model, "dim": self.dim, "neighbours": self.neighbours,
                "parts": [{"model": p.model, "dim": p.dim, "weight": round(p.weight, 6),
                           **({"metric": p.metric.name} if p.metric is not None else {})} for p in self.parts]}


def fit_embedding(key: str, raw: np.ndarray, dims: list[int], kind: str = "flat") -> Embedding:
    """Statistics of every part of ``key`` from raw vectors ``(n, sum(dims))``, weighted as the key says (a part
    with a metric: the mean of its mapped rows, unit scale; module doc)."""
    names = model_parts(key)
    if len(names) != len(dims):
        raise SpaceError(f"{key}: {len(names)} parts but {len(dims)} dimensions")
    parts, start = [], 0
    for name, dim, weight, metric in zip(names, dims, part_weights(key), part_metrics(key), strict=True):
        block = raw[:, start:start + dim]
        if metric is None:
            _, mean, std = standardise(block)
        elif metric.dim != dim:
            raise SpaceError(f"{key}: {metric.name} maps {metric.dim} columns; {name} has {dim}")
        else:
            # the map is affine, so the mean of the mapped rows is the map of their mean (no n x dim copy)
            mean = metric.apply(block.mean(axis=0, dtype=np.float64)).astype(np.float32)
            std = np.ones(dim, dtype=np.float32)
        parts.append(EmbeddingPart(name, dim, mean, std, weight, metric))
        start += dim
    return Embedding(key, parts, built_on=len(raw), kind=kind,
                     descriptor_version=descriptors.DESCRIPTOR_VERSION if DESCRIPTOR_MODEL in names else 0,
                     neighbours=split_neighbours(key)[1])


def _not_embedded(lib: Library, model: str) -> CatalogError:
    """The error for a key part no track is embedded with, saying what the library has or what to run."""
    known = lib.models()
    hint = f" (embeddings present: {', '.join(known)})" if known else " — run `soundalike index PATH` first"
    if model == DESCRIPTOR_MODEL and lib.stale_descriptors():
        hint = " — they were made by an older soundalike: run `soundalike index PATH` to update them"
    return CatalogError(f"no tracks embedded with {model!r} in {lib.root}{hint}")


def common_ids(lib: Library, key: str) -> tuple[np.ndarray, list[int]]:
    """``(sorted ids of the tracks that have every part of key, part dims)``, without reading the vectors."""
    names = model_parts(key)
    common: np.ndarray | None = None
    dims = []
    for k in names:
        ids = lib.vector_ids(k)
        if len(ids) == 0:
            raise _not_embedded(lib, k)
        dims.append(int(lib.vectors_in(k, ids[:1])[1].shape[1]))
        common = ids if common is None else sorted_common(common, ids)
    assert common is not None
    return common, dims


def sorted_common(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The values of sorted, duplicate-free ``a`` that are in sorted ``b`` (``np.intersect1d`` for sorted unique
    ids without its two ``unique`` passes and its sort: at a million tracks 0.04 instead of 1.2 s, measured)."""
    if not len(a) or not len(b):
        return a[:0]
    pos = np.minimum(np.searchsorted(b, a), len(b) - 1)
    return a[b[pos] == a]


def read_raw(lib: Library, key: str, ids: np.ndarray) -> np.ndarray:
    """Raw vectors ``(len(ids), sum of part dims)`` of tracks that have every part of ``key``; ``ids`` sorted."""
    blocks = []
    names = model_parts(key)
    for k, (found, mat) in zip(names, lib.vectors_of(names, ids), strict=True):
        if len(found) != len(ids) or not np.array_equal(found, ids):
            raise CatalogError(f"{k}: vectors of {len(ids) - len(found)} tracks went missing while being read")
        blocks.append(mat)
    return np.hstack(blocks)


def load_raw(lib: Library, key: str) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """``(track ids, raw vectors side by side, part dims)`` of the tracks that have every part of ``key``."""
    names = model_parts(key)
    parts = [lib.vectors(k) for k in names]
    for k, (ids, _) in zip(names, parts, strict=True):
        if len(ids) == 0:
            raise _not_embedded(lib, k)
    common = parts[0][0]
    for ids, _ in parts[1:]:
        common = sorted_common(common, ids)
    blocks = [mat[np.searchsorted(ids, common)] for ids, mat in parts]
    return common, np.hstack(blocks), [b.shape[1] for b in blocks]
