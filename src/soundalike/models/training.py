"""Training loop for every model family: data from the feature store, validation split, best checkpoint, resume.

The loop is family-agnostic: a model draws its own batches (``sample_batch``) and computes its own loss. Training
streams the spectrograms cached by ``soundalike index`` (memory maps of the feature store, so a library larger
than memory trains too, and no audio is decoded again); batches are drawn and augmented in DataLoader worker
processes while the main process trains. Batch ``i`` of epoch ``e`` comes from a generator seeded by
``(seed, e, i)``: the same batches whatever the number of workers, and a run resumed after a kill redoes exactly
the epoch it lost.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from soundalike.library.catalog import CatalogError, Library

from . import Encoder, ModelError, build, load_checkpoint, save_checkpoint
from .base import TrackSet
from .checkpoint import read_checkpoint

ProgressHook = Callable[[str, int, int, dict[str, float]], None]


@dataclass
class TrainingData:
    """The model's inputs for the library's tracks, split by track into training and validation sets."""

    train: TrackSet
    val: TrackSet
    input_kind: str
    preset: str

    def split(self) -> dict[str, list[int]]:
        """The track ids of each side (stored with a run, reused when it resumes)."""
        return {"train": [int(i) for i in self.train.ids], "val": [int(i) for i in self.val.ids]}

    def summary(self) -> dict[str, Any]:
        """What the model was trained on (stored in the checkpoint's model card)."""
        card: dict[str, Any] = {"input": self.input_kind, "preset": self.preset, "train_tracks": len(self.train),
                                "validation_tracks": len(self.val)}
        if self.input_kind == "spectrogram":
            card["frames"] = int(sum(x.shape[1] for x in self.train.inputs + self.val.inputs))
        return card


def load_training_data(lib: Library, model: Encoder, validation_fraction: float, seed: int,
                       min_tracks: int = 2, on_progress: Callable[[str, int, int], None] | None = None,
                       split: dict[str, list[int]] | None = None) -> TrainingData:
    """The model's input for every usable track, split by track (seeded) into training and validation sets; a
    stored ``split`` (``{"train": ids, "val": ids}`` of a run being resumed) is kept, less tracks now gone."""
    from .embedding import trackable_ids

    ids = trackable_ids(lib, model, on_progress=on_progress)
    if len(ids) < min_tracks:
        raise CatalogError(f"{lib.root} has {len(ids)} tracks usable by {model.name!r}; training needs at least "
                           f"{min_tracks} — run `soundalike index PATH` first")
    if split is not None:
        usable = set(ids)
        train_ids = [int(i) for i in split["train"] if int(i) in usable]
        val_ids = [int(i) for i in split["val"] if int(i) in usable]
    else:
        order = np.random.default_rng(seed).permutation(len(ids))
        n_val = int(round(len(ids) * validation_fraction)) if len(ids) >= 10 else 0
        val_ids = [ids[i] for i in sorted(order[:n_val])]
        train_ids = [ids[i] for i in sorted(order[n_val:])]
    return TrainingData(TrackSet(train_ids, model.load_inputs(lib, train_ids)),
                        TrackSet(val_ids, model.load_inputs(lib, val_ids)), model.input_kind, model.preset_name)


@dataclass
class TrainResult:
    """Where the best checkpoint went and how training went."""

    checkpoint: Path
    model_id: str
    epochs_run: int
    best_val_loss: float | None
    seconds: float
    history: dict[str, list[float]] = field(default_factory=dict)
    plots: list[Path] = field(default_factory=list)


class EpochBatches(torch.utils.data.IterableDataset):  # type: ignore[type-arg]
    """The training batches of one epoch; in a DataLoader with W workers, worker w draws batches w, w+W, ...
    (the DataLoader hands them out in that round-robin order, so the sequence is the same for every W)."""

    def __init__(self, model: Encoder, tracks: TrackSet, batch_size: int, seed: int, epoch: int, count: int) -> None:
        super().__init__()
        self.model, self.tracks, self.batch_size = model, tracks, batch_size
        self.seed, self.epoch, self.count = seed, epoch, count

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        """Batch ``index`` of the epoch (deterministic)."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return self.model.sample_batch(self.tracks, rng, self.batch_size)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        for index in range(start, self.count, step):
            yield self.batch(index)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # a worker draws batches with numpy; the main process's threads do the maths


def epoch_batches(model: Encoder, tracks: TrackSet, batch_size: int, seed: int, epoch: int, count: int,
                  workers: int) -> Iterable[dict[str, torch.Tensor]]:
    """The epoch's batches, drawn in ``workers`` worker processes (0: in this process)."""
    data = EpochBatches(model, tracks, batch_size, seed, epoch, count)
    model.warm(tracks)
    if workers <= 0:
        return iter(data)
    # fork: workers share the parent's memory maps and the model's training state without pickling them.
    return torch.utils.data.DataLoader(data, batch_size=None, num_workers=workers, worker_init_fn=_worker_init,
                                       prefetch_factor=4, multiprocessing_context="fork")


def default_workers() -> int:
    """Batch-drawing worker processes by default: one beside the training process when there are two cores or more."""
    return 1 if (os.cpu_count() or 1) > 1 else 0


def _validation_loss(model: Encoder, data: TrainingData, seed: int) -> float | None:
    if not len(data.val):
        return None
    rng = np.random.default_rng(seed + 1_000_003)  # the same validation batches every epoch
    model.eval()
    losses = []
    with torch.no_grad():
        for _ in range(model.batches_per_epoch(len(data.val))):
            loss, _ = model.loss(model.sample_batch(data.val, rng, model.config.batch_size))
            losses.append(loss.item())
    return float(np.mean(losses))


def _saved_best(out: Path, run: str, epoch: int) -> float:
    """The best loss already in ``out`` when it was written by this run after ``epoch`` (a kill fell between the
    best checkpoint's save and the run state's): the resumed run must not replace it with a worse one."""
    if not out.exists():
        return float("inf")
    try:
        saved = read_checkpoint(out)
    except ModelError:
        return float("inf")
    if saved.get("run") != run or int(saved.get("epoch", 0)) <= epoch:
        return float("inf")
    return float(saved.get("best_val_loss", float("inf")))


def last_checkpoint_path(out: Path) -> Path:
    """Where the resumable state of a run writing ``out`` is kept (``NAME.last.pt``)."""
    return out.with_name(out.stem + ".last" + out.suffix)


def train(lib: Library, name: str, out: str | Path, *, epochs: int | None = None, batch_size: int | None = None,
          seed: int | None = None, device: str = "cpu", resume: bool = False,
          on_progress: ProgressHook | None = None, plots: bool = True, options: dict[str, Any] | None = None,
          workers: int | None = None, **overrides: Any) -> TrainResult:
    """Train model family ``name`` on the library's cached spectrograms; the best checkpoint goes to ``out``.

    With ``resume`` the run continues from ``out``'s ``.last.pt`` state (epoch, optimizer, random state).
    ``workers`` processes draw the batches (default :func:`default_workers`; results do not depend on it).
    ``options`` go to the family's ``setup_training`` (e.g. ``interactions`` for cf-regression); ``overrides``
    change its config (hyper-parameters).
    """
    out = Path(out)
    started = time.monotonic()
    model = build(name, epochs=epochs, batch_size=batch_size, seed=seed, **overrides)
    cfg = model.config
    last = last_checkpoint_path(out)
    state = read_checkpoint(last) if resume else None
    if state is not None and state.get("model") != name:
        raise ModelError(f"{last}: holds a {state.get('model')!r} run, not {name!r}")
    # A resumed run keeps its split: tracks added to the library since are not drawn into either side.
    data = load_training_data(lib, model, cfg.validation_fraction, cfg.seed,
                              split=state.get("split") if state is not None else None)
    setup = model.setup_training(lib, data.train, data.val, dict(options or {}))
    model.to(device)
    optimizer = model.optimizer()
    workers = default_workers() if workers is None else workers
    history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "epoch_seconds": []}
    start_epoch, step, best = 0, 0, float("inf")
    run = os.urandom(8).hex()  # ties the best checkpoint to the run state it belongs to
    if state is not None:
        model, _ = load_checkpoint(last, device)
        model.config.epochs = cfg.epochs  # a resumed run may be asked to go further
        cfg = model.config
        setup = model.setup_training(lib, data.train, data.val, dict(options or {}))
        new_phase = model.begin_epoch(int(state["epoch"]))  # restore the training phase before the optimiser
        optimizer = model.optimizer()
        if not new_phase:  # a phase starting now gets a fresh optimiser
            optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, step = int(state["epoch"]), int(state["step"])
        history = {"epoch_seconds": [], **{k: list(v) for k, v in state["history"].items()}}
        best = float("inf") if new_phase else float(state.get("best_val_loss", float("inf")))
        run = str(state.get("run") or run)
        if not new_phase:
            best = min(best, _saved_best(out, run, start_epoch))
    per_epoch = model.batches_per_epoch(len(data.train))
    total_steps = per_epoch * cfg.epochs
    for epoch in range(start_epoch, cfg.epochs):
        if model.begin_epoch(epoch) and epoch > start_epoch:
            optimizer = model.optimizer()
            best = float("inf")  # a new phase's losses are not comparable with the last phase's
        model.train()
        losses = []
        epoch_started = time.monotonic()
        for drawn in epoch_batches(model, data.train, cfg.batch_size, cfg.seed, epoch, per_epoch, workers):
            batch = {k: v.to(device) for k, v in drawn.items()}
            loss, extra = model.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            losses.append(loss.item())
            if on_progress:
                on_progress("train", step, total_steps, {"epoch": epoch + 1, "loss": float(np.mean(losses[-20:])),
                                                        **extra})
        history["train_loss"].append(float(np.mean(losses)))
        val = _validation_loss(model, data, cfg.seed)
        history["epoch_seconds"].append(round(time.monotonic() - epoch_started, 2))
        score = val if val is not None else history["train_loss"][-1]
        history["val_loss"].append(float("nan") if val is None else val)
        card = {"epoch": epoch + 1, "step": step, "history": history, "data": {**data.summary(), **setup},
                "metrics": {"train_loss": history["train_loss"][-1], "val_loss": val}, "run": run}
        if score < best:
            best = score
            save_checkpoint(model, out, best_val_loss=best, **card)
        # Killed between the two saves, the resumed run redoes this epoch knowing ``out``'s best (_saved_best).
        save_checkpoint(model, last, optimizer=optimizer.state_dict(),
                        torch_rng=torch.get_rng_state(), best_val_loss=best, split=data.split(), **card)
        if on_progress:
            on_progress("epoch", epoch + 1, cfg.epochs, {"train_loss": history["train_loss"][-1],
                                                         "val_loss": val if val is not None else float("nan")})
    if not out.exists():  # resumed past the last epoch, or zero epochs asked: keep the current weights
        save_checkpoint(model, out, best_val_loss=best, epoch=start_epoch, step=step, history=history,
                        data={**data.summary(), **setup}, metrics={})
    best_model, payload = load_checkpoint(out, device)
    result = TrainResult(out, str(payload["model_id"]), cfg.epochs - start_epoch,
                         None if best == float("inf") else best, time.monotonic() - started, history)
    if plots:
        from soundalike.plots.figures import loss_curve, reconstruction

        result.plots.append(loss_curve(history, out.with_suffix(".loss.png"), title=f"{name} training"))
        shown = data.val if len(data.val) else data.train
        x = model.sample_batch(shown, np.random.default_rng(0), 3).get("x")
        with torch.no_grad():
            y = None if x is None else best_model.reconstruct(x.to(device))
        if x is not None and y is not None:
            result.plots.append(reconstruction(x.numpy(), y.cpu().numpy(), out.with_suffix(".reconstruction.png"),
                                               title=f"{name}: input vs reconstruction"))
    return result
