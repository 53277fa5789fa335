"""The map of a large library: a sampled overview, and detail on zoom by server-side windowing.

A million-point map is never shipped. Tracks get a fixed, seeded *priority* (a random permutation of the ids):
the overview is the first ``limit`` tracks in that order, and a window (``x0 <= x <= x1, y0 <= y <= y1``) returns
the first ``limit`` tracks *inside it* in the same order — so zooming in keeps every point already shown and adds
the next ones, until a small enough window shows all of its tracks.

Positions: PCA is fitted on a seeded sample of :data:`FIT_SAMPLE` tracks and frozen (:class:`Projection`: mean,
two components and the frame that scales the sample to [0, 1]); the overview projects only its own points (a few
thousand vectors: well under a second even when they are decoded from a compact index), and the position of every
track (:func:`full_layout`, one pass over the library) is computed once per catalogue generation in the
background for windows — until it is ready, a window answers from the overview's points and says ``partial``.
t-SNE, quadratic in the points, is run on the overview's sample only (:data:`TSNE_MAX_POINTS`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import orjson

from soundalike.library.catalog import Track, TrackLabel
from soundalike.search.index import VectorIndex

from .maps import BackgroundJobs, PackedJson, json_bytes
from .state import LibraryState

#: Points an overview (or a window) holds at most unless the client asks for fewer.
OVERVIEW_POINTS = 4000
#: Most points a client may ask for in one answer.
MAX_POINTS = 20_000
#: Tracks PCA is fitted on: the overview's own. With 10,000 the first overview of a million-track library took
#: 0.9 s after the index load (reading and fitting the larger sample), with 4,000 0.2 s (measured); the price is a
#: frame set by fewer points, so about 4 in 4,001 tracks (not 4 in 10,001) sit on its edge in a window.
FIT_SAMPLE = OVERVIEW_POINTS
#: Points t-SNE places for a large library (its sample in priority order).
TSNE_MAX_POINTS = 4000


def priority(ids: np.ndarray, seed: int = 0) -> np.ndarray:
    """The ids in their map priority: a seeded permutation (the overview is its head)."""
    return np.asarray(ids, dtype=np.int64)[np.random.default_rng(seed).permutation(len(ids))]


def principal_components(centred: np.ndarray, k: int = 2, seed: int = 0, iterations: int = 8) -> np.ndarray:
    """The top ``k`` principal directions ``(k, d)`` of centred rows by seeded subspace iteration (a few matrix
    products: no scikit-learn import, which alone took seconds in a busy server); each is signed so that its
    largest coordinate is positive, so a map does not flip between runs."""
    # float32 products: 2.3x less CPU than float64 on 10,000 x 1882 rows (0.27 vs 0.64 s), same directions within
    # 1e-6 (measured); the overview of a million-track library is computed while its first visitor waits.
    x = np.asarray(centred, dtype=np.float32)
    d = x.shape[1]
    out = np.zeros((k, d))
    if len(x) < 2 or d == 0:
        return out
    width = min(d, k + 8)
    basis = np.random.default_rng(seed).standard_normal((d, width)).astype(np.float32)
    for _ in range(iterations):
        basis, _ = np.linalg.qr(x.T @ (x @ basis))
    _, _, vt = np.linalg.svd(x @ basis, full_matrices=False)
    comps = (basis @ vt.T).T[:min(k, width)].astype(np.float64)
    signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])
    out[:len(comps)] = comps * np.where(signs == 0, 1.0, signs)[:, None]
    return out


@dataclass(frozen=True)
class Projection:
    """A frozen 2-D PCA: ``xy = clip(((v - mean) @ components.T - lo) / (hi - lo), 0, 1)``."""

    mean: np.ndarray
    components: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def fit(cls, vectors: np.ndarray, seed: int = 0) -> Projection:
        """The first two principal components of ``vectors (n, d)`` (:func:`principal_components`), framed by the
        sample's extent."""
        x = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        mean = x.mean(axis=0) if len(x) else np.zeros(x.shape[1], np.float32)
        components = principal_components(x - mean, 2, seed) if len(x) >= 2 else np.zeros((2, x.shape[1]))
        raw = x @ components.T.astype(np.float32) - mean @ components.T.astype(np.float32)  # as frame() takes it
        lo = raw.min(axis=0).astype(np.float64) if len(raw) else np.zeros(2)
        hi = raw.max(axis=0).astype(np.float64) if len(raw) else np.ones(2)
        return cls(mean.astype(np.float32), components.astype(np.float32), lo, np.where(hi > lo, hi, lo + 1.0))

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        """Positions ``(n, 2)`` in [0, 1] (points beyond the fitted sample's extent sit on the edge)."""
        return self.frame(np.asarray(vectors, dtype=np.float32) @ self.components.T)

    def frame(self, products: np.ndarray) -> np.ndarray:
        """Positions from ``vectors @ components.T`` (what :meth:`AnnIndex.projected
        <soundalike.search.ann.AnnIndex.projected>` gives): the mean's product is taken off here, so no centred copy
        of the vectors is made."""
        raw = products - self.mean @ self.components.T
        return np.clip((raw - self.lo) / (self.hi - self.lo), 0.0, 1.0).astype(np.float32)


