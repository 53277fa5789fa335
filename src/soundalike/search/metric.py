"""Learned metrics of a search part: a fixed linear map, fitted once on labelled training music, that a part's raw
vectors go through before the library's statistics (:mod:`soundalike.search.space`).

The one kind is **RCA** (relevant component analysis; Bar-Hillel et al., JMLR 2005): whiten the covariance of
vectors *within* groups known to belong together — here the albums of the *train* set (issue 12: album labels of
training music are free metadata) — so that the directions in which an album's tracks differ count less in the
cosine than those in which albums differ. Slaney, Weinberger and White (ISMIR 2008, "Learning a metric for music
similarity") learned metrics over audio features from such side information (albums, artists). The within-album
covariance is shrunk towards a multiple of the identity (``shrink`` × its mean eigenvalue) because a few hundred
tracks estimate it poorly.

A metric belongs to one stored embedding (``model``: ``descriptor`` of one descriptor version, or a model id) and
is named ``rca-`` + a hash of its numbers; a search key names it after its part: ``descriptor#rca-1a2b3c4d@0.14``.
Shipped metrics are ``metric_*.npz`` files of :mod:`soundalike.models.pretrained` (``scripts/fit_metric.py``);
the folders of ``$SOUNDALIKE_METRICS`` may hold more.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: What precedes a metric's name in a key's part (``descriptor#rca-1a2b3c4d``).
METRIC_MARK = "#"


class MetricError(ValueError):
    """A metric that is unknown, malformed, or applied to vectors it was not fitted for."""


@dataclass(frozen=True, eq=False)
class Metric:
    """``x -> ((x - mean) / std) @ matrix`` for raw rows of the embedding ``model``; columns constant in training
    have zero rows in ``matrix`` (they carry nothing the training music could weigh)."""

    model: str
    mean: np.ndarray
    std: np.ndarray
    matrix: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        """Columns in and out (the map is square: a part's search vector keeps its raw dimension)."""
        return int(self.matrix.shape[0])

    @functools.cached_property
    def name(self) -> str:
        """``rca-`` + 8 hex digits of a hash of the model and the numbers: the key changes when they do."""
        h = hashlib.blake2b(digest_size=4)
        h.update(self.model.encode())
        for a in (self.mean, self.std, self.matrix):
            h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
        return f"rca-{h.hexdigest()}"

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Raw rows ``(..., dim)`` mapped (float32)."""
        x = np.asarray(raw, dtype=np.float32)
        if x.shape[-1] != self.dim:
            raise MetricError(f"{self.name}: fitted for {self.dim} columns of {self.model}, got shape {x.shape}")
        return ((x - self.mean) / self.std) @ self.matrix

    def save(self, path: Path) -> None:
        """Write the metric as an ``.npz`` (numbers float32, ``info`` and ``model`` as JSON)."""
        np.savez(path, mean=self.mean, std=self.std, matrix=self.matrix,
                 about=np.array(json.dumps({"model": self.model, **self.info}, sort_keys=True)))

    @classmethod
    def load(cls, path: Path) -> Metric:
        """The inverse of :meth:`save`; :class:`MetricError` naming the file when it is not one."""
        try:
            with np.load(path, allow_pickle=False) as data:
                about = json.loads(str(data["about"]))
                mean, std, matrix = (np.asarray(data[k], dtype=np.float32) for k in ("mean", "std", "matrix"))
        except Exception as exc:  # noqa: BLE001 — empty, truncated (BadZipFile, EOFError) or foreign files alike
            raise MetricError(f"{path}: not a soundalike metric ({type(exc).__name__}: {exc})") from None
        d = matrix.shape[0]
        if matrix.shape != (d, d) or mean.shape != (d,) or std.shape != (d,) or not isinstance(about, dict):
            raise MetricError(f"{path}: not a soundalike metric (shapes {mean.shape}, {std.shape}, {matrix.shape})")
        model = str(about.pop("model", ""))
        return cls(model, mean, std, matrix, about)


def within_album_covariance(z: np.ndarray, albums: np.ndarray) -> tuple[np.ndarray, int]:
    """Covariance of rows around their album's mean (albums of one track carry no such spread and are left out),
    and how many rows went into it."""
    groups = [z[albums == a] for a in np.unique(albums)]
    centred = [g - g.mean(axis=0) for g in groups if len(g) > 1]
    if not centred:
        raise MetricError("RCA needs at least one album with two tracks or more")
    stacked = np.vstack(centred)
    return stacked.T @ stacked / len(stacked), len(stacked)


def fit_rca(model: str, raw: np.ndarray, albums: np.ndarray, shrink: float = 0.1,
            info: dict[str, Any] | None = None) -> Metric:
    """RCA of raw rows ``(n, d)`` of ``model`` labelled by album (module doc): z-score with the rows' statistics,
    then the inverse square root of the within-album covariance shrunk by ``shrink`` × its mean eigenvalue."""
    x = np.asarray(raw, dtype=np.float64)
    labels = np.asarray(albums)
    if x.ndim != 2 or len(x) != len(labels):
        raise MetricError(f"RCA needs one album per row: {x.shape} rows, {labels.shape} albums")
    if not shrink > 0:
        raise MetricError("shrink must be positive (the within-album covariance of a few hundred tracks is singular)")
    spread = x.std(axis=0)
    keep = spread > 1e-6 * max(float(spread.max(initial=0.0)), 1e-30)
    mean, std = x.mean(axis=0), np.where(keep, spread, 1.0)
    z = np.where(keep, (x - mean) / std, 0.0)
    cov, rows = within_album_covariance(z, labels)
    values, vectors = np.linalg.eigh(cov)
    values = np.maximum(values, 0.0) + shrink * max(float(np.trace(cov)) / max(int(keep.sum()), 1), 1e-12)
    matrix = (vectors * values ** -0.5) @ vectors.T
    matrix[~keep] = 0.0
    about = {"kind": "rca", "shrink": shrink, "tracks": int(len(x)), "albums": int(len(np.unique(labels))),
             "within_rows": rows, **(info or {})}
    return Metric(model, mean.astype(np.float32), std.astype(np.float32), matrix.astype(np.float32), about)


#: Folders (``os.pathsep``-separated) whose ``*.npz`` metrics are known besides the shipped ones: candidates being
#: compared (``scripts/reproduce_metric.sh``) or a metric fitted on other music.
METRICS_ENV = "SOUNDALIKE_METRICS"


def _package_dir() -> Path:
    return Path(str(resources.files("soundalike.models.pretrained")))


def _folders() -> tuple[tuple[Path, int], ...]:
    """The package's folder and those of ``$SOUNDALIKE_METRICS``, each with its modification time (a file added,
    removed or renamed there changes it, and the names are read again)."""
    extra = [Path(p) for p in os.environ.get(METRICS_ENV, "").split(os.pathsep) if p]
    out = []
    for folder in (_package_dir(), *extra):
        try:
            out.append((folder, folder.stat().st_mtime_ns))
        except OSError:
            out.append((folder, -1))  # missing: nothing there
    return tuple(out)


@functools.lru_cache(maxsize=8)
def _known(folders: tuple[tuple[Path, int], ...]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for i, (folder, _) in enumerate(folders):
        for path in sorted(folder.glob("metric_*.npz" if i == 0 else "*.npz")):
            try:
                found.setdefault(_load(path, path.stat().st_mtime_ns).name, path)
            except (MetricError, OSError) as exc:  # one foreign or broken file does not hide the others
                log.warning("%s", exc)
    return found


def known_metrics() -> dict[str, Path]:
    """Every metric known by name: the package's (``metric_*.npz`` beside the pretrained models), then those of the
    folders in ``$SOUNDALIKE_METRICS``; unreadable files are skipped with a warning."""
    return _known(_folders())


def load_metric(name: str) -> Metric:
    """A known metric (:func:`known_metrics`) by name; :class:`MetricError` when there is none of that name."""
    for attempt in range(2):
        path = known_metrics().get(name)
        if path is not None:
            try:
                metric = _load(path, path.stat().st_mtime_ns)
            except OSError:
                metric = None
            if metric is not None and metric.name == name:
                return metric
        if attempt == 0:  # a file replaced or removed since the names were read: read them again, once
            _known.cache_clear()
    known = ", ".join(sorted(known_metrics())) or "none"
    raise MetricError(f"unknown metric {name!r} (known: {known}; more in the folders of ${METRICS_ENV})")


@functools.lru_cache(maxsize=32)
def _load(path: Path, mtime_ns: int) -> Metric:
    return Metric.load(path)


def split_metric(part: str) -> tuple[str, str | None]:
    """``model#metric`` to ``(model, metric)``; a part without the mark has no metric (None)."""
    model, mark, metric = part.partition(METRIC_MARK)
    if not mark:
        return part, None
    if not model or not metric or METRIC_MARK in metric:
        raise MetricError(f"{part!r}: a part names its metric once, after {METRIC_MARK} (descriptor#rca-1a2b3c4d)")
    return model, metric
