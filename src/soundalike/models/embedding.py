"""Embed library tracks with a trained model, from the cached spectrograms (no audio decoding).

Vectors are stored under the checkpoint's ``model_id`` (family + weights hash) beside every other model's, with
the sequence of segment embeddings kept for sequence distances. The catalogue remembers which checkpoint made
each ``model_id`` so queries (including cold-start files) can embed with the same weights.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from soundalike.library.catalog import DESCRIPTOR_MODEL, CatalogError, Library

from .errors import ModelError
from .pretrained import (
    DEFAULT_NAME,
    default_checkpoint,
    default_checkpoints,
    default_fusion,
    default_metrics,
    default_neighbours,
    shipped_checkpoint,
    shipped_model_ids,
    shipped_part,
)

if TYPE_CHECKING:
    from .base import Encoder

# PyTorch is imported by the functions that load a model, not by this module: resolving ``default`` and reading
# the registry serve every query of a library track, which needs no model.
PACKAGE_PREFIX = "package:"
EMBED_BATCH = 16  # tracks embedded (and committed) together
# Below this many tracks to embed, worker processes cost more than they save: each imports PyTorch and loads the
# model (~1.3 CPU-s) against ~0.04-0.13 CPU-s a track per default model.
PARALLEL_MIN_TRACKS = 200
LIBRARY_PREFIX = "library:"


def stored_checkpoint(lib: Library, checkpoint: str | os.PathLike[str]) -> str:
    """How the catalogue records a checkpoint: ``package:NAME`` for the models shipped in the package and
    ``library:REL`` for files inside the library folder (so an upgraded, moved or copied install keeps finding
    them), else the absolute path."""
    path = Path(checkpoint).resolve()
    shipped = default_checkpoint()
    if shipped is not None and path.parent == shipped.resolve().parent:
        return PACKAGE_PREFIX + path.name
    try:
        return LIBRARY_PREFIX + path.relative_to(Path(lib.root).resolve()).as_posix()
    except ValueError:
        return str(path)


def checkpoint_path(lib: Library, stored: str) -> Path:
    """The file a stored checkpoint reference (:func:`stored_checkpoint`) points at today."""
    if stored.startswith(PACKAGE_PREFIX):
        shipped = default_checkpoint()
        folder = shipped.parent if shipped is not None else Path(__file__).parent / "pretrained"
        return folder / stored[len(PACKAGE_PREFIX):]
    if stored.startswith(LIBRARY_PREFIX):
        return Path(lib.root) / stored[len(LIBRARY_PREFIX):]
    return Path(stored)


class CheckpointChoiceError(ModelError):
    """A ``--model`` (or ``soundalike.model``) for indexing that names no checkpoint (one line)."""


def checkpoints_for(model: str, library: Library | str | os.PathLike[str] | None = None) -> list[Path]:
    """The checkpoints indexing with ``model`` embeds with: every part of the shipped default for ``default``, none
    for ``descriptor``, else one: a shipped model (``musicnn``...), a checkpoint file, or the newest checkpoint of a
    family name / model id trained on ``library`` (a :class:`Library` or its folder; default: the usual one).
    Checked now (:class:`CheckpointChoiceError`), so a bad choice fails before a scan starts."""
    if model == DEFAULT_NAME:
        return default_checkpoints()
    if model == DESCRIPTOR_MODEL:
        return []
    from .checkpoint import read_checkpoint

    path = shipped_checkpoint(model) or Path(model).expanduser()
    if not path.is_file():
        known = _trained(library, model)
        if not known:
            raise CheckpointChoiceError(f"{model}: no such checkpoint file, and no model of that name was trained on "
                                        "this library (train one with `soundalike train NAME`)")
        path = known[-1]
        if not path.is_file():
            raise CheckpointChoiceError(f"{model}: its checkpoint {path} is gone; train it again or give a "
                                        "checkpoint file")
    try:
        read_checkpoint(path)
    except ModelError as exc:
        raise CheckpointChoiceError(str(exc).splitlines()[0] if str(exc) else f"{path}: not a checkpoint") from None
    return [path]


def _trained(library: Library | str | os.PathLike[str] | None, model: str) -> list[Path]:
    """The checkpoints of the models named ``model`` (family name or model id) registered in ``library``, oldest
    first; none when there is no catalogue."""
    def known(lib: Library) -> list[Path]:
        rows = sorted((info.get("registered_at", 0), mid, checkpoint_path(lib, info["checkpoint"]))
                      for mid, info in registered_models(lib).items() if model in (mid, info.get("name")))
        return [row[2] for row in rows]

    if isinstance(library, Library):
        return known(library)
    from soundalike.library.catalog import default_library_dir

    try:
        with Library.open(library if library is not None else default_library_dir(), create=False) as lib:
            return known(lib)
    except CatalogError:
        return []


def checkpoint_presets(*checkpoints: str | os.PathLike[str] | None) -> tuple[str, ...]:
    """The mel presets a scan should compute (from the audio it decodes anyway) for models to embed from: the
    scan's own, plus each checkpoint's where it differs."""
    from soundalike.audio.analysis import DEFAULT_PRESETS

    presets = list(DEFAULT_PRESETS)
    for checkpoint in checkpoints:
        if checkpoint is None:
            continue
        shipped = shipped_part(checkpoint)  # the default's parts: from default.json, without PyTorch
        if shipped is not None:
            name = shipped["input"]
        else:
            from .checkpoint import read_checkpoint

            name = stored_key(read_checkpoint(checkpoint))
        if name and name not in presets:
            presets.append(name)
    return tuple(presets)


def stored_key(payload: dict[str, Any]) -> str:
    """The feature-store key a checkpoint's model embeds from (:meth:`Encoder.stored_key`), from its stored
    family, config and preset."""
    from .base import model_class

    preset = str((payload.get("preset") or {}).get("name", ""))
    try:
        cls = model_class(str(payload.get("model")))
    except ModelError:
        return preset
    return cls.stored_key(cls.config_cls.from_dict(dict(payload.get("config") or {}))) if preset else preset


def register_model(lib: Library, payload: dict[str, Any], checkpoint: str | os.PathLike[str]) -> str:
    """Remember which checkpoint file made ``payload['model_id']``; returns the id."""
    model_id = str(payload["model_id"])
    lib.set_meta(f"model:{model_id}", {"name": payload["model"], "checkpoint": stored_checkpoint(lib, checkpoint),
                                       "registered_at": time.time()})
    return model_id


def _nothing_to_embed(lib: Library, checkpoint: str | os.PathLike[str]) -> str | None:
    """The model id of a shipped default part when every track of ``lib`` has a vector from it and it is
    registered as this part (its family, this checkpoint: what :func:`register_model` would write again): then
    there is nothing to load a model (nor PyTorch) for; else None."""
    shipped = shipped_part(checkpoint)
    if shipped is None:
        return None
    model_id = shipped["model_id"]
    info = registered_models(lib).get(model_id, {})
    if info.get("name") != shipped["model"] or info.get("checkpoint") != stored_checkpoint(lib, checkpoint):
        return None  # unregistered, or registered from another file: the full path registers it again
    missing = lib.conn.execute("SELECT 1 FROM tracks t WHERE NOT EXISTS (SELECT 1 FROM vectors v WHERE "
                               "v.track_id = t.id AND v.model = ?) LIMIT 1", (model_id,)).fetchone()
    return model_id if missing is None else None


@contextlib.contextmanager
def one_cpu_thread(device: str = "cpu") -> Iterator[None]:
    """Run PyTorch's CPU operators on one thread inside the block (restored after; nothing changes on a GPU).

    Embedding runs small forward passes (:attr:`Encoder.cpu_batch`), where PyTorch's intra-op threads spend more
    CPU waiting for each other than they save: measured over 48 development tracks with the default models, two
    threads took 2.5x the CPU time of one (musicnn 15.3 vs 6.3 CPU-s, contrastive 10.7 vs 1.9), and one thread
    also finished sooner than two on the shared 2-core machine (docs/performance.md)."""
    import torch

    if torch.device(device).type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_worker_model: Encoder | None = None


def _init_embed_worker(checkpoint: str, device: str, parent: int) -> None:
    """Set up an embedding worker process: dies with its parent, one thread, the model loaded once."""
    global _worker_model
    import torch

    from soundalike.library.scan import init_worker_process

    from .checkpoint import load_checkpoint

    init_worker_process(parent)
    torch.set_num_threads(1)
    _worker_model = load_checkpoint(checkpoint, device)[0]


def _embed_in_worker(inputs: list[np.ndarray], device: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """:meth:`Encoder.embed_tracks` in a worker process, with the model its initializer loaded."""
    assert _worker_model is not None, "embedding worker without a model"
    return _worker_model.embed_tracks(inputs, device)


def _embedded_batches(lib: Library, model: Encoder, checkpoint: str | os.PathLike[str], batches: Sequence[list[int]],
                      device: str, jobs: int
                      ) -> Generator[tuple[list[int], list[tuple[np.ndarray, np.ndarray]]], None, None]:
    """Each batch of track ids with its ``(pooled, segments)`` vectors, in order: here, or with ``jobs`` worker
    processes (one PyTorch thread each) while this process reads the next inputs and writes the vectors."""
    if jobs <= 1:
        for batch in batches:
            yield batch, model.embed_tracks(model.load_inputs(lib, batch), device)
        return
    import multiprocessing

    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_embed_worker, initargs=(os.fspath(checkpoint), device, os.getpid()))
    pending: deque[tuple[list[int], Future[list[tuple[np.ndarray, np.ndarray]]]]] = deque()
    try:
        for batch in batches:
            pending.append((batch, pool.submit(_embed_in_worker, model.load_inputs(lib, batch), device)))
            if len(pending) > 2 * jobs:  # a bounded queue: inputs of a few batches in flight, not the library's
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
    except BrokenProcessPool as exc:  # a worker died (out of memory, killed) or could not load the model
        raise ModelError(f"{os.fspath(checkpoint)}: an embedding worker process died ({exc}); what was embedded "
                         "before is kept, run the command again") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def embed_library(lib: Library, checkpoint: str | os.PathLike[str], *, device: str = "cpu", only_missing: bool = True,
                  on_progress: Callable[[str, int, int], None] | None = None, jobs: int = 1) -> tuple[str, int]:
    """Embed every track that has the model's preset spectrogram; returns ``(model_id, tracks embedded)``. With
    ``jobs`` > 1 on the CPU and :data:`PARALLEL_MIN_TRACKS` tracks or more, worker processes embed them. When
    every track has a vector from a shipped default part already (an `index` with nothing new), no model (nor
    PyTorch) is loaded."""
    if only_missing:
        complete = _nothing_to_embed(lib, checkpoint)
        if complete is not None:
            if on_progress:
                on_progress("embed", 0, 0)
            return complete, 0
    from .checkpoint import load_checkpoint

    model, payload = load_checkpoint(checkpoint, device)
    with lib.writing(), one_cpu_thread(device):
        model_id = register_model(lib, payload, checkpoint)
        ids = trackable_ids(lib, model, on_progress=on_progress)
        have = {int(r[0]) for r in lib.conn.execute("SELECT track_id FROM vectors WHERE model=?", (model_id,))}
        todo = [t for t in ids if not (only_missing and t in have)]
        if on_progress:
            on_progress("embed", 0, len(todo))
        done = 0
        batches = [todo[start:start + EMBED_BATCH] for start in range(0, len(todo), EMBED_BATCH)]
        # two workers from PARALLEL_MIN_TRACKS tracks on, one more for each half of that: each worker's start-up
        # must pay for itself (a 32-core machine does not start 32 PyTorch processes for 300 tracks)
        parallel = max(1, min(jobs, len(todo) * 2 // PARALLEL_MIN_TRACKS)) if device == "cpu" else 1
        # closing(): an error in this loop shuts the workers down at once, not when the generator is collected
        with contextlib.closing(_embedded_batches(lib, model, checkpoint, batches, device, parallel)) as results:
            for batch, vectors in results:
                with lib.transaction():  # a kill loses at most this batch, embedded again next time
                    for track_id, (pooled, seq) in zip(batch, vectors, strict=True):
                        lib.put_vector(track_id, model_id, pooled, seq)
                done += len(batch)
                if on_progress:
                    on_progress("embed", done, len(todo))
    return model_id, len(todo)


def trackable_ids(lib: Library, model: Encoder,
                  on_progress: Callable[[str, int, int], None] | None = None) -> list[int]:
    """Ids of the tracks the model can take: with its preset's spectrogram (computed now where missing)."""
    if model.input_kind == "spectrogram":
        from soundalike.library.scan import ensure_spectrograms

        keys = model.input_keys
        ensure_spectrograms(lib, keys[0], on_progress=on_progress, present=keys)
        rows = lib.conn.execute(f"SELECT DISTINCT track_id FROM spectrograms WHERE preset IN "
                                f"({','.join('?' * len(keys))}) ORDER BY track_id", keys)
    else:
        rows = lib.conn.execute("SELECT track_id FROM vectors WHERE model=? ORDER BY track_id", (DESCRIPTOR_MODEL,))
    return model.trackable(lib, [int(r[0]) for r in rows])


