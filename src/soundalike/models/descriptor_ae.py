"""Descriptor autoencoder: seed 001's dense 128-64-3-64-128 autoencoder over per-track feature vectors.

Seed 001 (``seeds/001_865afd21f70cf548.txt``, Methods/Data; Results/Training and Evaluation Protocol) trains a Keras
autoencoder on ~35 Million Song Dataset features per song: input (one unit per feature) -> Dense 128 ReLU -> Dense
64 ReLU -> Dense 3 with an L1 activity regulariser of 0.01 (the embedding) -> Dense 64 -> Dense 128 -> Dense (one
unit per feature); mean squared error, ``validation_split=0.2``, features standardised first, ~100 epochs (its
table's last row, "after this there are clear signs of overfitting"). Recommendations are the songs whose 3-d codes
lie at a distance greater than 0 and lower than 0.025 from the query's (:func:`within_threshold`).

Inputs, two sources:

* default: each track's handcrafted descriptor vector (:mod:`soundalike.descriptors`, 120 values) stored by the
  scan — the same kind of "audio features" the seed used, computed from the audio, so outside files work too;
* option ``features_csv``: an external per-track CSV (column ``path`` or ``track_id``, then numeric feature
  columns such as tempo, loudness, energy), like the seed's CORGIS CSV. Rows are matched to catalogue tracks by
  path (relative paths against the CSV's folder) or id; catalogue tracks missing from the CSV are left out, with
  their count in the model card. The table is kept in the checkpoint (keyed by audio hash) so the library can be
  embedded later; an outside file has no CSV row, so a CSV model cannot embed it (a clear error says so).

Choices (docs/models.md):

* The seed names no activation for the code and the output: both are linear (a ReLU code could collapse to 0 under
  the L1 penalty, and standardised features are signed); the hidden layers are ReLU as the seed says.
* The seed's table lists both L1(.01) and L2(.01); the text's final description is "an l1 activity regularizer
  set to .01": L1 it is, computed as Keras does (``0.01 * sum |code|`` per sample, averaged over the batch).
* Optimiser and batch size are not given: Adam at 1e-3 and 32 (Keras' defaults for ``fit``).
* Standardisation statistics come from the training split only (the seed normalised before Keras split off 20 %);
  they are buffers, so checkpoints carry them.
* CSV cells: the seed fills "missing values ... with zeros" and drops a feature missing for most songs (release
  year). Here a column more than half empty is dropped, other empty cells get the column mean (0 after
  standardisation), non-numeric columns (titles, artists) are ignored and listed in the model card, and
  ``true``/``false`` cells count as 1/0.
* Distances for :func:`within_threshold` are Euclidean (SciPy's default, which the seed used).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from soundalike.audio.descriptors import DESCRIPTOR_DIM
from soundalike.library.catalog import DESCRIPTOR_MODEL

from .base import Encoder, ModelConfig, ModelError, TrackSet, register

DESCRIPTOR_SOURCE = "descriptor"
CSV_SOURCE = "csv"


@dataclass
class DescriptorAEConfig(ModelConfig):
    """Seed 001 hyper-parameters (Results, Training and Evaluation Protocol)."""

    embedding_dim: int = 3
    hidden: tuple[int, ...] = (128, 64)
    l1_activity: float = 0.01
    lr: float = 1e-3
    batch_size: int = 32
    epochs: int = 100
    validation_fraction: float = 0.2
    input_dim: int = DESCRIPTOR_DIM
    feature_source: str = DESCRIPTOR_SOURCE  # "descriptor" or "csv"
    feature_names: list[str] = field(default_factory=list)  # the CSV's feature columns
    csv_rows: int = 0  # tracks in the stored CSV table


def within_threshold(vectors: np.ndarray, query: np.ndarray, threshold: float = 0.025
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Seed 001's recommendation rule: rows of ``vectors`` whose Euclidean distance to ``query`` is greater than 0
    and lower than ``threshold``; returns ``(row indices, distances)``, nearest first."""
    v = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    q = np.asarray(query, dtype=np.float64).ravel()
    if v.size and v.shape[1] != q.size:
        raise ModelError(f"query has {q.size} values, vectors have {v.shape[1]}")
    dist = np.linalg.norm(v - q, axis=1) if v.size else np.zeros(0)
    rows = np.flatnonzero((dist > 0) & (dist < threshold))
    order = np.argsort(dist[rows], kind="stable")
    return rows[order], dist[rows][order]


