"""Analysis on a Ray cluster (``soundalike index --engine ray``; the optional extra ``soundalike[ray]``).

The driver (this process) plans the scan exactly as the local scan does (:func:`soundalike.library.scan.scan` with a
``runner``): it lists the files and decides which to analyse. Ray Data maps batches of those files through a pool of
actors that keep the embedding model loaded; each actor runs the local scan's own per-file function
(:func:`~soundalike.library.scan.process_file`: hash, decode, tags, spectrograms, descriptors), embeds the new
tracks, and writes one Parquet shard per batch into a shared directory (local disk, NFS, or any pyarrow filesystem
URI). The driver alone merges each shard into the catalogue as it lands, through the local scan's writer code
(``commit``: the same SQLite transactions and feature-store appends), so a track is added once per content hash.

A killed job leaves its unmerged shards behind: the next run merges those instead of analysing their files again,
and everything already in the catalogue is skipped as by any resumed scan. Ray's actor restarts and task retries
cover lost workers and nodes; files that Ray could not finish at all (a batch that kept killing its worker) are
analysed here, one by one in a process of their own, as the local scan does with a file that crashes its worker.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from soundalike.audio import decode as audio
from soundalike.audio.analysis import Analysis, Tags, Window
from soundalike.audio.descriptors import DESCRIPTOR_VERSION
from soundalike.library.scan import (
    FAULT_ENV,
    Commit,
    ScanJob,
    ScanOutcome,
    _inject_fault,
    limit_native_threads,
    process_file,
    run_isolated,
)

Embedded = tuple[str, np.ndarray, np.ndarray]
"""One model's embedding of a track: ``(model_id, pooled vector, segment embeddings)``."""

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

    from soundalike.library.catalog import Library

INSTALL_HINT = "--engine ray needs Ray, which is not installed: pip install 'soundalike[ray]'"
SHARD_VERSION = 1
"""Bumped when the shard layout changes: shards of another version are never merged (their keys differ)."""
DEFAULT_BATCH = 4
"""Files per Ray task (and per shard): small enough to spread a few hundred files over many workers, large enough
that per-task overhead (~10 ms) is noise beside ~0.5 s of analysis per file."""
SHARD_SUFFIX = ".parquet"
MAX_TASK_RETRIES = 4
"""How often Ray runs a batch again after its worker died (a lost node, or a file that crashes the decoder)."""


class RayEngineError(RuntimeError):
    """The Ray engine cannot run at all (Ray missing, cluster unreachable, shared directory unusable): one line."""


def require_ray() -> None:
    """Raise :class:`RayEngineError` with the install command when Ray (with Ray Data) is not installed."""
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        raise RayEngineError(INSTALL_HINT) from None


@dataclass
class RaySettings:
    """Where and how to run: ``address`` (None: ``$RAY_ADDRESS`` or a Ray started on this machine; ``auto``; or
    ``HOST:PORT``), the shared ``shared_dir`` (path or pyarrow URI), ``workers`` (actors; 0 = one per cluster CPU),
    files per ``batch``, the ``checkpoints`` to embed with (none: descriptors only)."""

    shared_dir: str
    address: str | None = None
    workers: int = 0
    batch: int = DEFAULT_BATCH
    checkpoints: Sequence[str | os.PathLike[str]] = ()
    on_note: Callable[[str], None] | None = None
    on_shard: Callable[[str], None] | None = None  # called after each shard is merged (tests, benchmarks)


# --- shards -------------------------------------------------------------------------------------------------------
def _schema() -> pa.Schema:
    import pyarrow as pa

    spectrogram = pa.struct([("preset", pa.string()), ("shape", pa.list_(pa.int32())), ("data", pa.binary())])
    embedding = pa.struct([("model_id", pa.string()), ("vector", pa.binary()), ("segments", pa.binary()),
                           ("segments_shape", pa.list_(pa.int32()))])
    return pa.schema([
        ("key", pa.string()), ("path", pa.binary()), ("size", pa.int64()), ("mtime_ns", pa.int64()),
        ("reanalyse", pa.bool_()), ("file_hash", pa.string()), ("linked", pa.bool_()),
        ("error_kind", pa.string()), ("error_path", pa.string()), ("error_reason", pa.string()),
        ("audio_hash", pa.string()), ("duration", pa.float64()), ("analysed_seconds", pa.float64()),
        ("artist", pa.string()), ("album", pa.string()), ("title", pa.string()),
        ("descriptor", pa.binary()), ("spectrograms", pa.list_(spectrogram)),
        ("embeddings", pa.list_(embedding)), ("cpu_seconds", pa.float64()),
    ])