def registered_models(lib: Library) -> dict[str, dict[str, Any]]:
    """``model_id -> {name, checkpoint, registered_at}`` of every model the catalogue has embeddings from."""
    rows = lib.conn.execute("SELECT key, value FROM meta WHERE key LIKE 'model:%'").fetchall()
    return {k[len("model:"):]: json.loads(v) for k, v in rows}


@functools.lru_cache(maxsize=8)
def _checkpoint_model_id(path: str, mtime_ns: int) -> str:
    """The model id stored in a checkpoint (cached per file version: every query of ``default`` asks for it)."""
    from .checkpoint import read_checkpoint

    return str(read_checkpoint(path)["model_id"])


def resolve_model(lib: Library, name: str) -> str:
    """The catalogue key for ``name``: ``default`` (the shipped model, else descriptors), ``descriptor``, an exact
    model id, a family name (its newest embedding), a shipped model (``musicnn-msd``) or a checkpoint file; fused
    (``+``), weighted (``@``), with a part's metric (``#``) or smoothed (``~nnK``) keys resolve part by part."""
    from soundalike.search.metric import METRIC_MARK
    from soundalike.search.space import SpaceError, model_parts, part_metrics, split_neighbours, with_neighbours

    present = set(lib.models())
    if name == DESCRIPTOR_MODEL or name in present:
        return name
    try:
        base, neighbours = (name, 0) if os.path.isfile(name) else split_neighbours(name)
    except SpaceError as exc:
        raise CatalogError(str(exc)) from None
    if neighbours:  # smoothed over the neighbourhood: the key of what is smoothed, marked again
        return with_neighbours(resolve_model(lib, base), neighbours)
    if "+" in name:  # a fusion of several embeddings: resolve each part
        from soundalike.search.space import split_part

        try:
            parts = [split_part(part) for part in name.split("+") if part]
        except SpaceError as exc:
            raise CatalogError(str(exc)) from None
        fused = "+".join(resolve_model(lib, part) + (f"@{weight:g}" if weight is not None else "")
                         for part, weight in parts)
        try:
            model_parts(fused)  # each embedding once (a plain part and the same through a metric: not both)
        except SpaceError as exc:
            raise CatalogError(str(exc)) from None
        return fused
    if METRIC_MARK in name and not os.path.isfile(name):  # a part with a learned metric: resolve its model
        from soundalike.search.metric import MetricError, split_metric

        try:
            model, metric = split_metric(name)
        except MetricError as exc:
            raise CatalogError(str(exc)) from None
        resolved = f"{resolve_model(lib, model)}{METRIC_MARK}{metric}"
        try:
            part_metrics(resolved)  # known, and fitted for this embedding: checked before any index is built
        except SpaceError as exc:
            raise CatalogError(str(exc)) from None
        return resolved
    if name == DEFAULT_NAME:
        key = default_key(lib, present)
        try:
            part_metrics(key)  # the shipped metrics: present, and fitted for these parts and descriptors
        except SpaceError as exc:
            raise CatalogError(f"the default model: {exc}") from None
        return key
    registered = registered_models(lib)
    shipped_file = shipped_checkpoint(name)
    if shipped_file is not None and name != "musicnn":  # a training picked by name: its own embedding
        name = str(shipped_file)
    if os.path.isfile(name):
        model_id = _checkpoint_model_id(name, os.stat(name).st_mtime_ns)
        if model_id in present:
            return model_id
        raise CatalogError(f"no tracks embedded with {name} yet — run `soundalike index PATH --model {name}`")
    family = [(info.get("registered_at", 0), mid) for mid, info in registered.items()
              if info.get("name") == name and mid in present]
    if family:
        return max(family)[1]
    known = ", ".join(sorted(present)) or "none"
    raise CatalogError(f"no embeddings for model {name!r} in {lib.root} (present: {known}); "
                       f"run `soundalike index PATH --model {name}`")