# --- external features CSV ------------------------------------------------------------------------------------
@dataclass
class FeatureTable:
    """An external features CSV matched to catalogue tracks."""

    names: list[str]
    track_ids: list[int]
    values: np.ndarray  # float32 (n, len(names)), empty cells filled with the column mean
    ignored_columns: list[str]  # non-numeric (or mostly empty) columns
    unmatched_rows: int  # rows naming no catalogue track
    duplicate_rows: int  # rows for a track already seen (the first is kept)
    examples: list[str]  # a few unmatched keys


_BOOL = {"true": 1.0, "false": 0.0}


def _number(cell: str) -> float | None:
    text = cell.strip()
    if text.lower() in _BOOL:
        return _BOOL[text.lower()]
    try:
        value = float(text)
    except ValueError:
        return None
    return value if np.isfinite(value) else None


def read_features_csv(lib: Any, path: str | os.PathLike[str]) -> FeatureTable:
    """Read a per-track features CSV (see the module docstring); raises :class:`ModelError` naming the file and
    the reason when it cannot be used."""
    import csv

    from soundalike.evaluation.interactions import InteractionsError, TrackResolver, csv_rows

    p = Path(os.path.expanduser(os.fspath(path)))
    if not p.is_file():
        raise ModelError(f"{p}: no such features CSV file")
    try:
        header, rows = csv_rows(p)
        body = [r for r in rows if r and any(c.strip() for c in r)]
    except InteractionsError as exc:
        raise ModelError(str(exc)) from None
    except csv.Error as exc:
        raise ModelError(f"{p}: not a valid CSV file ({exc})") from None
    key = "path" if "path" in header else "track_id" if "track_id" in header else None
    if key is None:
        raise ModelError(f"{p}: a features CSV needs a 'path' or 'track_id' column (found: "
                         f"{','.join(header) or 'none'})")
    if len(set(header)) != len(header):
        raise ModelError(f"{p}: repeated column names in the header")
    for line, row in enumerate(body, 2):
        if len(row) != len(header):
            raise ModelError(f"{p}, row {line}: expected {len(header)} columns, got {len(row)}")
    ik = header.index(key)
    resolver = TrackResolver(lib)
    ids: list[int] = []
    kept: list[list[str]] = []
    seen: set[int] = set()
    unmatched, duplicates = 0, 0
    examples: list[str] = []
    for row in body:
        value = row[ik].strip()
        if key == "path":
            target = Path(os.path.expanduser(value))
            tid, reason = resolver.path(target if target.is_absolute() else p.parent / target)
        else:
            tid, reason = resolver.track_id(value)
        if tid is None:
            unmatched += 1
            if len(examples) < 5:
                examples.append(f"{value!r}: {reason}")
            continue
        if tid in seen:
            duplicates += 1
            continue
        seen.add(tid)
        ids.append(tid)
        kept.append(row)
    if not ids:
        raise ModelError(f"{p}: names no catalogue track ({unmatched} rows; e.g. {'; '.join(examples) or 'none'})")
    names: list[str] = []
    ignored: list[str] = []
    columns: list[np.ndarray] = []
    for j, name in enumerate(header):
        if j == ik:
            continue
        cells = [r[j] for r in kept]
        parsed = [_number(c) if c.strip() else None for c in cells]
        non_empty = [c for c in cells if c.strip()]
        numbers = [v for v in parsed if v is not None]
        if len(numbers) < len(non_empty) or len(numbers) * 2 < len(cells):  # text, or mostly empty
            ignored.append(name)
            continue
        col = np.array([np.nan if v is None else v for v in parsed], dtype=np.float64)
        col[np.isnan(col)] = float(np.nanmean(col))
        names.append(name)
        columns.append(col)
    if not names:
        raise ModelError(f"{p}: no numeric feature column (ignored: {', '.join(ignored) or 'none'})")
    values = np.stack(columns, axis=1).astype(np.float32)
    return FeatureTable(names, ids, values, ignored, unmatched, duplicates, examples)


