"""Incremental, parallel, resumable library scans: walk folders, analyse new or changed files, forget deleted ones.

Every file's outcome is committed on its own as soon as it is known, so a scan killed at any point (even
``kill -9``) resumes where it stopped: committed files are unchanged on disk and skipped; the rest is redone.
Worker processes only decode and compute, and die with the scan; the parent alone writes the catalogue, holding the
library's writer lock. A file that crashes its worker is recorded as ``crashed`` and the scan goes on; a folder
that cannot be read (an unmounted disk, a share that is down) removes nothing from the library.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import multiprocessing
import os
import signal
import stat
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from soundalike.audio import decode as audio
from soundalike.audio.analysis import (
    BLAKE2B,
    DEFAULT_PRESETS,
    DEFAULT_WINDOW,
    HASHES,
    LEGACY_WINDOW,
    Analysis,
    Window,
    analyse_file,
    file_hash,
    quiet_native_stderr,
)

from .catalog import CatalogError, FileRecord, Library

WINDOW_KEY = "analysis_window"


def library_window(lib: Library, requested: Window | None = None, *, store: bool = False) -> Window:
    """The analysis window, decoder and hash algorithm of a library: the ones it was first indexed with (libraries
    from before windows: whole tracks; from before decoders were recorded: libsndfile's; from before hash algorithms
    were: BLAKE2b), else ``requested`` or the default;
    ``store`` records it (under the writer lock). Asking an indexed library for another window is a
    :class:`CatalogError`: its tracks would be described differently."""
    row = lib.conn.execute("SELECT value FROM meta WHERE key=?", (WINDOW_KEY,)).fetchone()
    if row is not None:
        values = json.loads(row[0])
        window = Window(float(values["seconds"]), int(values["excerpts"]), values.get("decoder", audio.LIBSNDFILE),
                        values.get("hash", BLAKE2B))
    elif lib.conn.execute("SELECT 1 FROM tracks LIMIT 1").fetchone() is not None:
        window = LEGACY_WINDOW.decoded_by(audio.LIBSNDFILE).hashed_by(BLAKE2B)
    else:
        window = requested or DEFAULT_WINDOW
    if window.decoder not in audio.DECODERS or window.hashes not in HASHES:
        raise CatalogError(f"{lib.root} was indexed with decoder {window.decoder!r} and hashes {window.hashes!r}, "
                           "which this soundalike does not know: upgrade soundalike to use it")
    if requested is not None and requested != window:
        raise CatalogError(f"{lib.root} analyses {_describe(window)} of each track (set when it was first indexed); "
                           f"{_describe(requested)} would describe new tracks differently: index into a new --library")
    if store and row is None:
        lib.set_meta(WINDOW_KEY, {"seconds": window.seconds, "excerpts": window.excerpts, "decoder": window.decoder,
                                  "hash": window.hashes})
    return window


def _describe(window: Window) -> str:
    return "whole tracks (up to 10 min)" if window == LEGACY_WINDOW else f"{window.seconds:g} s"


@dataclass
class ScanProblem:
    """One file or folder that could not be used, and why."""

    path: str
    kind: str
    reason: str

    def line(self) -> str:
        """One printable line: ``path: reason``."""
        return f"{self.path}: {self.reason}"


@dataclass
class ScanSummary:
    """What a scan did."""

    found: int = 0
    analysed: int = 0
    unchanged: int = 0
    linked: int = 0
    refreshed: int = 0  # unchanged files analysed again because a newer soundalike describes them differently
    removed: int = 0
    missing_kept: int = 0  # known files not found where a folder was unreadable, gone or empty: kept
    known_bad: int = 0
    problems: list[ScanProblem] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def refreshed_text(self) -> str:
        """The summary lines' phrase for :attr:`refreshed` files (with its trailing ``", "``; empty when none)."""
        return f"{self.refreshed} re-analysed for this version's descriptors, " if self.refreshed else ""

    @property
    def errors_by_kind(self) -> dict[str, int]:
        """Number of new problems per kind (corrupt, too-short, symlink-loop...)."""
        return dict(Counter(p.kind for p in self.problems))

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary."""
        return {"found": self.found, "analysed": self.analysed, "unchanged": self.unchanged,
                "linked": self.linked, "refreshed": self.refreshed, "removed": self.removed,
                "missing_kept": self.missing_kept, "known_bad": self.known_bad,
                "errors": len(self.problems), "errors_by_kind": self.errors_by_kind,
                "seconds": round(self.seconds, 2)}


@dataclass
class Walk:
    """What a walk saw besides the files: the folders it listed (read successfully), and which were empty."""

    listed: set[bytes] = field(default_factory=set)
    empty: set[bytes] = field(default_factory=set)


def walk_audio_files(roots: Sequence[str | os.PathLike[str]], on_problem: Callable[[ScanProblem], None],
                     walk: Walk | None = None) -> Iterator[tuple[bytes, os.stat_result]]:
    """Yield ``(absolute path bytes, stat)`` of audio files under ``roots`` (files or folders), sorted per folder.

    Follows symlinks but detects loops; unreadable folders and dangling links are reported, never fatal. The
    folders listed successfully (and the empty ones) are recorded in ``walk``.
    """
    walk = walk if walk is not None else Walk()
    for root in roots:
        raw = absolute_path(root)
        try:
            st = os.stat(raw)
        except OSError as exc:
            on_problem(ScanProblem(audio.display_path(raw), "missing", f"cannot open: {exc.strerror or exc} "
                                   "(nothing under it is removed from the library)"))
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_dir(raw, on_problem, frozenset(), walk)
        elif stat.S_ISREG(st.st_mode):
            yield raw, st


def _walk_dir(folder: bytes, on_problem: Callable[[ScanProblem], None],
              ancestors: frozenset[tuple[int, int]], walk: Walk) -> Iterator[tuple[bytes, os.stat_result]]:
    try:
        st = os.stat(folder)
        key = (st.st_dev, st.st_ino)
        if key in ancestors:
            on_problem(ScanProblem(audio.display_path(folder), "symlink-loop",
                                   "symlink loop (folder contains itself), skipped"))
            return
        ancestors = ancestors | {key}
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        on_problem(ScanProblem(audio.display_path(folder), "unreadable-folder",
                               f"cannot read folder: {exc.strerror or exc} (nothing in it is removed from the "
                               "library)"))
        return
    walk.listed.add(folder)
    if not entries:
        walk.empty.add(folder)
    subdirs = []
    for entry in entries:
        path = entry.path
        try:
            st = os.stat(path)  # follows symlinks
        except OSError as exc:
            if entry.is_symlink():
                on_problem(ScanProblem(audio.display_path(path), "broken-link", "broken symlink"))
            elif audio.is_audio_path(os.fsdecode(path)):
                on_problem(ScanProblem(audio.display_path(path), "missing", f"cannot stat: {exc.strerror}"))
            continue
        if stat.S_ISDIR(st.st_mode):
            subdirs.append(path)
        elif stat.S_ISREG(st.st_mode) and audio.is_audio_path(os.fsdecode(path)):
            yield path, st
    for sub in subdirs:
        yield from _walk_dir(sub, on_problem, ancestors, walk)


@dataclass
class _Job:
    path: bytes
    size: int
    mtime_ns: int
    reanalyse: bool = False  # decode even if these bytes are known (their descriptor is from an older version)
    window: Window = DEFAULT_WINDOW  # how much of the file to analyse: the library's (:func:`library_window`)


@dataclass
class _Outcome:
    job: _Job
    fhash: str | None = None
    analysis: Analysis | None = None
    error: audio.AudioError | None = None
    linked_track: int | None = None


_worker_lib: Library | None = None
_in_worker = False


class AnalyserCrashError(audio.AudioError):
    """The file made the process analysing it die (a native decoder crash, or killed: out of memory?)."""

    kind = "crashed"


def limit_native_threads() -> None:
    """One BLAS/OpenMP thread per worker process: N workers on N cores, not N x N threads fighting."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass


