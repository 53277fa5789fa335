"""The 2-D library map: PCA (instant) or t-SNE (computed in the background, cached per catalogue generation)."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import orjson
from starlette.responses import Response

from soundalike.library.catalog import Track
from soundalike.plots.projection import pca_2d, tsne_2d

METHODS = ("pca", "tsne")
# t-SNE below this many tracks is quick enough to compute inside the request.
TSNE_INLINE_MAX = 1500


def map_xy(vectors: np.ndarray, method: str) -> np.ndarray:
    """2-D positions of the rows: PCA, or t-SNE on one thread (OpenMP workers of several runtimes — faiss,
    torch, scikit-learn — spin against each other in one process, and a server has other requests to answer)."""
    if method == "pca":
        return pca_2d(vectors)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return tsne_2d(vectors)


def map_payload(model: str, method: str, ids: Sequence[int], xy: np.ndarray, tracks: Mapping[int, Track]) -> bytes:
    """The map as compact columnar JSON: ids, coordinates scaled to [0, 1], titles, artists, albums."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if len(xy):
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        xy = (xy - lo) / np.where(hi - lo > 0, hi - lo, 1.0)
    known = [i for i, tid in enumerate(ids) if int(tid) in tracks]
    rows = [tracks[int(ids[i])] for i in known]
    payload = {
        "model": model, "method": method, "count": len(rows),
        "ids": [t.id for t in rows],
        "x": [round(float(xy[i, 0]), 4) for i in known],
        "y": [round(float(xy[i, 1]), 4) for i in known],
        "title": [t.title for t in rows],
        "artist": [t.artist for t in rows],
        "album": [t.album for t in rows],
    }
    return json_bytes(payload)


def json_bytes(payload: object) -> bytes:
    """Compact UTF-8 JSON of ``payload`` with the values ``json.dumps(ensure_ascii=False)`` writes (numbers below
    1e-4 as ``0.00001``, not ``1e-05``), by orjson: a 4,000-point map answer with its labels in 0.5 ms instead of 5
    (measured; a quarter of a map window's CPU at a million tracks)."""
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)  # numpy scalars too, as json took them


@dataclass(frozen=True)
class PackedJson:
    """A JSON answer kept with its gzip form: a 10k-track map is compressed once, not on every request."""

    raw: bytes
    gzipped: bytes

    @classmethod
    def of(cls, raw: bytes, level: int = 6) -> PackedJson:
        """Pack JSON bytes (gzip ``level``: 1 for an answer made for one request, a few times faster than 6)."""
        return cls(raw, gzip.compress(raw, compresslevel=level))

    def response(self, accept_encoding: str) -> Response:
        """The gzip form to a client that accepts it, else the plain JSON."""
        headers = {"Vary": "Accept-Encoding"}
        if "gzip" in accept_encoding.lower():
            return Response(self.gzipped, media_type="application/json",
                            headers={**headers, "Content-Encoding": "gzip"})
        return Response(self.raw, media_type="application/json", headers=headers)


class BackgroundJobs:
    """At most one background computation per key; results kept until replaced."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._running: set[object] = set()
        self._done: dict[object, object] = {}
        self._failed: dict[object, str] = {}

    def get(self, key: object) -> object | None:
        """The finished result for ``key``, if any."""
        with self._lock:
            return self._done.get(key)

    def failure(self, key: object) -> str | None:
        """Why the computation for ``key`` failed, if it did."""
        with self._lock:
            return self._failed.get(key)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no computation runs (at most ``timeout`` seconds); returns whether none runs."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._running, timeout)

    def start(self, key: object, work: Callable[[], object]) -> bool:
        """Run ``work()`` in a daemon thread unless one runs for ``key`` already; returns whether it started."""
        with self._lock:
            if key in self._running or key in self._done:
                return False
            self._running.add(key)
            self._failed.pop(key, None)

        def run() -> None:
            try:
                result = work()
            except Exception as exc:  # noqa: BLE001 - reported to the client that asked, not raised in a thread
                with self._lock:
                    self._failed[key] = str(exc) or type(exc).__name__
                    self._running.discard(key)
                    self._lock.notify_all()
                return
            with self._lock:
                self._done = {k: v for k, v in self._done.items() if not _same_family(k, key)}
                self._done[key] = result
                self._running.discard(key)
                self._lock.notify_all()

        threading.Thread(target=run, name=f"soundalike-map-{key}", daemon=True).start()
        return True


def _same_family(a: object, b: object) -> bool:
    """Keys ``(model, method, generation)`` of one model and method: an older generation is dropped."""
    return isinstance(a, tuple) and isinstance(b, tuple) and a[:-1] == b[:-1]