def _hash_bytes(audio_hash: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(audio_hash), dtype=np.uint8)


def _rows_for(lib: Any, sql: str, ids: Sequence[int], *params: object) -> list[tuple[Any, ...]]:
    """``sql`` (ending in ``IN ({marks})``) run over ``ids`` in chunks: a few tracks cost a few rows, not a scan."""
    out: list[tuple[Any, ...]] = []
    wanted = [int(i) for i in ids]
    for start in range(0, len(wanted), 500):
        part = wanted[start:start + 500]
        out += lib.conn.execute(sql.format(marks=",".join("?" * len(part))), (*params, *part)).fetchall()
    return out


def _audio_hashes(lib: Any, ids: Sequence[int]) -> dict[int, str]:
    return {int(i): str(h) for i, h in _rows_for(lib, "SELECT id, audio_hash FROM tracks WHERE id IN ({marks})", ids)}


@register
class DescriptorAE(Encoder):
    """Seed 001's 128-64-3-64-128 autoencoder; the 3-d code is the track's embedding (one "segment" per track)."""

    name = "descriptor-ae"
    preset_name = "melae"  # the preset the scan's descriptors are computed with (analysis.analyse_waveform)
    config_cls = DescriptorAEConfig
    source = "001 Methods/Data, Results/Training and Evaluation Protocol"
    input_kind = "descriptor"

    mean: torch.Tensor
    std: torch.Tensor
    fitted: torch.Tensor
    csv_keys: torch.Tensor
    csv_values: torch.Tensor

    def __init__(self, config: DescriptorAEConfig) -> None:
        super().__init__(config)
        self.register_buffer("fitted", torch.zeros((), dtype=torch.uint8))
        self._build_layers()

    @property
    def cfg(self) -> DescriptorAEConfig:
        assert isinstance(self.config, DescriptorAEConfig)
        return self.config

    def _build_layers(self) -> None:
        """(Re)create the network and buffers for ``config.input_dim`` inputs and ``config.csv_rows`` CSV rows."""
        cfg = self.cfg
        d, hidden = int(cfg.input_dim), [int(h) for h in cfg.hidden]
        if d < 1:
            raise ModelError(f"descriptor-ae needs at least one input feature (input_dim={d})")
        enc: list[nn.Module] = []
        width = d
        for h in hidden:
            enc += [nn.Linear(width, h), nn.ReLU()]
            width = h
        enc.append(nn.Linear(width, cfg.embedding_dim))
        dec: list[nn.Module] = []
        width = cfg.embedding_dim
        for h in reversed(hidden):
            dec += [nn.Linear(width, h), nn.ReLU()]
            width = h
        dec.append(nn.Linear(width, d))
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("std", torch.ones(d))
        self.register_buffer("csv_keys", torch.zeros((cfg.csv_rows, 16), dtype=torch.uint8))
        self.register_buffer("csv_values", torch.zeros((cfg.csv_rows, d)))
        self._csv_index: dict[bytes, int] | None = None

    # --- network ----------------------------------------------------------------------------------------------
    def prepare(self, segments: torch.Tensor) -> torch.Tensor:
        """Raw feature vectors ``(n, d)`` standardised with the training statistics."""
        return (segments.float() - self.mean) / self.std

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised vectors ``(n, d)`` to 3-d codes."""
        return self.encoder(x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised vectors to their reconstructions."""
        return self.decoder(self.encoder(x))

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """MSE reconstruction + L1 activity penalty on the code (Keras: ``l1 * sum|code|`` / batch size)."""
        x = batch["features"]
        code = self.encoder(x)
        mse = F.mse_loss(self.decoder(code), x)
        l1 = code.abs().sum(dim=1).mean()
        return mse + self.cfg.l1_activity * l1, {"mse": float(mse.detach()), "l1": float(l1.detach())}

    def sample_batch(self, tracks: TrackSet, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        """A batch of whole tracks (their feature vectors), without repeats where there are enough tracks.

        The key is ``features`` (not ``x``): these are vectors, not spectrogram patches to plot.
        """
        n = len(tracks)
        picks = rng.choice(n, size=min(batch_size, n), replace=False) if n else np.zeros(0, dtype=np.int64)
        x = np.stack([np.asarray(tracks.inputs[int(i)], dtype=np.float32).ravel() for i in picks])
        return {"features": self.prepare(torch.from_numpy(x))}

    def segments(self, spec_db: np.ndarray) -> np.ndarray:
        """One track is one "segment": its feature vector ``(1, d)``."""
        return np.asarray(spec_db, dtype=np.float32).reshape(1, -1)

    def embed_track(self, track_input: np.ndarray, device: str = "cpu", max_segments: int = 256
                    ) -> tuple[np.ndarray, np.ndarray]:
        """``(3-d code, the code as a one-segment sequence)`` of one raw feature vector."""
        x = self.segments(track_input)
        if x.shape[1] != self.cfg.input_dim:
            raise ModelError(f"descriptor-ae expects {self.cfg.input_dim} features, got {x.shape[1]}")
        with torch.no_grad():
            code = self.encode(self.prepare(torch.from_numpy(x).to(device))).cpu()
        seq = code.numpy().astype(np.float32)
        return seq[0].copy(), seq

    # --- data hooks -------------------------------------------------------------------------------------------
    def load_inputs(self, lib: Any, track_ids: Sequence[int]) -> list[np.ndarray]:
        """Each track's raw feature vector: its stored descriptor, or its row of the trained-on features CSV."""
        if self.cfg.feature_source == CSV_SOURCE:
            index = self._csv_lookup()
            hashes = _audio_hashes(lib, track_ids)
            out = []
            for t in track_ids:
                row = index.get(bytes.fromhex(hashes[int(t)])) if int(t) in hashes else None
                if row is None:
                    raise ModelError(f"track {t} is not in the features CSV this descriptor-ae model was trained "
                                     "with")
                out.append(self.csv_values[row].numpy().copy())
            return out
        rows = _rows_for(lib, "SELECT track_id, vector FROM vectors WHERE model=? AND track_id IN ({marks})",
                         track_ids, DESCRIPTOR_MODEL)
        found = {int(t): np.frombuffer(v, dtype=np.float32).copy() for t, v in rows}
        missing = [int(t) for t in track_ids if int(t) not in found]
        if missing:
            raise ModelError(f"{len(missing)} tracks have no descriptor vector (e.g. track {missing[0]}); "
                             "run `soundalike index` again")
        return [found[int(t)] for t in track_ids]

    def trackable(self, lib: Any, track_ids: Sequence[int]) -> list[int]:
        """The tracks this model can embed: all with descriptors, or (CSV model) those in its CSV table."""
        if self.cfg.feature_source != CSV_SOURCE:
            return [int(t) for t in track_ids]
        index = self._csv_lookup()
        hashes = _audio_hashes(lib, track_ids)
        return [int(t) for t in track_ids if int(t) in hashes and bytes.fromhex(hashes[int(t)]) in index]

    def _csv_lookup(self) -> dict[bytes, int]:
        if self._csv_index is None or len(self._csv_index) != self.csv_keys.shape[0]:
            self._csv_index = {bytes(k.tolist()): i for i, k in enumerate(self.csv_keys)}
        return self._csv_index

    def query_input(self, analysis: Any) -> np.ndarray:
        """An outside file's descriptor (a CSV-trained model has no features for files outside its CSV)."""
        if self.cfg.feature_source == CSV_SOURCE:
            raise ModelError("this descriptor-ae model was trained on a features CSV "
                             f"({', '.join(self.cfg.feature_names[:5])}...); it can only embed tracks listed in "
                             "that CSV, not an outside file — use a library track as the query, or a descriptor-ae "
                             "trained on descriptors")
        if analysis.descriptor is None:
            raise ModelError("the analysis has no descriptor vector")
        return np.asarray(analysis.descriptor, dtype=np.float32)

    def setup_training(self, lib: Any, train: TrackSet, val: TrackSet, options: dict[str, Any]) -> dict[str, Any]:
        """Switch to the features CSV if given (changing ``train``/``val`` in place) and fit the standardisation."""
        unknown = sorted(set(options) - {"features_csv"})
        if unknown:
            raise ModelError(f"model {self.name!r} takes no training option {', '.join(unknown)} "
                             "(only features_csv)")
        cfg = self.cfg
        fitted = bool(self.fitted.item())
        card: dict[str, Any] = {"features": cfg.feature_source}
        csv_path = options.get("features_csv")
        if csv_path is not None:
            table = read_features_csv(lib, csv_path)
            if fitted and (cfg.feature_source != CSV_SOURCE or table.names != cfg.feature_names):
                raise ModelError(f"{csv_path}: its feature columns differ from those this run started with "
                                 f"({', '.join(cfg.feature_names) or 'descriptors'})")
            hashes = _audio_hashes(lib, table.track_ids)
            cfg.feature_source, cfg.feature_names = CSV_SOURCE, list(table.names)
            cfg.input_dim, cfg.csv_rows = len(table.names), len(table.track_ids)
            if not fitted:
                torch.manual_seed(cfg.seed)
                self._build_layers()
            self.csv_keys = torch.from_numpy(np.stack([_hash_bytes(hashes[t]) for t in table.track_ids]))
            self.csv_values = torch.from_numpy(table.values)
            self._csv_index = None
            row_of = {t: i for i, t in enumerate(table.track_ids)}
            for part in (train, val):
                keep = [i for i, t in enumerate(part.ids) if int(t) in row_of]
                part.ids[:] = [part.ids[i] for i in keep]
                part.inputs[:] = [table.values[row_of[int(part.ids[k])]] for k in range(len(keep))]
            described = [int(r[0]) for r in lib.conn.execute("SELECT track_id FROM vectors WHERE model=?",
                                                               (DESCRIPTOR_MODEL,))]
            skipped = sum(1 for t in described if t not in row_of)
            card.update({"features": CSV_SOURCE, "features_csv": str(csv_path), "feature_names": list(table.names),
                         "ignored_columns": table.ignored_columns, "csv_rows_not_in_catalogue": table.unmatched_rows,
                         "csv_duplicate_rows": table.duplicate_rows, "tracks_not_in_csv": skipped})
            if skipped:
                card["note"] = (f"{skipped} catalogue tracks are not in {csv_path} and were left out of training "
                                "(and cannot be embedded by this model)")
        elif cfg.feature_source == CSV_SOURCE:
            raise ModelError("this descriptor-ae run was trained on a features CSV: pass the same features_csv")
        if len(train) < 1:
            raise ModelError("descriptor-ae: no training track has features")
        dims = {np.asarray(x).size for x in train.inputs + val.inputs}
        if dims != {cfg.input_dim}:
            if fitted:
                raise ModelError(f"descriptor-ae was built for {cfg.input_dim} features; the data have {dims}")
            cfg.input_dim = int(next(iter(dims))) if len(dims) == 1 else -1
            if cfg.input_dim < 0:
                raise ModelError(f"descriptor vectors of different sizes in the catalogue: {sorted(dims)}")
            torch.manual_seed(cfg.seed)
            self._build_layers()
        if not fitted:
            mat = np.stack([np.asarray(x, dtype=np.float32).ravel() for x in train.inputs])
            self.mean = torch.from_numpy(mat.mean(axis=0).astype(np.float32))
            self.std = torch.from_numpy(np.maximum(mat.std(axis=0), 1e-6).astype(np.float32))
            self.fitted = torch.ones((), dtype=torch.uint8)
        card["input_dim"] = cfg.input_dim
        return card
