"""OpenSubsonic endpoints, so music servers and players can ask us for sonically similar tracks.

The ``sonicSimilarity`` extension (version 1) defines ``getSonicSimilarTracks`` (``id``, ``count`` = 10) and
``findSonicPath`` (``startSongId``, ``endSongId``, ``count`` = 25). We answer as Navidrome does: the
``subsonic-response`` envelope (``status``, ``version``, ``type``, ``serverVersion``, ``openSubsonic: true``) with
a ``sonicMatch`` list of ``{"entry": Child, "similarity": s}``, where ``s`` in [0, 1] is ``(1 + cosine) / 2``
(1 = the same sound) — for a path, relative to the start song. Song ids are our catalogue ids as strings.
``ping``, ``getOpenSubsonicExtensions``, ``getSong`` and ``stream`` are there too so a client can check the
server, look a song up and play it. Answers are JSON (``f=json``; XML is not offered). Errors follow Subsonic:
HTTP 200 with ``status: failed`` and an error code (10 missing parameter, 44 bad API key, 70 not found).

Authentication: with ``soundalike serve --token T``, pass ``apiKey=T`` (the ``apiKeyAuthentication`` extension),
``token=T`` or ``Authorization: Bearer T``; user name and password parameters are refused with code 42.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from soundalike import __version__
from soundalike.library.catalog import CatalogError, Track
from soundalike.recommend import QueryError, path_between, similar

from .media import audio_content_type
from .security import token_matches
from .state import ModelNameError

API_VERSION = "1.16.1"
EXTENSIONS = [{"name": "sonicSimilarity", "versions": [1]}, {"name": "apiKeyAuthentication", "versions": [1]}]

rest = APIRouter(prefix="/rest", tags=["OpenSubsonic"])


def envelope(status: str = "ok", **fields: Any) -> JSONResponse:
    """A ``subsonic-response`` JSON answer."""
    body = {"status": status, "version": API_VERSION, "type": "soundalike", "serverVersion": __version__,
            "openSubsonic": True, **fields}
    return JSONResponse({"subsonic-response": body})


def failure(code: int, message: str) -> JSONResponse:
    """A Subsonic error answer (HTTP 200, ``status: failed``)."""
    return envelope("failed", error={"code": code, "message": message})


class SubsonicError(Exception):
    """Answered as a Subsonic error envelope."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def child(track: Track) -> dict[str, Any]:
    """A Subsonic ``Child`` (song) for a library track."""
    suffix = Path(track.path).suffix.lstrip(".").lower()
    return {"id": str(track.id), "isDir": False, "title": track.title, "album": track.album, "artist": track.artist,
            "duration": int(round(track.duration)), "suffix": suffix, "contentType": audio_content_type(track.path),
            "type": "music", "mediaType": "song", "isVideo": False}


def similarity(cosine: float) -> float:
    """A cosine similarity in [-1, 1] as the extension's normalised similarity in [0, 1]."""
    return round(min(1.0, max(0.0, (1.0 + float(cosine)) / 2.0)), 6)


def _authorise(request: Request) -> None:
    expected = request.app.state.server.config.token
    params = request.query_params
    if expected is None:
        return
    api_key = params.get("apiKey")
    if api_key is not None and params.get("u") is not None:
        raise SubsonicError(43, "Multiple conflicting authentication mechanisms provided")
    header = request.headers.get("authorization", "")
    bearer = header[7:].strip() if header.lower().startswith("bearer ") else None
    given = api_key or params.get("token") or bearer
    if given is None and params.get("u") is not None:
        raise SubsonicError(42, "Password authentication not supported. Use API keys (apiKey=TOKEN)")
    if not token_matches(given, expected):
        raise SubsonicError(44, "Invalid API key")


def _int_param(request: Request, name: str, default: int | None = None, *, lo: int = 1, hi: int = 500) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        if default is None:
            raise SubsonicError(10, f"Required parameter is missing: {name}")
        return default
    if not (raw.isascii() and raw.lstrip("-").isdigit()) or len(raw) > 18:
        raise SubsonicError(0, f"{name} must be a whole number")
    value = int(raw)
    return min(hi, max(lo, value))


