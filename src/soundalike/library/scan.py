"""Incremental, parallel, resumable library scans: walk folders, analyse new or changed files, forget deleted ones.

Every file's outcome is committed on its own as soon as it is known, so a scan killed at any point (even
``kill -9``) resumes where it stopped: committed files are unchanged on disk and skipped; the rest is redone.
Worker processes only decode and compute; the parent alone writes the catalogue.
"""

from __future__ import annotations

import multiprocessing
import os
import stat
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

from soundalike.audio import decode as audio
from soundalike.audio.analysis import (
    ANALYSIS_SR,
    DEFAULT_PRESETS,
    MAX_ANALYSED_SECONDS,
    Analysis,
    analyse_file,
    file_hash,
    quiet_native_stderr,
)

from .catalog import Library


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
    removed: int = 0
    known_bad: int = 0
    problems: list[ScanProblem] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def errors_by_kind(self) -> dict[str, int]:
        """Number of new problems per kind (corrupt, too-short, symlink-loop...)."""
        return dict(Counter(p.kind for p in self.problems))

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary."""
        return {"found": self.found, "analysed": self.analysed, "unchanged": self.unchanged,
                "linked": self.linked, "removed": self.removed, "known_bad": self.known_bad,
                "errors": len(self.problems), "errors_by_kind": self.errors_by_kind,
                "seconds": round(self.seconds, 2)}


def walk_audio_files(roots: Sequence[str | os.PathLike[str]],
                     on_problem: Callable[[ScanProblem], None]) -> Iterator[tuple[bytes, os.stat_result]]:
    """Yield ``(absolute path bytes, stat)`` of audio files under ``roots`` (files or folders), sorted per folder.

    Follows symlinks but detects loops; unreadable folders and dangling links are reported, never fatal.
    """
    for root in roots:
        raw = _absolute(root)
        try:
            st = os.stat(raw)
        except OSError as exc:
            on_problem(ScanProblem(audio.display_path(raw), "missing", f"cannot open: {exc.strerror or exc}"))
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_dir(raw, on_problem, frozenset())
        elif stat.S_ISREG(st.st_mode):
            yield raw, st


def _walk_dir(folder: bytes, on_problem: Callable[[ScanProblem], None],
              ancestors: frozenset[tuple[int, int]]) -> Iterator[tuple[bytes, os.stat_result]]:
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
                               f"cannot read folder: {exc.strerror or exc}"))
        return
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
        yield from _walk_dir(sub, on_problem, ancestors)


@dataclass
class _Job:
    path: bytes
    size: int
    mtime_ns: int


@dataclass
class _Outcome:
    job: _Job
    fhash: str | None = None
    analysis: Analysis | None = None
    error: audio.AudioError | None = None
    linked_track: int | None = None


_worker_lib: Library | None = None


def limit_native_threads() -> None:
    """One BLAS/OpenMP thread per worker process: N workers on N cores, not N x N threads fighting."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass


def _init_worker(library_root: str) -> None:
    global _worker_lib
    limit_native_threads()
    # Read-only view for the "already have these bytes?" check; WAL lets it read while the parent writes.
    _worker_lib = Library.open(library_root, create=False, readonly=True)


def _process(job: _Job, presets: tuple[str, ...]) -> _Outcome:
    """Hash a file; if these exact bytes are known, link them, else decode and analyse (runs in a worker)."""
    lib = _worker_lib
    shown = audio.display_path(job.path)
    try:
        fhash = file_hash(job.path)
    except FileNotFoundError:
        return _Outcome(job, error=audio.MissingFileError(shown, "file vanished during the scan (moved or deleted)"))
    except OSError as exc:
        return _Outcome(job, error=audio.DecodeError(shown, f"cannot read file: {exc.strerror or exc}"))
    if lib is not None:
        known = lib.track_for_file_hash(fhash)
        if known is not None:
            return _Outcome(job, fhash=fhash, linked_track=known)
    try:
        return _Outcome(job, fhash=fhash, analysis=analyse_file(job.path, presets))
    except audio.AudioError as exc:
        return _Outcome(job, fhash=fhash, error=exc)
    except MemoryError:
        return _Outcome(job, fhash=fhash, error=audio.DecodeError(shown, "out of memory while decoding"))
    except Exception as exc:  # noqa: BLE001 - one broken file must never stop a library scan
        return _Outcome(job, fhash=fhash, error=audio.DecodeError(shown, f"unexpected error: {exc!r}"))


ProgressHook = Callable[[str, int, int], None]