def die_with_parent(parent: int) -> None:
    """Make this worker process exit when the scan that started it dies, even by ``kill -9`` (Linux: the
    kernel's parent-death signal); without it orphaned workers live on, ~300 MB each, until their queue drains."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Let this process's ``malloc`` reuse freed memory instead of returning it to the kernel (glibc only; returns
    whether it applied).

    An analysis allocates and frees the same large arrays for every file (a 120 s STFT alone is 42 MB); glibc maps
    blocks that large fresh from the kernel and unmaps them on free, so the kernel zeroes new pages for every file.
    Measured on 48 development files with ``index --jobs 2``: 3.3-7.0 s of system time without this, 2.4 s with it
    (1.3 s with the same settings as environment variables for the whole process tree), user time the same. Done
    with ``mallopt`` because no Python library exposes it (the ``MALLOC_MMAP_MAX_`` variables only work when set
    before a process starts). The heap keeps its peak size: one file's worth of arrays per worker (a worker's peak
    on a 2-hour file did not grow, docs/performance.md)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False


def init_worker_process(parent: int) -> None:
    """Set up a worker process of a scan or a spectrogram job: dies with its parent, one native thread, freed
    memory kept for the next file."""
    die_with_parent(parent)
    limit_native_threads()
    keep_freed_memory()


def _init_worker(library_root: str, parent: int) -> None:
    global _worker_lib, _in_worker
    init_worker_process(parent)
    _in_worker = True
    # Read-only view for the "already have these bytes?" check; WAL lets it read while the parent writes.
    _worker_lib = Library.open(library_root, create=False, readonly=True)


FAULT_ENV = "SOUNDALIKE_FAULT_CRASH"
"""Fault injection for the tests and the fault campaign: a worker that is about to analyse a file whose name
contains this variable's value kills itself (``SIGSEGV``, or ``SIGKILL`` with a ``kill:`` prefix), as a native
decoder crash or the out-of-memory killer would."""


def _inject_fault(path: bytes) -> None:
    wanted = os.environ.get(FAULT_ENV)
    if not wanted or not _in_worker:  # never in the scan's own process
        return
    sig = signal.SIGKILL if wanted.startswith("kill:") else signal.SIGSEGV
    if wanted.removeprefix("kill:").encode() in os.path.basename(path):
        os.kill(os.getpid(), sig)


def _process(job: _Job, presets: tuple[str, ...]) -> _Outcome:
    """:func:`process_file` in a scan worker, which checks known bytes in its read-only view of the catalogue."""
    _inject_fault(job.path)
    lib = _worker_lib
    return process_file(job, presets, lib.track_for_file_hash if lib is not None else None)


def process_file(job: _Job, presets: tuple[str, ...],
                 known_track: Callable[[str], int | None] | None = None) -> _Outcome:
    """Hash a file; if these exact bytes are known (``known_track(file hash)`` gives their track), link them, else
    decode and analyse. Never raises for a bad file: the problem is the outcome's ``error``. Used by the local
    scan's workers and by the Ray engine's actors (:mod:`soundalike.integrations.ray_engine`)."""
    shown = audio.display_path(job.path)
    try:
        fhash = file_hash(job.path, job.window.hashes)
    except FileNotFoundError:
        return _Outcome(job, error=audio.MissingFileError(shown, "file vanished during the scan (moved or deleted)"))
    except OSError as exc:
        return _Outcome(job, error=audio.DecodeError(shown, f"cannot read file: {exc.strerror or exc}"))
    if known_track is not None and not job.reanalyse:
        known = known_track(fhash)
        if known is not None:
            return _Outcome(job, fhash=fhash, linked_track=known)
    try:
        return _Outcome(job, fhash=fhash, analysis=analyse_file(job.path, presets, window=job.window))
    except audio.AudioError as exc:
        return _Outcome(job, fhash=fhash, error=exc)
    except MemoryError:
        return _Outcome(job, fhash=fhash, error=audio.DecodeError(shown, "out of memory while decoding"))
    except Exception as exc:  # noqa: BLE001 - one broken file must never stop a library scan
        return _Outcome(job, fhash=fhash, error=audio.DecodeError(shown, f"unexpected error: {exc!r}"))


ProgressHook = Callable[[str, int, int], None]

ScanJob = _Job
"""One file a scan must analyse: ``path`` (bytes), ``size``, ``mtime_ns``, ``reanalyse``."""
ScanOutcome = _Outcome
"""What analysing one :data:`ScanJob` gave: ``fhash`` and ``analysis``, ``linked_track``, or ``error``."""
Commit = Callable[[_Outcome], int | None]
"""Records one outcome in the catalogue (the scan's own writer code); returns the file's track id, if any."""
Runner = Callable[[Library, list[_Job], tuple[str, ...], Commit], None]
"""Analyses a scan's files elsewhere (e.g. on a Ray cluster), calling ``commit`` in this process for each outcome."""


class WorkerStartError(RuntimeError):
    """Worker processes cannot start at all: a problem of the installation or the machine, not of a file."""


def _isolated_main(conn: Connection, library_root: str, parent: int, job: _Job, presets: tuple[str, ...]) -> None:
    _init_worker(library_root, parent)
    conn.send("ready")  # what dies after this is the file's doing
    conn.send(_process(job, presets))
    conn.close()


def _crash_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        why = " (out of memory?)" if -exitcode == signal.SIGKILL else " (a native decoder crash)"
        return f"the analysing process died of {name}{why}; skipped (soundalike index --retry-errors tries again)"
    return f"the analysing process exited with code {exitcode}; skipped"


def run_isolated(lib: Library, job: _Job, presets: tuple[str, ...]) -> _Outcome:
    """Analyse one file in a process of its own: a crash there is this file's error, not the scan's. Raises
    :class:`WorkerStartError` when the process cannot even start (then no file is to blame)."""
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_isolated_main, args=(send, str(lib.root), os.getpid(), job, presets), daemon=True)
    proc.start()
    send.close()
    try:
        try:
            receive.recv()
        except EOFError:
            proc.join()
            raise WorkerStartError(f"cannot start a worker process (exit code {proc.exitcode}); nothing was "
                                   "recorded against any file") from None
        try:
            outcome: _Outcome = receive.recv()
        except EOFError:
            proc.join()
            return _Outcome(job, error=AnalyserCrashError(audio.display_path(job.path), _crash_reason(proc.exitcode)))
    finally:
        receive.close()
    proc.join()
    return outcome