def job_key(job: ScanJob, presets: Sequence[str], model_ids: Sequence[str] = ()) -> str:
    """What identifies one file's analysis in a shard: its path, size, mtime and what is computed from it."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{SHARD_VERSION}|{DESCRIPTOR_VERSION}|{','.join(presets)}|{','.join(model_ids)}|{job.reanalyse}|"
             f"{job.size}|{job.mtime_ns}|{job.window.seconds}|{job.window.excerpts}|{job.window.decoder}|"
             f"{job.window.hashes}|".encode())
    h.update(job.path)
    return h.hexdigest()


def shard_row(key: str, out: ScanOutcome, embedded: Sequence[Embedded] = (), cpu_seconds: float = 0.0
              ) -> dict[str, Any]:
    """One file's outcome (and its embeddings, and the CPU seconds they took) as a shard row;
    :func:`outcome_from_row` reads it back."""
    job, a, err = out.job, out.analysis, out.error
    row: dict[str, Any] = {
        "key": key, "path": job.path, "size": job.size, "mtime_ns": job.mtime_ns, "reanalyse": job.reanalyse,
        "file_hash": out.fhash, "linked": out.linked_track is not None,
        "error_kind": err.kind if err else None, "error_path": err.path if err else None,
        "error_reason": err.reason if err else None,
        "spectrograms": [], "cpu_seconds": cpu_seconds,
        "embeddings": [{"model_id": model_id, "vector": np.asarray(pooled, "<f4").tobytes(),
                        "segments": np.ascontiguousarray(seq, "<f4").tobytes(), "segments_shape": list(seq.shape)}
                       for model_id, pooled, seq in embedded],
    }
    if a is not None:
        row.update(audio_hash=a.audio_hash, duration=a.duration, analysed_seconds=a.analysed_seconds,
                   artist=a.tags.artist, album=a.tags.album, title=a.tags.title,
                   descriptor=None if a.descriptor is None else np.asarray(a.descriptor, "<f4").tobytes(),
                   spectrograms=[{"preset": name, "shape": list(spec.shape),
                                  "data": np.ascontiguousarray(spec, "<f2").tobytes()}
                                 for name, spec in a.spectrograms.items()])
    return row


def _error(kind: str, path: str, reason: str) -> audio.AudioError:
    if kind == audio.MissingFileError.kind:
        return audio.MissingFileError(path, reason)
    error = audio.AudioError(path, reason)
    error.kind = kind
    return error


def outcome_from_row(row: dict[str, Any]) -> tuple[ScanOutcome, list[Embedded]]:
    """A shard row back as the scan's outcome, plus its ``(model_id, pooled, segments)`` embeddings. A linked
    file's ``linked_track`` is -1: the merger finds the track by its file hash."""
    job = ScanJob(bytes(row["path"]), int(row["size"]), int(row["mtime_ns"]), bool(row["reanalyse"]))
    if row["error_kind"] is not None:
        return ScanOutcome(job, fhash=row["file_hash"],
                           error=_error(row["error_kind"], row["error_path"], row["error_reason"])), []
    if row["linked"]:
        return ScanOutcome(job, fhash=row["file_hash"], linked_track=-1), []
    specs = {s["preset"]: np.frombuffer(s["data"], "<f2").reshape(s["shape"]).copy() for s in row["spectrograms"]}
    descriptor = None if row["descriptor"] is None else np.frombuffer(row["descriptor"], "<f4").copy()
    analysis = Analysis(audio_hash=row["audio_hash"], duration=float(row["duration"]),
                        analysed_seconds=float(row["analysed_seconds"]),
                        tags=Tags(row["artist"] or "", row["album"] or "", row["title"] or ""),
                        spectrograms=specs, descriptor=descriptor)
    vectors = [(str(e["model_id"]), np.frombuffer(e["vector"], "<f4").copy(),
                np.frombuffer(e["segments"], "<f4").reshape(e["segments_shape"]).copy())
               for e in row["embeddings"] or []]
    return ScanOutcome(job, fhash=row["file_hash"], analysis=analysis), vectors


def filesystem(shared_dir: str) -> tuple[pafs.FileSystem, str]:
    """``(pyarrow filesystem, path in it)`` of a shared directory: a local or NFS path, or a URI (``s3://``...)."""
    import pyarrow.fs as pafs

    uri = shared_dir if "://" in shared_dir else os.path.abspath(os.path.expanduser(shared_dir))
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
    except (ValueError, OSError) as exc:
        raise RayEngineError(f"cannot use the shared directory {shared_dir}: {exc}") from None
    return fs, path.rstrip("/")