def _song_id(request: Request, name: str) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        raise SubsonicError(10, f"Required parameter is missing: {name}")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise SubsonicError(70, f"Song not found: {raw[:40]}")
    track = request.app.state.server.state.track(int(raw))
    if track is None:
        raise SubsonicError(70, f"Song not found: {raw[:40]}")
    return int(raw)


Endpoint = Callable[[Request], Response]


def _answer(request: Request, work: Callable[[], Response]) -> Response:
    try:
        _authorise(request)
        return work()
    except SubsonicError as exc:
        return failure(exc.code, exc.message)
    except (QueryError, CatalogError, ModelNameError) as exc:
        return failure(0, str(exc))


def _register(name: str, summary: str) -> Callable[[Endpoint], Endpoint]:
    """Route ``/rest/NAME`` and ``/rest/NAME.view``, GET and POST (clients use all four); only GET ``/rest/NAME``
    is listed in the OpenAPI document."""
    def wrap(fn: Endpoint) -> Endpoint:
        for path in (f"/{name}", f"/{name}.view"):
            for method in ("GET", "POST"):
                listed = method == "GET" and not path.endswith(".view")
                rest.add_api_route(path, fn, methods=[method], summary=summary if listed else None,
                                   include_in_schema=listed, response_class=JSONResponse,
                                   operation_id=f"subsonic_{name}" if listed else f"subsonic_{name}_{method}{path}")
        return fn

    return wrap


@_register("ping", "Subsonic ping")
def ping(request: Request) -> Response:
    """An empty ``ok`` answer (checks the server and the credentials)."""
    return _answer(request, envelope)


@_register("getOpenSubsonicExtensions", "The OpenSubsonic extensions we implement")
def get_extensions(request: Request) -> Response:
    """``sonicSimilarity`` v1 and ``apiKeyAuthentication`` v1 (this endpoint needs no authentication)."""
    return envelope(openSubsonicExtensions=EXTENSIONS)


@_register("getSong", "One song by id")
def get_song(request: Request) -> Response:
    """The ``Child`` of one catalogue track."""
    def work() -> Response:
        track = request.app.state.server.state.track(_song_id(request, "id"))
        return envelope(song=child(track))

    return _answer(request, work)


@_register("getSonicSimilarTracks", "Sonically similar tracks (sonicSimilarity extension)")
def get_sonic_similar_tracks(request: Request) -> Response:
    """Parameters ``id`` (required) and ``count`` (default 10, at most 500): the ``count`` tracks that sound most
    like song ``id``, as ``sonicMatch`` entries with ``similarity`` in [0, 1] (1 = the same sound)."""
    def work() -> Response:
        server = request.app.state.server
        song = _song_id(request, "id")
        count = _int_param(request, "count", 10)
        lib = server.state.lib()
        _, results = similar(lib, str(song), count, indexes=server.state.index)
        return envelope(sonicMatch=[{"entry": child(r.track), "similarity": similarity(r.score)} for r in results])

    return _answer(request, work)


@_register("findSonicPath", "A path of songs between two songs (sonicSimilarity extension)")
def find_sonic_path(request: Request) -> Response:
    """Parameters ``startSongId``, ``endSongId`` (required) and ``count`` (songs in the path including both ends,
    default 25): ``sonicMatch`` entries in order, each with its ``similarity`` to the start song."""
    def work() -> Response:
        server = request.app.state.server
        start = _song_id(request, "startSongId")
        end = _song_id(request, "endSongId")
        if start == end:
            raise SubsonicError(0, "startSongId and endSongId are the same song")
        count = _int_param(request, "count", 25, lo=2)
        a, _, results = path_between(server.state.lib(), str(start), str(end), count, indexes=server.state.index)
        matches = [{"entry": child(r.track), "similarity": similarity(float(a.index.vector_of(r.track.id) @ a.vector))}
                   for r in results]
        return envelope(sonicMatch=matches)

    return _answer(request, work)


@_register("stream", "Stream a song")
def stream(request: Request) -> Response:
    """The song's file as on disk (range requests supported); ``maxBitRate`` and ``format`` are ignored."""
    def work() -> Response:
        server = request.app.state.server
        song = _song_id(request, "id")
        path = server.state.file_of(song)
        if path is None:
            raise SubsonicError(70, f"The file of song {song} is gone")
        return FileResponse(path, media_type=audio_content_type(path))

    return _answer(request, work)