def scan(lib: Library, roots: Sequence[str | os.PathLike[str]], *, jobs: int = 1, isolate: bool = True,
         presets: Iterable[str] = DEFAULT_PRESETS, on_problem: Callable[[ScanProblem], None] | None = None,
         on_progress: ProgressHook | None = None, retry_errors: bool = False,
         on_wait: Callable[[str], None] | None = None, runner: Runner | None = None,
         window: Window | None = None) -> ScanSummary:
    """Bring the catalogue up to date with the files under ``roots``; returns a :class:`ScanSummary`.

    ``on_progress(stage, done, total)`` is called as files complete; ``on_problem`` for each new problem.
    Files are analysed in ``jobs`` worker processes (with ``isolate=False`` and one job: in this process, which a
    crashing decoder would take down): a file that kills its worker is recorded as ``crashed`` and the scan goes
    on. The library's writer lock is held throughout (``on_wait`` hears once if another writer holds it).
    A ``runner`` analyses the files to do elsewhere instead (the Ray engine); everything else is the same.
    ``window`` is how much of each track to analyse, for a library's first scan (:func:`library_window`).

    Files the catalogue knows under ``roots`` that are gone leave the index only when the folder that held them
    was read in this scan and is not empty (an unmounted disk or share removes nothing);
    :mod:`soundalike.library.prune` removes the rest, on request.
    """
    with lib.writing(on_wait=on_wait):
        chosen = library_window(lib, window, store=True)
        return _scan(lib, roots, jobs=jobs, isolate=isolate, presets=tuple(presets), on_problem=on_problem,
                     on_progress=on_progress, retry_errors=retry_errors, runner=runner, window=chosen)


