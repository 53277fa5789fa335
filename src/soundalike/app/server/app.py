"""The FastAPI application: a JSON API over the recommendation engine, the web page, and OpenSubsonic endpoints.

Every endpoint calls the same functions as the command line (:mod:`soundalike.recommend`). Clients name tracks
only by catalogue id: no endpoint takes a path, so nothing outside the catalogue can be read or analysed, except
an uploaded file, which is checked in a separate process, analysed, and deleted (never added to the library).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from threadpoolctl import threadpool_limits

from soundalike import __version__
from soundalike.audio.decode import AUDIO_EXTENSIONS, display_path
from soundalike.library.catalog import CatalogError, Track, search_words
from soundalike.recommend import (
    DISTANCES,
    Filters,
    QueryError,
    Recommendation,
    continue_playlist,
    path_between,
    similar,
)
from soundalike.recommend.queries import OutsideAnalysis, outside_query
from soundalike.search import ann
from soundalike.search.index import VectorIndex

from .maplayout import MAX_POINTS, OVERVIEW_POINTS, serve_map, warm_up
from .maps import METHODS, TSNE_INLINE_MAX, BackgroundJobs, PackedJson, map_payload, map_xy
from .media import audio_content_type, spectrogram_png
from .middleware import (
    AdmissionMiddleware,
    BodyLimitMiddleware,
    CrossSiteMiddleware,
    HeadMiddleware,
    LoopbackHostMiddleware,
    SecurityHeadersMiddleware,
    default_concurrency,
)
from .security import is_loopback, token_matches
from .state import LibraryState, ModelNameError
from .uploads import CHECK_TIMEOUT_S, ClientGone, analyse_upload

log = logging.getLogger("soundalike.server")

DEFAULT_MAX_UPLOAD_BYTES = 50 << 20
JSON_BODY_LIMIT = 1 << 20
MAX_K = 200
MAX_ID = (1 << 63) - 1  # SQLite's largest integer: anything above cannot be a catalogue id
SEARCH_TOTAL_CAP = 1_000  # a search counts its matches up to here ("1000+" beyond: the exact count of a common word
# of a million tracks costs more than the search itself)
STATIC_DIR = Path(str(resources.files("soundalike.app.server").joinpath("static")))


@dataclass
class ServerConfig:
    """How one server instance behaves (see :func:`create_app`)."""

    library: Path
    token: str | None = None
    loopback_only: bool = False
    cors_origins: tuple[str, ...] = ()
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    refresh_seconds: float = 3.0
    check_timeout: float = CHECK_TIMEOUT_S
    max_concurrent_uploads: int = 2
    public_url: str | None = None  # the address clients reach this server at (stream URLs in M3U playlists)
    map_points: int = OVERVIEW_POINTS  # points of a large library's map overview (and of each window)
    concurrency: int = dataclasses.field(default_factory=default_concurrency)  # API requests computed at once


class Server:
    """The state behind one app: configuration, library caches, background map jobs, upload slots."""

    def __init__(self, config: ServerConfig) -> None:
        # Requests run concurrently on worker threads, each search on one thread. faiss's OpenMP workers would
        # otherwise spin beside each other and beside scikit-learn's (t-SNE maps): measured 45 s instead of 1 s for
        # a 12-track t-SNE. set_search_threads holds in every request thread (omp_set_num_threads alone does not).
        ann.set_search_threads(1)
        # The same for numpy's BLAS, for the whole process: its idle threads spin after each small product (the
        # cell ranking, the re-rank), which doubled the CPU of a path or a continuation at 1 M tracks.
        threadpool_limits(1, user_api="blas")
        self.config = config
        self.state = LibraryState(config.library, refresh_seconds=config.refresh_seconds)
        self.maps = BackgroundJobs()
        self.upload_slots = threading.BoundedSemaphore(config.max_concurrent_uploads)

    def prepare_to_fork(self) -> None:
        """Before ``serve --workers N`` forks: load what the first requests need (the default index; for a large
        library the map overview and every track's position, :func:`~.maplayout.warm_up`) and wait for it, so the
        workers share it copy-on-write; then close the connections requests read through
        (:meth:`LibraryState.detach`)."""
        with contextlib.suppress(Exception):  # no default embeddings yet: the request that needs them says so
            self.state.index("default")
        warm_up(self.state, self.maps, self.config.map_points)
        self.maps.wait()
        self.state.detach()


# The dependencies that only read memory are coroutines: FastAPI runs a plain function in a worker thread, one more
# trip through the thread pool for every request.
async def get_server(request: Request) -> Server:
    """The :class:`Server` of the app handling ``request``."""
    server: Server = request.app.state.server
    return server


ServerDep = Annotated[Server, Depends(get_server)]
_bearer = HTTPBearer(auto_error=False, description="The server's token (soundalike serve --token).")
_token_query = APIKeyQuery(name="token", auto_error=False,
                           description="The token as a query parameter, for <audio src> and <img src>.")


async def require_token(server: ServerDep,
                        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                        token: Annotated[str | None, Depends(_token_query)]) -> None:
    """Let the request through when no token is configured, or when it presents the right one."""
    expected = server.config.token
    if expected is None:
        return
    given = bearer.credentials if bearer is not None else token
    if not token_matches(given, expected):
        raise HTTPException(401, "missing or wrong token (Authorization: Bearer TOKEN, or ?token=TOKEN)",
                            headers={"WWW-Authenticate": "Bearer"})


# --- response shapes (for the OpenAPI document) -------------------------------------------------------------------
class TrackOut(BaseModel):
    """A library track, as in the command line's JSON."""

    track_id: int
    path: str
    artist: str
    album: str
    title: str
    duration: float


class ResultOut(TrackOut):
    """A recommended track with its score (cosine similarity, or 1 - a sequence distance)."""

    score: float
    distance: float | None = None


class TrackPage(BaseModel):
    """One page of a track listing or search."""

    total: int
    offset: int
    limit: int
    items: list[TrackOut]
    total_exact: bool = Field(True, description="False when a search has more matches than `total` "
                                                "(counting stops at SEARCH_TOTAL_CAP)")


class TrackDetail(TrackOut):
    """A track with its files and links to its audio and spectrogram."""

    paths: list[str]
    format: str
    size_bytes: int | None
    audio_url: str
    spectrogram_url: str


class SimilarOut(BaseModel):
    """The command line's ``similar --format json`` shape."""

    query: dict[str, Any]
    model: str = Field(description="The embedding that answered (the key behind `default`, or the descriptors "
                                   "when the shipped model has not reached the query yet).")
    notes: list[str] = Field(default_factory=list, description="Fallbacks and left-out candidates, if any.")
    results: list[ResultOut]


class ContinueIn(BaseModel):
    """A playlist to continue, as catalogue ids in order."""

    track_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(..., min_length=1, max_length=1000)
    k: int = Field(10, ge=1, le=MAX_K)
    score: str = Field("max", max_length=20, description="max, mean, topk or cluster (seed 000 eq. 1, §5.4)")
    model: str = Field("default", max_length=200)
    no_same_artist: bool = False
    no_same_album: bool = False
    max_per_artist: int | None = Field(None, ge=1, le=1000)
    max_per_album: int | None = Field(None, ge=1, le=1000)
    keep_duplicates: bool = False


class ContinueOut(BaseModel):
    """The command line's ``continue --format json`` shape."""

    playlist: dict[str, Any]
    model: str
    notes: list[str] = Field(default_factory=list)
    results: list[ResultOut]


class PathOut(BaseModel):
    """The command line's ``path --format json`` shape: both ends included in ``results``."""

    start: dict[str, Any]
    end: dict[str, Any]
    model: str
    notes: list[str] = Field(default_factory=list)
    results: list[ResultOut]


class Health(BaseModel):
    """Liveness."""

    status: str
    version: str


# --- shared parameters --------------------------------------------------------------------------------------------
async def filter_params(
    no_same_artist: Annotated[bool, Query(description="No track by the query's artists.")] = False,
    no_same_album: Annotated[bool, Query(description="No track from the query's albums.")] = False,
    max_per_artist: Annotated[int | None, Query(ge=1, le=1000, description="At most N results by one artist.")]
    = None,
    max_per_album: Annotated[int | None, Query(ge=1, le=1000, description="At most N results per album.")] = None,
    keep_duplicates: Annotated[bool, Query(description="Also list other versions of one recording.")] = False,
) -> Filters:
    """The result filters of the command line, as query parameters."""
    return Filters.from_options(no_same_artist, no_same_album, max_per_artist, max_per_album, keep_duplicates)


FiltersDep = Annotated[Filters, Depends(filter_params)]
ModelParam = Annotated[str, Query(max_length=200, description="default, descriptor, a model family or id, or a "
                                                              "fused key such as descriptor+melae; a part may name "
                                                              "a learned metric after # (sent as %23: "
                                                              "descriptor%23rca-3c9442fb).")]
KParam = Annotated[int, Query(ge=1, le=MAX_K, description="How many tracks.")]
TrackId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="A catalogue track id.")]
TrackIdQuery = Annotated[int, Query(ge=1, le=MAX_ID, description="A catalogue track id.")]