def shard_folder(shared_dir: str, lib: Library) -> str:
    """This library's shard folder inside ``shared_dir`` (one per library: several may share a directory), as an
    absolute path or a URI that the actors open with :func:`filesystem` wherever they run."""
    base = shared_dir if "://" in shared_dir else os.path.abspath(os.path.expanduser(shared_dir))
    tag = hashlib.blake2b(os.fsencode(os.path.realpath(lib.root)), digest_size=6).hexdigest()
    return f"{base.rstrip('/')}/soundalike-shards-{tag}"


def write_shard(fs: pafs.FileSystem, folder: str, name: str, rows: list[dict[str, Any]]) -> str:
    """Write ``rows`` as ``folder/name.parquet`` (whole or not at all: a temporary name, then a rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    final = f"{folder}/{name}{SHARD_SUFFIX}"
    tmp = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
    pq.write_table(pa.Table.from_pylist(rows, schema=_schema()), tmp, filesystem=fs, compression="zstd")
    fs.move(tmp, final)
    return final


def list_shards(fs: pafs.FileSystem, folder: str) -> list[str]:
    """The complete shards in ``folder``, sorted by name (partial writes are hidden under temporary names)."""
    import pyarrow.fs as pafs

    infos = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    return sorted(i.path for i in infos if i.type == pafs.FileType.File and i.base_name.endswith(SHARD_SUFFIX)
                  and not i.base_name.startswith("."))


def read_shard(fs: pafs.FileSystem, path: str) -> list[dict[str, Any]]:
    """The rows of one shard."""
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = pq.read_table(path, filesystem=fs).to_pylist()
    return rows


# --- the actors ---------------------------------------------------------------------------------------------------
class Analyser:
    """A Ray Data actor: keeps the model loaded and turns batches of files into shards (one per batch)."""

    def __init__(self, folder: str, presets: tuple[str, ...], checkpoints: Sequence[bytes],
                 known_hashes: frozenset[str]) -> None:
        # An actor is a scan worker: the scan's fault-injection hook applies here too (the package's ``scan`` name
        # is the function, hence the module by its full name).
        importlib.import_module("soundalike.library.scan")._in_worker = True  # type: ignore[attr-defined]
        limit_native_threads()
        self.fs, self.folder = filesystem(folder)
        self.fs.create_dir(self.folder, recursive=True)  # the driver made it, but maybe not where this node looks
        self.presets = presets
        self.known = known_hashes
        self.models: list[tuple[str, Any]] = []  # (model id, model), loaded once per actor
        if checkpoints:
            import torch

            from soundalike.models import load_checkpoint

            torch.set_num_threads(1)
        for checkpoint in checkpoints:
            with tempfile.NamedTemporaryFile(suffix=".pt") as f:
                f.write(checkpoint)
                f.flush()
                model, payload = load_checkpoint(f.name, "cpu")
            self.models.append((str(payload["model_id"]), model))

    def _known(self, fhash: str) -> int | None:
        return -1 if fhash in self.known else None

    def __call__(self, batch: pa.Table) -> dict[str, list[Any]]:
        """Analyse one batch of files (columns key, path, size, mtime_ns, reanalyse and the library's window:
        window_seconds, window_excerpts, window_decoder, window_hashes) and write its shard."""
        items = batch.to_pylist()
        outcomes, cpu = [], []
        for r in items:
            started = time.process_time()
            window = Window(float(r["window_seconds"]), int(r["window_excerpts"]), str(r["window_decoder"]),
                            str(r["window_hashes"]))
            job = ScanJob(bytes(r["path"]), int(r["size"]), int(r["mtime_ns"]), bool(r["reanalyse"]), window)
            _inject_fault(job.path)  # tests and the fault campaign only (FAULT_ENV), as in a local worker
            outcomes.append(process_file(job, self.presets, self._known))
            cpu.append(time.process_time() - started)
        started = time.process_time()
        vectors = self._embed(outcomes)
        share = (time.process_time() - started) / max(1, sum(bool(v) for v in vectors))
        rows = [shard_row(r["key"], out, vec, c + (share if vec else 0.0))
                for r, out, vec, c in zip(items, outcomes, vectors, cpu, strict=True)]
        name = hashlib.blake2b("".join(r["key"] for r in items).encode(), digest_size=12).hexdigest()
        write_shard(self.fs, self.folder, name, rows)
        return {"shard": [f"{self.folder}/{name}{SHARD_SUFFIX}"], "files": [len(rows)]}

    def _embed(self, outcomes: list[ScanOutcome]) -> list[list[Embedded]]:
        """Each model's ``(model_id, pooled, segments)`` of each analysed file, batched per model as
        ``embed_library`` does (left out where a model cannot take a file: the driver's ``embed_library`` then does
        what the local scan would)."""
        found: list[list[Embedded]] = [[] for _ in outcomes]
        for model_id, model in self.models:
            inputs, where = [], []
            for i, out in enumerate(outcomes):
                if out.analysis is not None:
                    try:
                        inputs.append(model.query_input(out.analysis))
                        where.append(i)
                    except Exception:  # noqa: BLE001 - a model that cannot take this file: embedded later, or not
                        continue
            if not inputs:
                continue
            try:
                for i, (pooled, seq) in zip(where, model.embed_tracks(inputs, "cpu"), strict=True):
                    found[i].append((model_id, pooled, seq))
            except Exception:  # noqa: BLE001 - the driver's embedding pass handles these tracks as locally
                continue
        return found


# --- the driver ---------------------------------------------------------------------------------------------------
def connect(address: str | None, workers: int = 0) -> bool:
    """Join the Ray cluster at ``address`` (or start Ray here when None and no ``$RAY_ADDRESS``); True when this
    call connected (so the caller disconnects), False when Ray was already initialised in this process."""
    require_ray()
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    check_reachable(address or os.environ.get("RAY_ADDRESS") or "")
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    try:
        if address is None and not os.environ.get("RAY_ADDRESS"):
            ray.init(num_cpus=workers or None, include_dashboard=False, **quiet)  # type: ignore[arg-type]
        else:
            ray.init(address=address, **quiet)  # type: ignore[arg-type]
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        where = address or os.environ.get("RAY_ADDRESS") or "this machine"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RayEngineError(f"cannot reach the Ray cluster at {where}: {first}") from None
    return True


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail in one line when ``HOST:PORT`` (or ``ray://HOST:PORT``) does not answer: ``ray.init`` would wait on
    an unreachable address for minutes. Other forms (``auto``, empty) are left to Ray."""
    import socket

    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not port.isdigit() or not host:
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise RayEngineError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