def _scan(lib: Library, roots: Sequence[str | os.PathLike[str]], *, jobs: int, isolate: bool,
          presets: tuple[str, ...], on_problem: Callable[[ScanProblem], None] | None,
          on_progress: ProgressHook | None, retry_errors: bool, runner: Runner | None = None,
          window: Window = DEFAULT_WINDOW) -> ScanSummary:
    started = time.monotonic()
    summary = ScanSummary()

    def problem(p: ScanProblem) -> None:
        summary.problems.append(p)
        if on_problem:
            on_problem(p)

    known = lib.file_records()
    stale = lib.stale_descriptors()  # analysed by an older descriptor: analysed again, though unchanged
    seen: set[bytes] = set()
    todo: list[_Job] = []
    walk = Walk()
    for path, st in walk_audio_files(roots, problem, walk):
        if path in seen:
            continue
        seen.add(path)
        summary.found += 1
        rec = known.get(path)
        if rec is not None and rec.size == st.st_size and rec.mtime_ns == st.st_mtime_ns:
            if rec.status == "ok" and rec.track_id in stale:
                todo.append(_Job(path, st.st_size, st.st_mtime_ns, reanalyse=True, window=window))
                stale.discard(rec.track_id)  # one of its files is enough
                continue
            if rec.status == "ok":
                summary.unchanged += 1
                continue
            if not retry_errors:
                summary.known_bad += 1
                continue
        todo.append(_Job(path, st.st_size, st.st_mtime_ns, window=window))

    lib.add_roots(audio.display_path(absolute_path(r)) for r in roots if absolute_path(r) in walk.listed)
    total = len(todo)
    done = 0
    if on_progress:
        on_progress("analyse", 0, total)

    def commit(out: _Outcome) -> int | None:
        nonlocal done
        job = out.job
        track_id: int | None = None
        if out.error is not None:
            problem(ScanProblem(out.error.path, out.error.kind, out.error.reason))
            if isinstance(out.error, audio.MissingFileError):  # gone: nothing to remember about it
                lib.remove_files([job.path])
            else:
                lib.record_error(job.path, job.size, job.mtime_ns, out.error.kind, out.error.reason)
        elif out.linked_track is not None and out.fhash is not None:
            lib.link_file(job.path, job.size, job.mtime_ns, out.fhash, out.linked_track)
            track_id = out.linked_track
            summary.linked += 1
        elif out.analysis is not None and out.fhash is not None:
            track_id, is_new = lib.add_analysis(job.path, job.size, job.mtime_ns, out.fhash, out.analysis)
            if is_new:
                summary.analysed += 1
            elif job.reanalyse:
                summary.refreshed += 1
            else:
                summary.linked += 1
        done += 1
        if on_progress:
            on_progress("analyse", done, total)
        return track_id

    if runner is not None:
        if todo:
            runner(lib, todo, presets, commit)
    elif not isolate and jobs <= 1:
        global _worker_lib
        _worker_lib = lib
        try:
            for job in todo:
                commit(_process(job, presets))
        finally:
            _worker_lib = None
    elif todo:
        _run_pool(lib, todo, presets, max(jobs, 1), commit)
    summary.removed, summary.missing_kept = _forget_gone(lib, roots, known, seen, walk)
    summary.seconds = time.monotonic() - started
    return summary