def _public(server: Server, value: Any) -> Any:
    """An answer as clients see it: file paths relative to the scanned roots, no library folder."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "path" and isinstance(item, str):
                out[key] = server.state.public_path(item)
            elif key == "paths" and isinstance(item, list):
                out[key] = [server.state.public_path(p) for p in item]
            elif key in ("library", "notes", "skipped") and isinstance(item, str | list):
                out[key] = server.state.redact(item) if isinstance(item, str) else \
                    [server.state.redact(str(x)) for x in item]
            else:
                out[key] = _public(server, item)
        return out
    if isinstance(value, list):
        return [_public(server, item) for item in value]
    return value


def _track_or_404(server: Server, track_id: int) -> Track:
    track = server.state.track(track_id)
    if track is None:
        raise HTTPException(404, f"no track with id {track_id}")
    return track


def _results(results: Sequence[Recommendation]) -> list[dict[str, object]]:
    return [r.to_dict() for r in results]


def _index(server: Server, model: str) -> VectorIndex:
    try:
        return server.state.index(model)
    except ModelNameError as exc:
        raise HTTPException(400, str(exc)) from None


def _model(server: Server, model: str) -> str:
    """``model`` if the library offers it, else 400."""
    try:
        return server.state.check_model(model)
    except ModelNameError as exc:
        raise HTTPException(400, str(exc)) from None


_P = ParamSpec("_P")
_R = TypeVar("_R")


def threaded(endpoint: Callable[_P, _R]) -> Callable[_P, Awaitable[_R]]:
    """A blocking endpoint run in the thread pool by an async one of the same signature. FastAPI runs a plain
    ``def`` endpoint in the pool, then validates its answer against the response model in a second trip to the pool;
    from an async endpoint it validates on the event loop: one hand-off a request instead of two (each wakes the
    loop and a pool thread; the two were about a twentieth of the server's CPU under load at 1 M tracks,
    benchmarks/results/scale-profile-862b4ec.json)."""

    @functools.wraps(endpoint)
    async def in_pool(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        return await run_in_threadpool(endpoint, *args, **kwargs)

    return in_pool


# --- the JSON API -------------------------------------------------------------------------------------------------
api = APIRouter(prefix="/api", dependencies=[Depends(require_token)])


@api.get("/library", summary="What the library holds")
def library_stats(server: ServerDep) -> dict[str, Any]:
    """Counts of tracks, files, errors by kind, embeddings, hours, disk use; the model names a client may ask for,
    and those that compare segment sequences (every name but the descriptors)."""
    stats = server.state.lib().stats()
    offered = sorted(server.state.allowed_models())
    return _public(server, {**stats, "models_offered": offered, "sequence_models": server.state.sequence_models()})


@api.get("/tracks", response_model=TrackPage, summary="List or search tracks, with paging")
@threaded
def list_tracks(server: ServerDep,
                q: Annotated[str, Query(max_length=200, description="Words of the artist, album or title.")] = "",
                offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    """Every track (by artist, album, title), or those matching every word of ``q`` (best first; accents and case
    ignored): the command line's search."""
    lib = server.state.lib()
    cap = SEARCH_TOTAL_CAP if search_words(q) else None  # the listing of every track is counted exactly
    items, counted = lib.search_counted(q, limit=limit, offset=offset, count_limit=None if cap is None else cap + 1)
    exact = cap is None or counted <= cap
    return _public(server, {"total": counted if exact else cap, "total_exact": exact, "offset": offset,
                            "limit": limit, "items": [t.to_dict() for t in items]})