def _json_piece(text: str) -> bytes:
    """``text`` as a JSON string followed by a comma (what :meth:`Labels.json_columns` splices); a text that is not
    valid Unicode (a lone surrogate of an undecodable name) with the replacement character, as no JSON holds it."""
    try:
        return orjson.dumps(text) + b","
    except orjson.JSONEncodeError:
        return orjson.dumps(text.encode("utf-8", "replace").decode("utf-8")) + b","


@dataclass(frozen=True)
class Labels:
    """Title, artist and album of many tracks packed in one buffer, each already a JSON string (about 60 bytes a
    track, not the few hundred of three Python strings): a window's labels without reading thousands of catalogue
    rows, which cost ~100 ms a window at a million tracks (rows scattered over a catalogue larger than the page
    cache), and without a Python string a label: a window's columns are cut out of the buffer with numpy and
    spliced into its JSON as they are (:meth:`json_columns`; decoding 12,000 labels a window was a quarter of a map
    window's CPU at 1 M: benchmarks/results/scale-profile-862b4ec.json)."""

    ids: np.ndarray      # sorted track ids
    offsets: np.ndarray  # 3 n + 1 offsets into ``blob``: title, artist, album of each track in turn
    blob: bytes          # each label a JSON string and a comma: "Title","Artist","Album","Title",...

    @classmethod
    def read(cls, batches: Iterable[Sequence[tuple[int, str, str, str]]]) -> Labels:
        """Pack ``(id, title, artist, album)`` rows given in increasing id order, in batches
        (:meth:`Library.label_rows`): a batch's texts are encoded and joined at once, not appended one by one."""
        ids: list[np.ndarray] = []
        lengths: list[np.ndarray] = [np.zeros(1, np.int64)]
        chunks: list[bytes] = []
        for rows in batches:
            if not rows:
                continue
            ids.append(np.fromiter((r[0] for r in rows), np.int64, len(rows)))
            encoded = [_json_piece(text) for r in rows for text in r[1:]]
            lengths.append(np.fromiter(map(len, encoded), np.int64, len(encoded)))
            chunks.append(b"".join(encoded))
        return cls(np.concatenate(ids) if ids else np.zeros(0, np.int64), np.cumsum(np.concatenate(lengths)),
                   b"".join(chunks))

    def json_columns(self, track_ids: np.ndarray | Sequence[int]) -> tuple[np.ndarray, list[bytes]]:
        """``(found, [titles, artists, albums])``: which of ``track_ids`` are packed (booleans, in the given order)
        and the labels of those as three JSON arrays (bytes), in that order."""
        want = np.asarray(track_ids, dtype=np.int64).ravel()
        if not len(self.ids) or not len(want):
            return np.zeros(len(want), dtype=bool), [b"[]", b"[]", b"[]"]
        pos = np.minimum(np.searchsorted(self.ids, want), len(self.ids) - 1)
        found = self.ids[pos] == want
        first = 3 * pos[found]
        buffer = np.frombuffer(self.blob, dtype=np.uint8)
        columns = []
        for part in range(3):  # title, artist, album
            starts = self.offsets[first + part]
            lengths = self.offsets[first + part + 1] - starts
            total = int(lengths.sum())
            if not total:
                columns.append(b"[]")
                continue
            # every byte of the pieces in turn: piece i's bytes start at starts[i], its output at sum(lengths[:i])
            gather = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(total)
            body = buffer[gather]
            body[-1] = ord("]")  # the last piece's comma
            columns.append(b"[" + body.tobytes())
        return found, columns

    def columns(self, track_ids: np.ndarray | Sequence[int]) -> tuple[np.ndarray, list[str], list[str], list[str]]:
        """``(found, titles, artists, albums)``: :meth:`json_columns` as Python strings."""
        found, columns = self.json_columns(track_ids)
        titles, artists, albums = (orjson.loads(c) for c in columns)
        return found, titles, artists, albums

    def lookup(self, track_ids: Iterable[int]) -> list[TrackLabel]:
        """The labels of those of ``track_ids`` that are packed, in the given order."""
        want = np.asarray(list(track_ids), dtype=np.int64)
        found, titles, artists, albums = self.columns(want)
        return [TrackLabel(tid, title, artist, album) for tid, title, artist, album
                in zip(want[found].tolist(), titles, artists, albums, strict=True)]