def _run_pool(lib: Library, todo: list[_Job], presets: tuple[str, ...], jobs: int,
              commit: Callable[[_Outcome], object]) -> None:
    """Analyse ``todo`` in worker processes, committing each outcome in this process as it arrives. When a worker
    dies, the files it may have been holding are analysed again one by one, each in a process of its own, so the
    culprit is recorded as ``crashed`` and the rest as usual; then a fresh pool goes on."""
    # "spawn", not fork: the parent holds an open SQLite connection, which must not be shared with children.
    ctx = multiprocessing.get_context("spawn")

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                                   initargs=(str(lib.root), os.getpid()))

    queue: Iterator[_Job] = iter(todo)
    pool = new_pool()
    pending: dict[Future[_Outcome], _Job] = {}
    try:
        while True:
            # Keep a bounded number of files in flight so memory stays flat on huge libraries.
            unsent = _submit(pool, _take(queue, jobs * 2 - len(pending)), presets, pending)
            if unsent:  # a worker died after the last wait: these files never ran, they go first to the next pool
                queue = itertools.chain(unsent, queue)
            if not pending and not unsent:
                return
            suspects: list[_Job] = []
            if pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    job = pending.pop(fut)
                    try:
                        outcome = fut.result()
                    except BrokenProcessPool:
                        suspects.append(job)
                        continue
                    commit(outcome)
            if suspects or unsent:
                suspects += list(pending.values())
                pending.clear()
                pool.shutdown(wait=True, cancel_futures=True)
                for job in sorted(suspects, key=lambda j: j.path):
                    commit(run_isolated(lib, job, presets))
                pool = new_pool()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _forget_gone(lib: Library, roots: Sequence[str | os.PathLike[str]], known: dict[bytes, FileRecord],
                 seen: set[bytes], walk: Walk) -> tuple[int, int]:
    """Remove the known files under ``roots`` that this scan did not find, when safe; ``(removed, kept)``.

    Runs after the new files were linked, so a moved or renamed file keeps its track instead of being analysed
    again. Safe means: the file's folder was read in this scan and is not empty. A folder that could not be read,
    is gone, or is empty while the library knows files in it (the mount point of an unmounted disk) removes
    nothing."""
    prefixes = [absolute_path(r) for r in roots]
    gone = [p for p in known if p not in seen and any(is_under(p, pre) for pre in prefixes)]
    safe = [p for p in gone if (folder := os.path.dirname(p)) in walk.listed and folder not in walk.empty]
    return lib.remove_files(safe), len(gone) - len(safe)