@api.get("/tracks/{track_id}", response_model=TrackDetail, summary="One track: tags, files, links")
@threaded
def track_detail(server: ServerDep, track_id: TrackId) -> dict[str, Any]:
    """Tags, duration, every indexed path, and the URLs of its audio and spectrogram."""
    track = _track_or_404(server, track_id)
    paths = server.state.lib().paths_of(track.id)
    size = None
    for p in paths:
        try:
            size = os.stat(p).st_size
            break
        except OSError:
            continue
    return _public(server, {**track.to_dict(), "paths": paths, "format": Path(track.path).suffix.lstrip(".").lower(),
                            "size_bytes": size, "audio_url": f"/api/tracks/{track.id}/audio",
                            "spectrogram_url": f"/api/tracks/{track.id}/spectrogram.png"})


@api.get("/tracks/{track_id}/audio", summary="Stream a track's audio (HTTP range requests)",
         response_class=FileResponse, responses={200: {"content": {"audio/*": {}}}, 206: {"description": "A range"}})
def track_audio(server: ServerDep, track_id: TrackId) -> FileResponse:
    """The track's file as it is on disk, found by catalogue id only; ``Range: bytes=...`` gives 206 answers."""
    _track_or_404(server, track_id)
    path = server.state.file_of(track_id)
    if path is None:
        raise HTTPException(404, f"the file of track {track_id} is gone (moved or deleted since the last scan)")
    return FileResponse(path, media_type=audio_content_type(path), filename=display_path(os.path.basename(path)),
                        content_disposition_type="inline", headers={"Cache-Control": "private, max-age=3600"})