def default_key(lib: Library, present: set[str] | None = None) -> str:
    """The catalogue key of ``default``: the fusion of ``default.json`` (weights chosen on validation,
    docs/models.md) over the parts this library has embeddings of; the descriptors alone when it has none."""
    present = set(lib.models()) if present is None else present
    from soundalike.search.metric import METRIC_MARK

    known, metrics = shipped_model_ids(), default_metrics()
    found: list[tuple[str, str | None, float]] = []
    for path, weight in default_fusion():
        if path is None:
            found.append((DESCRIPTOR_MODEL, metrics.get(DESCRIPTOR_MODEL), weight))
        elif path.is_file():
            model_id = known.get(path.name) or _checkpoint_model_id(str(path), path.stat().st_mtime_ns)
            if model_id in present:  # a library indexed before this part shipped searches without it
                found.append((model_id, metrics.get(path.name), weight))
    if all(part == DESCRIPTOR_MODEL for part, _, _ in found):
        return DESCRIPTOR_MODEL  # the descriptors alone: as they are, not through a metric fitted for the fusion
    parts = [(part + (f"{METRIC_MARK}{metric}" if metric else ""), weight) for part, metric, weight in found]
    if len({weight for _, weight in parts}) == 1:
        key = "+".join(part for part, _ in parts)
    else:
        key = "+".join(f"{part}@{weight:g}" for part, weight in parts)
    from soundalike.search.space import with_neighbours

    return with_neighbours(key, default_neighbours())


def model_for(lib: Library, model_id: str, device: str = "cpu") -> Encoder:
    """Load the checkpoint that made ``model_id`` (for embedding queries the same way)."""
    info = registered_models(lib).get(model_id)
    if info is None:
        raise ModelError(f"the catalogue does not know which checkpoint made {model_id!r}")
    from .checkpoint import load_checkpoint

    model, payload = load_checkpoint(checkpoint_path(lib, info["checkpoint"]), device)
    if payload["model_id"] != model_id:
        raise ModelError(f"{info['checkpoint']} changed since it embedded this library "
                         f"(now {payload['model_id']}, was {model_id}); run `soundalike index --model` again")
    return model
