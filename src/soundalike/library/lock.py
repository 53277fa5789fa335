"""One library, one writer: an inter-process lock on the library folder.

Everything that writes the catalogue or the feature store (a scan, computing another preset's spectrograms,
embedding with a model, pruning) holds ``LIBRARY/writer.lock`` (``flock``, released by the kernel when the holder
exits, even after ``kill -9``). A second writer waits, or refuses with one clear line naming the holder; readers
(queries, the server) never take it — SQLite's WAL lets them read while the writer writes. The lock is reentrant
within a process, so a scan that embeds afterwards does not deadlock on itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .catalog import CatalogError

LOCK_NAME = "writer.lock"

_held: dict[str, tuple[int, int]] = {}  # lock path -> (fd, depth) in this process
_held_guard = threading.Lock()


class LibraryBusyError(CatalogError):
    """Another process is writing this library."""


def _holder(path: Path) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return "another process"
    return text or "another process"


@contextlib.contextmanager
def writer_lock(root: str | os.PathLike[str], *, wait: bool = True, timeout: float | None = None,
                on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the library's writer lock for the block. If another process holds it: wait (telling ``on_wait`` once
    who holds it; give up after ``timeout`` seconds) or, with ``wait=False``, raise :class:`LibraryBusyError`."""
    folder = Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    key = str(path.resolve())
    with _held_guard:
        if key in _held:
            fd, depth = _held[key]
            _held[key] = (fd, depth + 1)
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            _release(key)
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, wait, timeout, on_wait)
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}: {' '.join(os.path.basename(a) for a in sys.argv[:3])} "
                 f"(since {time.strftime('%H:%M:%S')})\n".encode())
    with _held_guard:
        _held[key] = (fd, 1)
    try:
        yield
    finally:
        _release(key)


def _acquire(fd: int, path: Path, wait: bool, timeout: float | None, on_wait: Callable[[str], None] | None) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    holder = _holder(path)
    if not wait:
        raise LibraryBusyError(f"{path.parent}: another soundalike is writing this library ({holder}); "
                               "try again when it has finished")
    if on_wait:
        on_wait(f"waiting: another soundalike is writing {path.parent} ({holder})")
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if deadline is not None and time.monotonic() > deadline:
                raise LibraryBusyError(f"{path.parent}: still busy after {timeout:.0f} s ({holder})") from None
            time.sleep(0.1)


def _release(key: str) -> None:
    with _held_guard:
        fd, depth = _held[key]
        if depth > 1:
            _held[key] = (fd, depth - 1)
            return
        del _held[key]
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