@api.get("/tracks/{track_id}/spectrogram.png", summary="The stored log-mel spectrogram as an image",
         response_class=Response, responses={200: {"content": {"image/png": {}}}})
def track_spectrogram(server: ServerDep, request: Request, track_id: TrackId,
                      width: Annotated[int, Query(ge=64, le=2400)] = 900,
                      height: Annotated[int, Query(ge=32, le=600)] = 200) -> Response:
    """128 mel bands (hop 512 at 22.05 kHz), the loudest 80 dB in colour, low frequencies at the bottom."""
    track = _track_or_404(server, track_id)
    etag = f'"{track.audio_hash}-{width}x{height}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=86400"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)

    def render() -> bytes:
        try:
            spec = server.state.lib().spectrogram(track.id, "melae")
        except CatalogError:
            raise HTTPException(404, f"track {track_id} has no stored spectrogram") from None
        return spectrogram_png(spec, width=width, height=height)

    data = server.state.png((track.audio_hash, width, height), render)
    return Response(data, media_type="image/png", headers=headers)


@api.get("/tracks/{track_id}/similar", response_model=SimilarOut, summary="More like this track")
@threaded
def track_similar(server: ServerDep, track_id: TrackId, filters: FiltersDep, k: KParam = 10,
                  model: ModelParam = "default",
                  distance: Annotated[str, Query(max_length=20, description=", ".join(DISTANCES))] = "cosine",
                  candidates: Annotated[int, Query(ge=1, le=2000, description="Candidates a sequence distance "
                                                                             "re-ranks.")] = 200) -> dict[str, Any]:
    """The ``k`` tracks that sound most like this one (never itself or its duplicates), best first."""
    _track_or_404(server, track_id)
    query, results = similar(server.state.lib(), str(track_id), k, model=_model(server, model),
                             indexes=server.state.index, filters=filters, distance=distance, candidates=candidates)
    return _public(server, {"query": query.to_dict(), "model": query.model, "notes": query.notes,
                            "results": _results(results)})