class RayRunner:
    """A :data:`~soundalike.library.scan.Runner` that analyses a scan's files on Ray and merges the shards."""

    def __init__(self, settings: RaySettings) -> None:
        require_ray()
        self.settings = settings
        self.merged_shards = 0
        self.reused_shards = 0
        self.local_files = 0
        self.cpu_seconds = 0.0  # the actors' CPU time for the files merged (analysis and embedding)
        self.shard_bytes = 0  # the size of the shards merged

    def _note(self, text: str) -> None:
        if self.settings.on_note:
            self.settings.on_note(text)

    def check_shared_dir(self, lib: Library) -> tuple[str, pafs.FileSystem, str]:
        """Fail in one line, before starting anything, when the shared directory cannot hold shards; returns
        ``(URI, filesystem, path)`` of this library's shard folder."""
        uri = shard_folder(self.settings.shared_dir, lib)
        fs, folder = filesystem(uri)
        probe = f"{folder}/.probe-{uuid.uuid4().hex}"
        try:
            fs.create_dir(folder, recursive=True)
            with fs.open_output_stream(probe) as f:
                f.write(b"ok")
            fs.delete_file(probe)
        except OSError as exc:
            raise RayEngineError(f"cannot write to the shared directory {self.settings.shared_dir}: "
                                 f"{str(exc).splitlines()[0]}") from None
        return uri, fs, folder

    def __call__(self, lib: Library, todo: list[ScanJob], presets: tuple[str, ...], commit: Commit) -> None:
        """Analyse ``todo`` on the cluster; merge each shard with ``commit`` as it lands; clean up the shards."""
        model_ids, checkpoints = self._models(lib)
        uri, fs, folder = self.check_shared_dir(lib)
        pending = {job_key(job, presets, model_ids): job for job in todo}

        def merge(shard: str) -> None:
            self.shard_bytes += int(fs.get_file_info(shard).size or 0)
            for row in read_shard(fs, shard):
                job = pending.pop(row["key"], None)
                if job is None:  # merged already (a retried task's shard), or from another plan
                    continue
                self.cpu_seconds += float(row.get("cpu_seconds") or 0.0)
                out, vectors = outcome_from_row(row)
                if out.linked_track is not None:
                    out.linked_track = lib.track_for_file_hash(out.fhash or "")
                    if out.linked_track is None:  # the track left meanwhile: analyse the file again, here
                        out = run_isolated(lib, job, presets)
                track_id = commit(out)
                if track_id is not None:
                    for vector in vectors:
                        self._put_vector(lib, track_id, *vector)
            if self.settings.on_shard:
                self.settings.on_shard(shard)

        before = len(pending)
        for shard in list_shards(fs, folder):  # left by a killed job: merged, not analysed again
            merge(shard)
            self.reused_shards += 1
        if len(pending) < before:
            self._note(f"merged {before - len(pending)} files from the shards of an interrupted run")
        if pending:
            self._run_on_ray(lib, list(pending.items()), uri, presets, checkpoints, merge)
        if pending:  # what Ray could not finish: one by one, each in a process of its own, as the local scan does
            self._note(f"{len(pending)} files were not finished on the cluster; analysing them here one by one")
            for key in sorted(pending, key=lambda k: pending[k].path):
                self.local_files += 1
                commit(run_isolated(lib, pending.pop(key), presets))
        for shard in list_shards(fs, folder):  # everything is in the catalogue now
            fs.delete_file(shard)

    def _models(self, lib: Library) -> tuple[list[str], list[bytes]]:
        """The checkpoints' model ids (registered in the catalogue now) and their bytes, shipped to the actors."""
        from soundalike.models.checkpoint import read_checkpoint
        from soundalike.models.embedding import register_model

        ids, blobs = [], []
        for checkpoint in self.settings.checkpoints:
            payload = read_checkpoint(checkpoint)
            ids.append(register_model(lib, payload, checkpoint))
            with open(checkpoint, "rb") as f:
                blobs.append(f.read())
        return ids, blobs

    @staticmethod
    def _put_vector(lib: Library, track_id: int, model_id: str, pooled: np.ndarray, segments: np.ndarray) -> None:
        """Store the actor's embedding unless the track has one for this model (as ``embed_library`` decides)."""
        have = lib.conn.execute("SELECT 1 FROM vectors WHERE track_id=? AND model=?", (track_id, model_id)).fetchone()
        if have is None:
            with lib.transaction():
                lib.put_vector(track_id, model_id, pooled, segments)

    def _run_on_ray(self, lib: Library, items: list[tuple[str, ScanJob]], uri: str, presets: tuple[str, ...],
                    checkpoints: list[bytes], merge: Callable[[str], None]) -> None:
        import ray
        import ray.data

        connected = connect(self.settings.address, self.settings.workers)
        try:
            cpus = int(ray.cluster_resources().get("CPU", 1))
            workers = max(1, min(self.settings.workers or cpus, cpus))
            self._note(f"ray: {len(items)} files on {workers} workers ({cpus} CPUs in the cluster), shards in "
                       f"{uri}")
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = False
            ctx.print_on_execution_start = False
            ctx.max_errored_blocks = -1  # a batch that keeps failing: its files are analysed here afterwards
            # An errored batch is no error of the job: its files are analysed here afterwards (and said so).
            logging.getLogger("ray.data").setLevel(logging.CRITICAL)
            known = frozenset(str(r[0]) for r in lib.conn.execute(
                "SELECT DISTINCT file_hash FROM files WHERE status='ok' AND track_id IS NOT NULL "
                "AND file_hash IS NOT NULL"))
            batch = max(1, self.settings.batch)
            records = [{"key": key, "path": job.path, "size": job.size, "mtime_ns": job.mtime_ns,
                        "reanalyse": job.reanalyse, "window_seconds": job.window.seconds,
                        "window_excerpts": job.window.excerpts, "window_decoder": job.window.decoder,
                        "window_hashes": job.window.hashes}
                       for key, job in items]  # the library's window: the actors analyse as a local scan would
            ds = ray.data.from_items(records, override_num_blocks=max(1, -(-len(records) // batch)))
            with warnings.catch_warnings():
                # Ray Data deprecates its remote arguments for 2.64 (the extra pins below it) with no other way to
                # bound retries yet: finite retries are what turn a file that kills every worker into a leftover.
                warnings.simplefilter("ignore", DeprecationWarning)
                mapped = ds.map_batches(
                    Analyser, batch_size=batch, batch_format="pyarrow", num_cpus=1,
                    compute=ray.data.ActorPoolStrategy(min_size=1, max_size=workers, initial_size=workers),
                    fn_constructor_kwargs={"folder": uri, "presets": presets, "checkpoints": checkpoints,
                                           "known_hashes": known},
                    runtime_env={"env_vars": {FAULT_ENV: os.environ[FAULT_ENV]}} if FAULT_ENV in os.environ else None,
                    max_restarts=-1, max_task_retries=MAX_TASK_RETRIES)
            for row in mapped.iter_rows():
                merge(str(row["shard"]))
                self.merged_shards += 1
        finally:
            if connected:
                ray.shutdown()
