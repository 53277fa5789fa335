"""What the server keeps between requests: one catalogue connection per worker thread, and caches (search
indexes, the track list, maps, spectrogram images) that are rebuilt when the catalogue changes.

Changes are noticed through SQLite's ``PRAGMA data_version`` on a connection of its own, asked at most every
``refresh_seconds``: it changes whenever another connection (``soundalike index`` running beside the server)
commits. A cache built for an older generation is rebuilt by the first request that needs it, while requests
that arrive during the rebuild keep answering from the previous one.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from soundalike.library.catalog import DESCRIPTOR_MODEL, CatalogError, Library, Track
from soundalike.search.index import VectorIndex
from soundalike.search.space import SpaceError, model_parts, part_metrics

T = TypeVar("T")

_INHERITED: list[Library | None] = []  # a forked worker's copies of its parent's watcher: kept, never used

# A model name from a client is one of the library's embeddings or family names, or a fusion of them: never a
# file path (recommend.load_index would read a checkpoint file by that name).
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+@~#-]{0,200}$")


class ModelNameError(ValueError):
    """A model name that the library does not offer."""


@dataclass
class Snapshot:
    """Every track of the library at one generation, by id (for maps and quick lookups)."""

    generation: int
    by_id: dict[int, Track]


@dataclass
class _Entry(Generic[T]):
    generation: int
    value: T


@dataclass
class _Slot(Generic[T]):
    """A value rebuilt when the generation moves on; one rebuild at a time, others use the last value."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    entry: _Entry[T] | None = None