@api.post("/continue", response_model=ContinueOut, summary="Continue a playlist")
@threaded
def playlist_continue(server: ServerDep, body: ContinueIn) -> dict[str, Any]:
    """The ``k`` library tracks that best continue the playlist (seed 000's score functions), without its tracks."""
    filters = Filters.from_options(body.no_same_artist, body.no_same_album, body.max_per_artist, body.max_per_album,
                                   body.keep_duplicates)
    playlist, results = continue_playlist(server.state.lib(), list(body.track_ids), body.k, score=body.score,
                                          model=_model(server, body.model), indexes=server.state.index,
                                          filters=filters)
    return _public(server, {"playlist": playlist.to_dict(), "model": playlist.model, "notes": playlist.notes,
                            "results": _results(results)})


@api.get("/path", response_model=PathOut, summary="A path of tracks from one track to another")
@threaded
def tracks_path(server: ServerDep, start: TrackIdQuery, end: TrackIdQuery, filters: FiltersDep,
                n: Annotated[int, Query(ge=2, le=MAX_K, description="Tracks in the path, both ends included.")] = 10,
                model: ModelParam = "default") -> dict[str, Any]:
    """``n`` distinct tracks leading smoothly from ``start`` to ``end`` (both included)."""
    _track_or_404(server, start)
    _track_or_404(server, end)
    a, b, results = path_between(server.state.lib(), str(start), str(end), n, model=_model(server, model),
                                 indexes=server.state.index, filters=filters)
    return _public(server, {"start": a.to_dict(), "end": b.to_dict(), "model": a.model, "notes": a.notes,
                            "results": _results(results)})


@api.get("/map", summary="2-D map of the library",
         responses={200: {"description": "Columnar JSON: model, method, count, ids, x, y (in [0, 1]), title, "
                                         "artist, album; above `limit` tracks or with a window also total, "
                                         "in_window, sampled, window, partial"},
                    202: {"description": "t-SNE is being computed; ask again shortly (Retry-After)"}})
def library_map(server: ServerDep, request: Request, model: ModelParam = "default",
                method: Annotated[str, Query(pattern="^(pca|tsne)$", description=" or ".join(METHODS))] = "pca",
                limit: Annotated[int | None, Query(ge=1, le=MAX_POINTS, description="Most points to return: a "
                                                                                  "larger library gets a sampled "
                                                                                  "overview (default: the "
                                                                                  "server's --map-points)")]
                = None,
                x0: Annotated[float | None, Query(ge=0, le=1, description="Window (detail on zoom): left")] = None,
                x1: Annotated[float | None, Query(ge=0, le=1, description="right")] = None,
                y0: Annotated[float | None, Query(ge=0, le=1, description="bottom")] = None,
                y1: Annotated[float | None, Query(ge=0, le=1, description="top")] = None) -> Response:
    """Every track's 2-D position (PCA at once; t-SNE computed in the background for large libraries); above
    ``limit`` tracks a sampled overview, and with ``x0, x1, y0, y1`` the first ``limit`` tracks of that window
    (:mod:`.maplayout`)."""
    edges = (x0, x1, y0, y1)
    if any(e is not None for e in edges) and (None in edges or x0 > x1 or y0 > y1):  # type: ignore[operator]
        raise HTTPException(422, "a window needs x0 <= x1 and y0 <= y1, all four in [0, 1]")
    box = None if x0 is None else (float(x0), float(x1), float(y0), float(y1))  # type: ignore[arg-type]
    limit = limit or server.config.map_points
    index = _index(server, model)
    if box is not None or len(index) > limit:
        packed = serve_map(server.state, server.maps, index, model, method, box, limit)
        if packed is None:
            return JSONResponse({"detail": f"computing the t-SNE map of a sample of {len(index)} tracks; ask "
                                           "again in a few seconds"}, status_code=202, headers={"Retry-After": "5"})
        return packed.response(request.headers.get("accept-encoding", ""))
    state = server.state

    accept = request.headers.get("accept-encoding", "")

    def build(kind: str) -> PackedJson:
        xy = map_xy(index.vectors, kind)
        tracks = state.snapshot().by_id
        missing = [int(i) for i in index.ids if int(i) not in tracks]
        extra = {t.id: t for t in state.lib().tracks(missing)} if missing else {}
        return PackedJson.of(map_payload(index.embedding.model, kind, index.ids.tolist(), xy, {**tracks, **extra}))

    if method == "pca" or len(index) <= TSNE_INLINE_MAX:
        return state.cached(("map", model, method), lambda: build(method)).response(accept)
    key = (model, method, state.generation())
    done = server.maps.get(key)
    if isinstance(done, PackedJson):
        return done.response(accept)
    failure = server.maps.failure(key)
    if failure:
        raise HTTPException(500, f"the t-SNE map failed: {failure}")
    server.maps.start(key, lambda: build(method))
    return JSONResponse({"detail": f"computing the t-SNE map of {len(index)} tracks; ask again in a few seconds"},
                        status_code=202, headers={"Retry-After": "5"})