def scan(lib: Library, roots: Sequence[str | os.PathLike[str]], *, jobs: int = 1,
         presets: Iterable[str] = DEFAULT_PRESETS, on_problem: Callable[[ScanProblem], None] | None = None,
         on_progress: ProgressHook | None = None, retry_errors: bool = False) -> ScanSummary:
    """Bring the catalogue up to date with the files under ``roots``; returns a :class:`ScanSummary`.

    ``on_progress(stage, done, total)`` is called as files complete; ``on_problem`` for each new problem.
    Files under ``roots`` that the catalogue knows but that are gone leave the index.
    """
    started = time.monotonic()
    summary = ScanSummary()
    presets = tuple(presets)

    def problem(p: ScanProblem) -> None:
        summary.problems.append(p)
        if on_problem:
            on_problem(p)

    known = lib.file_records()
    seen: set[bytes] = set()
    todo: list[_Job] = []
    for path, st in walk_audio_files(roots, problem):
        if path in seen:
            continue
        seen.add(path)
        summary.found += 1
        rec = known.get(path)
        if rec is not None and rec.size == st.st_size and rec.mtime_ns == st.st_mtime_ns:
            if rec.status == "ok":
                summary.unchanged += 1
                continue
            if not retry_errors:
                summary.known_bad += 1
                continue
        todo.append(_Job(path, st.st_size, st.st_mtime_ns))

    total = len(todo)
    if on_progress:
        on_progress("analyse", 0, total)

    def commit(out: _Outcome) -> None:
        job = out.job
        if out.error is not None:
            problem(ScanProblem(out.error.path, out.error.kind, out.error.reason))
            if isinstance(out.error, audio.MissingFileError):  # gone: nothing to remember about it
                lib.remove_files([job.path])
            else:
                lib.record_error(job.path, job.size, job.mtime_ns, out.error.kind, out.error.reason)
        elif out.linked_track is not None and out.fhash is not None:
            lib.link_file(job.path, job.size, job.mtime_ns, out.fhash, out.linked_track)
            summary.linked += 1
        elif out.analysis is not None and out.fhash is not None:
            _, is_new = lib.add_analysis(job.path, job.size, job.mtime_ns, out.fhash, out.analysis)
            if is_new:
                summary.analysed += 1
            else:
                summary.linked += 1

    done = 0
    if jobs <= 1 or total <= 1:
        global _worker_lib
        _worker_lib = lib
        try:
            for job in todo:
                commit(_process(job, presets))
                done += 1
                if on_progress:
                    on_progress("analyse", done, total)
        finally:
            _worker_lib = None
    else:
        # "spawn", not fork: the parent holds an open SQLite connection, which must not be shared with children.
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                                 initargs=(str(lib.root),)) as pool:
            pending: set[Future[_Outcome]] = set()
            queue = iter(todo)
            # Keep a bounded number of files in flight so memory stays flat on huge libraries.
            for job in _take(queue, jobs * 2):
                pending.add(pool.submit(_process, job, presets))
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    commit(fut.result())
                    done += 1
                    if on_progress:
                        on_progress("analyse", done, total)
                    for job in _take(queue, 1):
                        pending.add(pool.submit(_process, job, presets))
    # Files the catalogue knows under these roots that are no longer there leave the index. This runs after the
    # new files were linked, so a moved or renamed file keeps its track instead of being analysed again.
    prefixes = [_absolute(r) for r in roots]
    gone = [p for p in known if p not in seen and any(_under(p, pre) for pre in prefixes)]
    summary.removed = lib.remove_files(gone)
    summary.seconds = time.monotonic() - started
    return summary


def _take(it: Iterator[_Job], n: int) -> list[_Job]:
    out = []
    for _ in range(n):
        try:
            out.append(next(it))
        except StopIteration:
            break
    return out


def _absolute(root: str | os.PathLike[str]) -> bytes:
    return os.path.abspath(os.path.expanduser(os.fsencode(root)))


def _under(path: bytes, prefix: bytes) -> bool:
    return path == prefix or path.startswith(prefix.rstrip(b"/") + b"/")


def _preset_spectrogram(path: bytes, preset: str) -> tuple[bytes, object]:
    """Decode one file and compute one preset's spectrogram (runs in a worker); errors are returned, not raised."""
    from soundalike.audio.features import log_mel

    try:
        with quiet_native_stderr():
            y = audio.load_excerpts(os.fsdecode(path), ANALYSIS_SR, max_duration=MAX_ANALYSED_SECONDS)
        return path, log_mel(y, preset).astype("float16")
    except audio.AudioError as exc:
        return path, exc


def ensure_spectrograms(lib: Library, preset: str, *, jobs: int = 1,
                        on_progress: Callable[[str, int, int], None] | None = None) -> int:
    """Compute and store ``preset`` spectrograms for tracks that lack them (decoding each once); returns how many.

    Scans store the ``melae`` preset; models on other presets (stollery, dieleman) call this before training.
    """
    rows = lib.conn.execute(
        "SELECT t.id, MIN(f.path) FROM tracks t JOIN files f ON f.track_id = t.id AND f.status='ok' "
        "WHERE t.id NOT IN (SELECT track_id FROM spectrograms WHERE preset=?) GROUP BY t.id", (preset,)).fetchall()
    if not rows:
        return 0
    track_of = {bytes(r[1]): int(r[0]) for r in rows}
    done = 0
    if on_progress:
        on_progress(f"spectrograms {preset}", 0, len(rows))
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=limit_native_threads) if jobs > 1 \
        else None
    try:
        results = pool.map(_preset_spectrogram, track_of, [preset] * len(track_of)) if pool else \
            (_preset_spectrogram(p, preset) for p in track_of)
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