class LibraryState:
    """Per-process server state for one library folder."""

    def __init__(self, root: Path, *, refresh_seconds: float = 3.0) -> None:
        self.root = Path(root)
        self.refresh_seconds = refresh_seconds
        with Library.open(self.root, create=False):  # fail now, with the catalogue's message, if there is none
            pass
        self._local = threading.local()
        self._epoch = 0  # moves on close(): thread-local connections of an older epoch are not used again
        self._connections: list[Library] = []
        self._connections_lock = threading.Lock()
        self._watch_lock = threading.Lock()
        self._watcher: Library | None = Library.open(self.root, create=False)
        self._data_version = self._read_data_version()
        self._generation = 0
        self._checked_at = time.monotonic()
        self._slots: dict[tuple[str, ...], _Slot[object]] = {}
        self._slots_lock = threading.Lock()
        self._png_cache: OrderedDict[tuple[object, ...], bytes] = OrderedDict()
        self._png_lock = threading.Lock()

    # --- connections ------------------------------------------------------------------------------------------
    def lib(self) -> Library:
        """This thread's catalogue connection (opened on first use; SQLite connections are not shared). After
        :meth:`close` (an app shut down and started again) a fresh one is opened."""
        lib = getattr(self._local, "lib", None)
        if lib is None or getattr(self._local, "epoch", -1) != self._epoch:
            lib = Library.open(self.root, create=False)
            self._local.lib, self._local.epoch = lib, self._epoch
            with self._connections_lock:
                self._connections.append(lib)
        return lib

    def close(self) -> None:
        """Close every connection this state opened (threads open new ones if asked again)."""
        with self._connections_lock:
            self._epoch += 1
            for lib in self._connections:
                with contextlib.suppress(Exception):  # closing at shutdown, from another thread: best effort
                    lib.close()
            self._connections.clear()
        with self._watch_lock:
            if self._watcher is not None:
                self._watcher.close()
            self._watcher = None

    def detach(self) -> None:
        """Before the process forks into server workers: close the connections requests read through (SQLite's
        must not cross a fork: each worker opens its own) and keep what is cached, which the workers share until
        they rebuild it. The watcher stays open, for :meth:`generation` just before each fork."""
        with self._connections_lock:
            self._epoch += 1
            for lib in self._connections:
                with contextlib.suppress(Exception):
                    lib.close()
            self._connections.clear()

    def after_fork(self) -> None:
        """In a worker just forked: watch the catalogue through a connection of its own, counting from the
        generation the parent checked before the fork (:meth:`generation` with ``force``). The parent's watcher is
        kept, never used or closed here (closing SQLite's inherited handles could disturb the parent's)."""
        with self._watch_lock:
            _INHERITED.append(self._watcher)
            self._watcher = Library.open(self.root, create=False)
            self._data_version = int(self._watcher.conn.execute("PRAGMA data_version").fetchone()[0])
            self._checked_at = time.monotonic()

    # --- change detection -------------------------------------------------------------------------------------
    def _read_data_version(self) -> int:
        if self._watcher is None:  # closed by close(): a restarted app watches again
            self._watcher = Library.open(self.root, create=False)
        return int(self._watcher.conn.execute("PRAGMA data_version").fetchone()[0])

    def generation(self, *, force: bool = False) -> int:
        """A number that grows when the catalogue has changed (checked at most every ``refresh_seconds``, or now
        when ``force``)."""
        now = time.monotonic()
        if not force and now - self._checked_at < self.refresh_seconds:
            return self._generation
        with self._watch_lock:
            if force or now - self._checked_at >= self.refresh_seconds:
                version = self._read_data_version()
                if version != self._data_version:
                    self._data_version = version
                    self._generation += 1
                self._checked_at = time.monotonic()
            return self._generation

    def write(self, work: Callable[[Library], T]) -> T:
        """Run one of the server's own small writes (playlists, plays, stars) on this thread's connection without
        moving the generation on: the track list and search indexes stay valid. A change another process made
        before it is still noticed; one committed during it (a few milliseconds) waits for the next change."""
        with self._watch_lock:
            before = self._read_data_version()
            result = work(self.lib())
            after = self._read_data_version()
            if before == self._data_version:
                self._data_version = after
        return result

    def cached(self, key: tuple[str, ...], build: Callable[[], T]) -> T:
        """The value for ``key`` at the current generation, built by ``build`` when missing or outdated; while
        another thread rebuilds it, the previous value is returned."""
        gen = self.generation()
        with self._slots_lock:
            slot = self._slots.setdefault(key, _Slot())
        entry = slot.entry
        if entry is not None and entry.generation == gen:
            return entry.value  # type: ignore[return-value]
        if entry is not None and not slot.lock.acquire(blocking=False):
            return entry.value  # type: ignore[return-value]
        if entry is None:
            slot.lock.acquire()
        try:
            entry = slot.entry
            if entry is not None and entry.generation == gen:
                return entry.value  # type: ignore[return-value]
            value = build()
            slot.entry = _Entry(gen, value)
            return value
        finally:
            slot.lock.release()

    # --- library data -----------------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """Every track, for listing and search."""
        return self.cached(("snapshot",), lambda: Snapshot(self._generation, {t.id: t for t in self.lib().tracks()}))

    def allowed_models(self) -> set[str]:
        """Names a client may ask for: default, descriptor, every stored embedding and every trained family."""
        def build() -> set[str]:
            lib = self.lib()
            names = {"default", DESCRIPTOR_MODEL, *lib.models()}
            try:
                from soundalike.models.embedding import registered_models

                names |= {str(info.get("name")) for info in registered_models(lib).values() if info.get("name")}
            except Exception:  # noqa: BLE001 - without torch or a model registry: stored names only
                pass
            return names

        return self.cached(("models",), build)

    def sequence_models(self) -> list[str]:
        """The offered names whose search space has segment sequences (for sequence distances): learned models,
        and ``default`` once the shipped model has embedded the library."""
        def build() -> list[str]:
            from soundalike.models.embedding import resolve_model

            names = self.allowed_models() - {DESCRIPTOR_MODEL}
            if resolve_model(self.lib(), "default") == DESCRIPTOR_MODEL:
                names.discard("default")
            return sorted(names)

        return self.cached(("sequence_models",), build)

    def check_model(self, model: str) -> str:
        """``model`` if the library offers it (each part of a fused ``a+b`` key too), else :class:`ModelNameError`."""
        if not _MODEL_NAME.match(model) or ".." in model:
            raise ModelNameError(f"unknown model {model[:60]!r}")
        allowed = self.allowed_models()
        try:
            parts = model_parts(model)
            part_metrics(model, match=False)  # a part's learned metric (``descriptor#rca-…``) is known (whether
            # it fits the part is resolve_model's to say, once a family name is resolved to a model id)
        except SpaceError as exc:
            raise ModelNameError(f"unknown model {model[:60]!r}: {exc}"[:300]) from None
        for part in parts:
            if part not in allowed:
                raise ModelNameError(f"unknown model {part[:60]!r}; this library offers: "
                                     f"{', '.join(sorted(allowed))}")
        return model

    def index(self, model: str = "default") -> VectorIndex:
        """The search index of ``model`` (checked by :meth:`check_model`), kept in memory per generation, its cells
        ranked the fast way (:meth:`~soundalike.search.ann.AnnIndex.speed_up_cells`: a server queries it often)."""
        from soundalike.recommend import load_index

        self.check_model(model)
        return self.cached(("index", model), lambda: _serving(load_index(self.lib(), model)))

    def track(self, track_id: int) -> Track | None:
        """A track by id, from the catalogue (one indexed lookup: a snapshot of every track would hold a million
        of them in memory)."""
        return self.lib().track(track_id)

    def file_of(self, track_id: int) -> str | None:
        """The first of the track's indexed files that still exists (None when every one is gone): its real path
        (``os.fsdecode``: a name that is not UTF-8 keeps its bytes), for opening, never for showing."""
        for raw in self.lib().file_paths(track_id):
            if os.path.isfile(raw):
                return os.fsdecode(raw)
        return None

    def public_path(self, path: str) -> str:
        """A file's path as clients see it: relative to the scanned root that holds it (never the server's
        absolute path), else its file name."""
        roots = self.cached(("roots",), lambda: sorted(self.lib().roots(), key=len, reverse=True))
        for root in roots:
            if path.startswith(root.rstrip("/") + "/"):
                return path[len(root.rstrip("/")) + 1:]
        return os.path.basename(path)

    def redact(self, text: str) -> str:
        """``text`` without the server's library folder or music roots (error messages go to clients)."""
        for root in self.cached(("roots",), lambda: sorted(self.lib().roots(), key=len, reverse=True)):
            text = text.replace(root.rstrip("/") + "/", "").replace(root, "(music)")
        return text.replace(str(self.root), "(library)")

    def png(self, key: tuple[object, ...], render: Callable[[], bytes], capacity: int = 256) -> bytes:
        """A rendered image from a small LRU cache."""
        with self._png_lock:
            if key in self._png_cache:
                self._png_cache.move_to_end(key)
                return self._png_cache[key]
        data = render()
        with self._png_lock:
            self._png_cache[key] = data
            while len(self._png_cache) > capacity:
                self._png_cache.popitem(last=False)
        return data


__all__ = ["CatalogError", "LibraryState", "ModelNameError", "Snapshot"]


def _serving(index: VectorIndex) -> VectorIndex:
    """``index``, set up for many queries (:meth:`~soundalike.search.ann.AnnIndex.speed_up_cells`)."""
    index.ann.speed_up_cells()
    return index