@dataclass(frozen=True)
class MapLayout:
    """Positions of tracks in priority order (:func:`priority`): ``ids[i]`` is at ``(x[i], y[i])``; with the
    tracks' :class:`Labels` when every track's position was computed."""

    method: str
    ids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    labels: Labels | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def window(self, box: tuple[float, float, float, float] | None, limit: int) -> tuple[np.ndarray, int]:
        """``(rows of the first limit tracks inside box, how many tracks are inside)``; ``box=None`` is the whole
        plane (the overview)."""
        if box is None:
            return np.arange(min(limit, len(self.ids))), len(self.ids)
        x0, x1, y0, y1 = box
        inside = np.flatnonzero((self.x >= x0) & (self.x <= x1) & (self.y >= y0) & (self.y <= y1))
        return inside[:limit], len(inside)


def overview_layout(index: VectorIndex, method: str, points: int = OVERVIEW_POINTS, seed: int = 0
                    ) -> tuple[MapLayout, Projection, np.ndarray]:
    """The first ``points`` tracks in priority order with their positions (PCA, or t-SNE of them alone); also the
    projection and the whole priority order, for :func:`full_layout`."""
    order = priority(index.ids, seed)
    read = np.sort(order[:max(FIT_SAMPLE, points)])  # the PCA sample holds the overview: its vectors read once
    sample = index.vectors_of(read)
    projection = Projection.fit(sample[np.searchsorted(read, np.sort(order[:FIT_SAMPLE]))])
    head = order[:points]
    vectors = sample[np.searchsorted(read, head)]
    xy: np.ndarray
    if method == "tsne":
        from .maps import map_xy

        xy = np.asarray(map_xy(vectors, "tsne"), dtype=np.float64)
        if len(xy):
            lo, hi = xy.min(axis=0), xy.max(axis=0)
            xy = (xy - lo) / np.where(hi - lo > 0, hi - lo, 1.0)
    else:
        xy = projection(vectors)
    xy = np.asarray(xy, dtype=np.float32).reshape(-1, 2)
    return MapLayout(method, head, xy[:, 0].copy(), xy[:, 1].copy()), projection, order


def full_layout(index: VectorIndex, projection: Projection, order: np.ndarray,
                labels: Callable[[], Iterable[Sequence[tuple[int, str, str, str]]]] | None = None) -> MapLayout:
    """Every track's PCA position, in priority ``order``: one pass over the library (projected list by list from
    a compact index, :meth:`~soundalike.search.ann.AnnIndex.projected`, so its float32 vectors are never all in
    memory). An ``order`` made from an older index (the catalogue changed meanwhile) is reconciled with this one:
    tracks it lacks go last, tracks gone are dropped. ``labels``: every track's label rows by id, in batches
    (:meth:`Library.label_rows`), packed into the layout for windows."""
    known = np.sort(np.asarray(index.ids, dtype=np.int64))
    order = np.asarray(order, dtype=np.int64)
    if len(order) != len(known) or not np.array_equal(np.sort(order), known):  # made from another index
        order = np.concatenate([order[np.isin(order, known)], np.setdiff1d(known, order)])
    components = projection.components.T
    parts: Iterable[tuple[np.ndarray, np.ndarray]] = index.ann.projected(components) if index.compact else \
        [(index.ids, index.vectors @ components)]
    xy = np.zeros((len(order), 2), np.float32)
    for ids, products in parts:
        xy[np.searchsorted(known, ids)] = projection.frame(products)
    at = xy[np.searchsorted(known, order)]
    packed = Labels.read(labels()) if labels is not None else None
    return MapLayout("pca", order, at[:, 0].copy(), at[:, 1].copy(), packed)


def layout_payload(model: str, layout: MapLayout, rows: np.ndarray, in_window: int,
                   labels: Sequence[list[str] | orjson.Fragment],
                   *, total: int, box: tuple[float, float, float, float] | None, partial: bool = False) -> bytes:
    """The map JSON of :func:`~soundalike.app.server.maps.map_payload` (columnar ids, x, y, title, artist, album;
    ``count`` points) for ``rows`` of ``layout`` and their ``labels`` (titles, artists, albums), with ``total``
    (tracks in the library map), ``in_window`` (tracks inside the window), ``sampled`` (fewer points than that),
    ``window`` and ``partial`` (a window answered from the overview while every track's position is being
    computed). A label column is a list of strings, or the JSON array already made (:meth:`Labels.json_columns`).
    """
    titles, artists, albums = labels
    payload = {
        "model": model, "method": layout.method, "count": len(rows), "total": total, "in_window": in_window,
        "sampled": len(rows) < in_window, "window": list(box) if box is not None else None, "partial": partial,
        "ids": layout.ids[rows].tolist(),
        "x": np.round(layout.x[rows].astype(np.float64), 5).tolist(),
        "y": np.round(layout.y[rows].astype(np.float64), 5).tolist(),
        "title": titles, "artist": artists, "album": albums,
    }
    return json_bytes(payload)