def _submit(pool: ProcessPoolExecutor, jobs: list[_Job], presets: tuple[str, ...],
            pending: dict[Future[_Outcome], _Job]) -> list[_Job]:
    """Submit ``jobs`` to ``pool`` (each into ``pending``); the ones it refused because it is broken — a worker died
    since the caller last waited on it — are returned, in order, to be run by a fresh pool."""
    for i, job in enumerate(jobs):
        try:
            pending[pool.submit(_process, job, presets)] = job
        except BrokenProcessPool:
            return jobs[i:]
    return []


def _take(it: Iterator[_Job], n: int) -> list[_Job]:
    out = []
    for _ in range(n):
        try:
            out.append(next(it))
        except StopIteration:
            break
    return out


def absolute_path(root: str | os.PathLike[str]) -> bytes:
    """A root as the catalogue stores paths: absolute, ``~`` expanded, bytes."""
    return os.path.abspath(os.path.expanduser(os.fsencode(root)))


def is_under(path: bytes, prefix: bytes) -> bool:
    """Whether ``path`` is ``prefix`` or inside it."""
    return path == prefix or path.startswith(prefix.rstrip(b"/") + b"/")


def _preset_spectrogram(path: bytes, preset: str, window: Window) -> tuple[bytes, object]:
    """Decode (the ``window`` of) one file and compute one preset's spectrogram (runs in a worker); errors are
    returned, not raised."""
    from soundalike.audio.analysis import ANALYSIS_SR, patch_log_mel
    from soundalike.audio.features import log_mel, split_key

    try:
        base, patches = split_key(preset)
        with quiet_native_stderr():  # a key of a few patches is cut from the analysis rate, as a scan does
            y = audio.load_excerpts(os.fsdecode(path), ANALYSIS_SR if patches else base.sr,
                                    max_duration=window.seconds, excerpts=window.excerpts, decoder=window.decoder)
        spec = patch_log_mel(y, ANALYSIS_SR, preset) if patches else log_mel(y, base)
        return path, spec.astype("float16")
    except audio.AudioError as exc:
        return path, exc


def ensure_spectrograms(lib: Library, preset: str, *, jobs: int = 1,
                        on_progress: Callable[[str, int, int], None] | None = None,
                        present: Sequence[str] = ()) -> int:
    """Compute and store ``preset`` spectrograms (a preset or a key such as ``musicnn-p4``) for tracks that have
    neither it nor any of ``present`` (decoding each once); returns how many.

    Scans store the ``melae`` preset; models on other presets (stollery, dieleman) call this before training.
    """
    keys = sorted({preset, *present})
    with lib.writing():
        rows = lib.conn.execute(
            "SELECT t.id, MIN(f.path) FROM tracks t JOIN files f ON f.track_id = t.id AND f.status='ok' "
            f"WHERE t.id NOT IN (SELECT track_id FROM spectrograms WHERE preset IN ({','.join('?' * len(keys))})) "
            "GROUP BY t.id", keys
        ).fetchall()
        if not rows:
            return 0
        track_of = {bytes(r[1]): int(r[0]) for r in rows}
        done = 0
        if on_progress:
            on_progress(f"spectrograms {preset}", 0, len(rows))
        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=init_worker_process,
                                   initargs=(os.getpid(),)) if jobs > 1 else None
        try:
            window = library_window(lib)
            results = pool.map(_preset_spectrogram, track_of, [preset] * len(track_of),
                               [window] * len(track_of)) if pool else \
                (_preset_spectrogram(p, preset, window) for p in track_of)
            for path, spec in results:
                if not isinstance(spec, audio.AudioError):
                    lib.add_spectrogram(track_of[path], preset, spec)  # type: ignore[arg-type]
                done += 1
                if on_progress:
                    on_progress(f"spectrograms {preset}", done, len(rows))
        finally:
            if pool:
                pool.shutdown()
    return len(rows)