def _safe_suffix(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    return suffix if suffix in AUDIO_EXTENSIONS else ".bin"


@api.post("/upload/similar", response_model=SimilarOut, summary="Find library tracks like an uploaded file",
          openapi_extra={"requestBody": {"required": True, "content": {
              "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                                 "properties": {"file": {"type": "string", "format": "binary"}}}},
              "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
          responses={400: {"description": "Not decodable audio"}, 413: {"description": "Too large"},
                     415: {"description": "Not audio at all"}})
async def upload_similar(server: ServerDep, request: Request, filters: FiltersDep, k: KParam = 10,
                         model: ModelParam = "default",
                         filename: Annotated[str, Query(max_length=255, description="Name of a raw-body upload "
                                                                                     "(for its extension).")] = "upload"
                         ) -> dict[str, Any]:
    """Analyse an audio file (multipart field ``file``, or the raw body) and return the library tracks that sound
    like it (cold start). The file is analysed in a separate, resource-limited process (stopped if the client
    disconnects), then deleted; it is never added to the library."""
    limit = server.config.max_upload_bytes
    folder = tempfile.mkdtemp(prefix="soundalike-upload-")
    try:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            form = await request.form(max_files=1, max_fields=8)
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise HTTPException(400, "send the audio file in a multipart field named 'file'")
            name = upload.filename or "upload"
            target = os.path.join(folder, "upload" + _safe_suffix(name))

            async def parts() -> AsyncIterator[bytes]:
                while chunk := await upload.read(1 << 20):
                    yield chunk

            size = await _save(parts(), target, limit)
            await upload.close()
        else:
            name = filename
            target = os.path.join(folder, "upload" + _safe_suffix(name))
            size = await _save(request.stream(), target, limit)
        if size == 0:
            raise HTTPException(400, "empty upload (0 bytes)")
        return await _similar_to_upload(server, request, target, os.path.basename(name), k, model, filters)
    finally:
        await run_in_threadpool(shutil.rmtree, folder, True)


async def _save(chunks: AsyncIterator[bytes], target: str, limit: int) -> int:
    """Write an upload to ``target`` as it arrives, stopping with 413 past ``limit`` bytes; returns its size."""
    size = 0
    with open(target, "wb") as out:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, f"file too large (limit {limit // (1 << 20)} MB)")
            out.write(chunk)
    return size


async def _similar_to_upload(server: Server, request: Request, path: str, name: str, k: int, model: str,
                             filters: Filters) -> dict[str, Any]:
    """Analyse the upload out of process (one of ``max_concurrent_uploads`` at a time), then answer in a thread."""
    index = await run_in_threadpool(_index, server, model)
    if not await run_in_threadpool(server.upload_slots.acquire, True, 30):
        raise HTTPException(503, "too many uploads being analysed; try again shortly")
    try:
        result = await analyse_upload(path, server.config.library, [p.model for p in index.embedding.parts],
                                      timeout=server.config.check_timeout, disconnected=request.is_disconnected)
    except ClientGone:
        raise HTTPException(499, "the client disconnected") from None
    finally:
        server.upload_slots.release()
    if not result.ok or result.analysis is None:
        status = 415 if result.kind == "not-audio" else 400
        raise HTTPException(status, f"{name}: {result.reason or 'not usable audio'}")
    return await run_in_threadpool(_answer_upload, server, index, name, OutsideAnalysis.from_json(result.analysis), k,
                                   filters)


def _answer_upload(server: Server, index: VectorIndex, name: str, analysis: OutsideAnalysis, k: int,
                   filters: Filters) -> dict[str, Any]:
    lib = server.state.lib()
    query, results = similar(lib, outside_query(lib, index, name, analysis), k, index=index, filters=filters)
    info: dict[str, Any] = {"input": name, "in_library": False, "duration": round(analysis.duration, 3)}
    same = sorted(query.exclude)
    if same:
        twin = server.state.track(same[0])
        if twin is not None:
            info["same_audio_as"] = twin.to_dict()
    return _public(server, {"query": info, "model": query.model, "notes": query.notes, "results": _results(results)})


@api.get("/playlist.m3u", summary="A playlist of tracks as an M3U file", response_class=PlainTextResponse,
         responses={200: {"content": {"audio/x-mpegurl": {}}}})
def playlist_m3u(server: ServerDep, request: Request,
                 ids: Annotated[str, Query(max_length=20_000, pattern=r"^\d+(,\d+)*$",
                                           description="Comma-separated track ids, in order.")],
                 title: Annotated[str, Query(max_length=200)] = "soundalike playlist",
                 target: Annotated[str, Query(pattern="^(paths|urls)$",
                                              description="paths (for a player on this machine: loopback clients "
                                                          "only) or urls (stream URLs of this server, at "
                                                          "--public-url if set)")] = "paths") -> Response:
    """Extended M3U (UTF-8) of the given tracks, as a download."""
    wanted = [i for i in (int(text) for text in ids.split(",")[:5000] if len(text) <= 19) if 0 < i <= MAX_ID]
    lib = server.state.lib()
    tracks = lib.tracks(wanted)
    if not tracks:
        raise HTTPException(404, "none of these ids is a library track")
    if target == "urls":
        base = (server.config.public_url or str(request.base_url)).rstrip("/")
        token = server.config.token
        suffix = f"?token={quote(token)}" if token else ""
        tracks = [dataclasses.replace(t, path=f"{base}/api/tracks/{t.id}/audio{suffix}") for t in tracks]
    elif not (request.client is not None and is_loopback(request.client.host)):
        raise HTTPException(403, "file paths are only given to a player on this machine: ask for target=urls")
    from soundalike.recommend.playlists import to_m3u

    text = to_m3u(tracks, title=title.replace("\n", " ").replace("\r", " "))
    return Response(text.encode("utf-8"), media_type="audio/x-mpegurl",
                    headers={"Content-Disposition": 'attachment; filename="playlist.m3u8"'})


# --- health, page, docs -------------------------------------------------------------------------------------------
public = APIRouter()


@public.get("/api/health", response_model=Health, summary="Liveness (no token needed)")
async def health() -> dict[str, str]:
    """``{"status": "ok"}`` while the server runs."""
    return {"status": "ok", "version": __version__}


@public.get("/", include_in_schema=False)
def index_page() -> FileResponse:
    """The web page."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


@public.get("/docs", include_in_schema=False)
def swagger_page() -> HTMLResponse:
    """Swagger UI, served from local files (no CDN)."""
    return get_swagger_ui_html(openapi_url="/openapi.json", title="soundalike API",
                               swagger_js_url="/docs-static/swagger-ui-bundle.js",
                               swagger_css_url="/docs-static/swagger-ui.css",
                               swagger_favicon_url="/static/favicon.svg")


@public.get("/redoc", include_in_schema=False)
def redoc_page() -> HTMLResponse:
    """ReDoc, served from local files (no CDN)."""
    return get_redoc_html(openapi_url="/openapi.json", title="soundalike API",
                          redoc_js_url="/docs-static/redoc.standalone.js", redoc_favicon_url="/static/favicon.svg",
                          with_google_fonts=False)


def _short(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        loc = [str(x) for x in error.get("loc", ())]
        where = ".".join(x for x in loc if x not in ("query", "body", "path")) or (loc[0] if loc else "")
        if error.get("type") == "json_invalid":
            where = "body"  # the position inside the JSON text says little
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


def create_app(library: str | os.PathLike[str], *, token: str | None = None, loopback_only: bool = False,
               cors_origins: Sequence[str] = (), max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               refresh_seconds: float = 3.0, check_timeout: float = CHECK_TIMEOUT_S,
               public_url: str | None = None, map_points: int = OVERVIEW_POINTS, concurrency: int = 0) -> FastAPI:
    """The app serving the library at ``library``. ``token`` protects every data endpoint; ``loopback_only``
    answers only requests addressed to localhost (for a tokenless loopback server); ``cors_origins`` lists the
    web origins allowed to call the API from a browser (none by default; any other site's requests are refused);
    ``public_url`` is the address clients reach the server at (stream URLs in playlists), instead of the ``Host``
    header of each request; ``map_points`` the size of a large library's map overview, which is computed in the
    background at start-up (:func:`~.maplayout.warm_up`); ``concurrency`` how many API requests are computed at
    once, the others waiting their turn (:class:`~.middleware.AdmissionMiddleware`; 0: one a CPU)."""
    config = ServerConfig(Path(library), token=token or None, loopback_only=loopback_only,
                          cors_origins=tuple(cors_origins), max_upload_bytes=max_upload_bytes,
                          refresh_seconds=refresh_seconds, check_timeout=check_timeout,
                          public_url=public_url.rstrip("/") if public_url else None, map_points=map_points,
                          concurrency=concurrency if concurrency > 0 else default_concurrency())
    server = Server(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=warm_up, args=(server.state, server.maps, config.map_points), name="map-warm-up",
                         daemon=True).start()
        yield
        await asyncio.to_thread(server.state.close)

    app = FastAPI(title="soundalike", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="Content-based music recommendation: search the library, stream tracks, find what "
                              "sounds alike, continue playlists, walk paths between tracks, map the library, and "
                              "find library tracks like any uploaded file. The Subsonic API (with OpenSubsonic "
                              "`sonicSimilarity`) lives under `/rest`.")
    app.state.server = server

    from .library_views import views
    from .subsonic import rest

    app.include_router(public)
    app.include_router(api)
    app.include_router(views)
    app.include_router(rest)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount("/docs-static", StaticFiles(directory=str(resources.files("fastapi_offline").joinpath("static"))),
              name="docs-static")

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _short(exc)}, status_code=422)

    @app.exception_handler(QueryError)
    async def _query_error(request: Request, exc: QueryError) -> JSONResponse:
        return JSONResponse({"detail": server.state.redact(str(exc))}, status_code=400)

    @app.exception_handler(CatalogError)
    async def _catalog_error(request: Request, exc: CatalogError) -> JSONResponse:
        return JSONResponse({"detail": server.state.redact(str(exc))}, status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("error answering %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error (details are in the server log)"}, status_code=500)

    app.add_middleware(AdmissionMiddleware, limit=config.concurrency)  # innermost: refusals never wait a turn
    app.add_middleware(GZipMiddleware, minimum_size=2048, compresslevel=5)
    if config.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins),
                           allow_methods=["GET", "POST", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "Range"], max_age=600)
    app.add_middleware(CrossSiteMiddleware, allowed_origins=config.cors_origins)
    app.add_middleware(SecurityHeadersMiddleware)
    upload_limit = max_upload_bytes + (1 << 20)  # multipart framing
    app.add_middleware(BodyLimitMiddleware, default_limit=JSON_BODY_LIMIT,
                       limits={"/api/upload/": upload_limit})
    if loopback_only:
        app.add_middleware(LoopbackHostMiddleware)
    app.add_middleware(HeadMiddleware)
    return app