def answer(model: str, overview: MapLayout, full: MapLayout | None, box: tuple[float, float, float, float] | None,
           limit: int, lookup: Callable[[list[int]], Sequence[Track | TrackLabel]], total: int) -> bytes:
    """The JSON of an overview (``box=None``) or of a window: from every track's positions when ``full`` is ready,
    else from the overview's points (``partial``); tracks without labels (gone from the catalogue) left out."""
    layout = overview if box is None or full is None else full
    rows, in_window = layout.window(box, limit)
    wanted = layout.ids[rows]
    labels: list[list[str] | orjson.Fragment]
    if layout.labels is not None:
        found, made = layout.labels.json_columns(wanted)
        labels = [orjson.Fragment(column) for column in made]
    else:
        tracks = {t.id: t for t in lookup(wanted.tolist())}
        found = np.array([tid in tracks for tid in wanted.tolist()], dtype=bool)
        shown = [tracks[tid] for tid in wanted[found].tolist()]
        labels = [[t.title for t in shown], [t.artist for t in shown], [t.album for t in shown]]
    if box is None:
        in_window = total
    return layout_payload(model, layout, rows[found], in_window, labels, total=total, box=box,
                          partial=box is not None and full is None and overview.method == "pca")


def serve_map(state: LibraryState, jobs: BackgroundJobs, index: VectorIndex, model: str, method: str,
              box: tuple[float, float, float, float] | None, limit: int) -> PackedJson | None:
    """The answer of ``/api/map`` for a library larger than ``limit`` or a window: the overview is computed in
    the request (PCA) or in the background (t-SNE: None until it is ready, ask again), and its answer (JSON and
    gzip) kept per catalogue generation, so only the first request after a change waits for it; every track's PCA
    position is computed in the background once per generation, for windows."""
    gen = state.generation()
    if method == "tsne":
        key = (model, "tsne-overview", gen)
        built = jobs.get(key)
        if not isinstance(built, tuple):  # t-SNE of thousands of points takes a while: in the background
            failure = jobs.failure(key)
            if failure:
                raise RuntimeError(f"the t-SNE map failed: {failure}")
            jobs.start(key, lambda: overview_layout(index, "tsne", TSNE_MAX_POINTS))
            return None
        tsne: MapLayout = built[0]
        if box is None:
            return state.cached(("map-answer", model, "tsne", str(limit)), lambda: PackedJson.of(
                answer(index.embedding.model, tsne, tsne, None, limit, state.lib().labels, len(index))))
        # t-SNE places its sample only: windows are answered from it
        return PackedJson.of(answer(index.embedding.model, tsne, tsne, box, limit, state.lib().labels, len(index)),
                             level=1)
    points = max(limit, OVERVIEW_POINTS)
    overview, projection, order = state.cached(("map-overview", model, str(points)),
                                               lambda: overview_layout(index, "pca", points))
    if box is None:
        return state.cached(("map-answer", model, "pca", str(limit)), lambda: PackedJson.of(
            answer(index.embedding.model, overview, None, None, limit, state.lib().labels, len(index))))
    full_key = (model, "pca-full", gen)
    done = jobs.get(full_key)
    full = done if isinstance(done, MapLayout) else None
    if full is None and not jobs.failure(full_key):  # a failed pass is not restarted by every window request;
        # until it is done, windows come from the overview
        jobs.start(full_key, lambda: full_layout(index, projection, order, lambda: state.lib().label_rows()))
    return PackedJson.of(answer(index.embedding.model, overview, full, box, limit, state.lib().labels, len(index)),
                         level=1)  # a window is made for one request: compressed fast


def warm_up(state: LibraryState, jobs: BackgroundJobs, limit: int = OVERVIEW_POINTS, model: str = "default") -> None:
    """At server start, for a library above ``limit`` tracks: load ``model``'s index, compute the map overview's
    answer and start every track's position (in the calling thread: start it in one of its own), so the first
    visitor of the map does not wait for them. Anything that fails here fails again, with its message, in the
    request that needs it."""
    try:
        lib = state.lib()
        if int(lib.conn.execute("SELECT COUNT(*) FROM tracks").fetchone()[0]) <= limit:
            return
        index = state.index(model)
        if len(index) <= limit:
            return
        serve_map(state, jobs, index, model, "pca", None, limit)
        serve_map(state, jobs, index, model, "pca", (0.0, 1.0, 0.0, 1.0), limit)  # starts every track's position
    except Exception:  # noqa: BLE001 - a warm-up only: the request that needs it reports the error
        return
