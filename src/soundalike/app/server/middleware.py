"""Plain ASGI middleware: Host check, request body limits, security headers, admission of API requests."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

from .security import is_loopback

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PAGE_CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; "
            "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")
# Swagger UI and ReDoc pages start themselves with an inline script.
DOCS_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
            "frame-ancestors 'none'")


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def host_name(header: str) -> str:
    """The host part of a ``Host`` header (``[::1]:8000`` -> ``::1``, ``localhost:80`` -> ``localhost``)."""
    header = header.strip()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class LoopbackHostMiddleware:
    """Answer only requests addressed to a loopback host name (a defence against DNS rebinding).

    Not Starlette's ``TrustedHostMiddleware``: tried with the names it would need, it answers 400 with a plain-text
    "Invalid host header" (this API's errors are JSON, with a hint: start the server with --token), accepts only the
    names listed (this accepts every loopback address, 127.0.0.2 or ``[::1]:8000`` too) and redirects to ``www.``
    names; 421 Misdirected Request is the status for a request sent to the wrong server."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = dict(scope.get("headers") or [])
            host = headers.get(b"host", b"").decode("latin-1")
            if not is_loopback(host_name(host)):
                await _send_json(send, 421, "this server answers only requests to localhost / 127.0.0.1 "
                                            "(start it with --token to serve other names)")
                return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuse request bodies above a limit: at once by ``Content-Length``, or when a streamed body crosses it.

    Not Starlette's ``RequestBodyLimitMiddleware`` (1.x): tried in its place (one limit for the app, a larger one
    wrapped around the upload route), a JSON body whose Content-Length is over the limit got a text/plain
    "Content Too Large" — the middleware answers by itself once FastAPI starts its error response — where every
    error of this API is ``{"detail": ...}`` saying the limit; this one also takes limits by path prefix."""

    def __init__(self, app: ASGIApp, *, default_limit: int, limits: dict[str, int]) -> None:
        self.app = app
        self.default_limit = default_limit
        self.limits = limits  # path prefix -> limit

    def limit_for(self, path: str) -> int:
        """The body limit of a request path."""
        for prefix, limit in self.limits.items():
            if path.startswith(prefix):
                return limit
        return self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _send_json(send, 400, "bad Content-Length header")
                return
            if declared > limit:
                await _send_json(send, 413, f"request body too large (limit {limit // (1 << 20)} MB)")
                return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, f"request body too large (limit {limit // (1 << 20)} MB)")
            return message

        await self.app(scope, limited_receive, send)


class SecurityHeadersMiddleware:
    """``nosniff``, no referrer (tokens may travel in URLs), no framing, a strict CSP on the page, and
    ``Cross-Origin-Resource-Policy: same-origin`` (another site cannot embed the library's audio or images)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        csp = DOCS_CSP if path in ("/docs", "/redoc") else PAGE_CSP

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                for name, value in ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                                    (b"x-frame-options", b"DENY"), (b"content-security-policy", csp.encode()),
                                    (b"cross-origin-opener-policy", b"same-origin"),
                                    (b"cross-origin-resource-policy", b"same-origin")):
                    if name not in names:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class HeadMiddleware:
    """Answer ``HEAD`` wherever ``GET`` is answered: the same status and headers, no body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


class CrossSiteMiddleware:
    """Refuse requests another web site makes from the user's browser (``Sec-Fetch-Site: cross-site`` or
    ``same-site``, or an ``Origin`` that is not this server's) to the API and the Subsonic endpoints, unless that
    origin was allowed with ``--cors-origin``: a page open elsewhere cannot start analyses, fetch the library or
    probe it. Requests that are not from a browser page (players, scripts) carry neither header."""

    def __init__(self, app: ASGIApp, *, allowed_origins: tuple[str, ...] = ()) -> None:
        self.app = app
        self.allowed = {o.rstrip("/").lower() for o in allowed_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path.startswith("/api/") or path.startswith("/rest/")) \
                and path != "/api/health" and self._cross_site(scope):
            await _send_json(send, 403, "cross-site request refused (start the server with --cors-origin ORIGIN "
                                        "to allow a web page elsewhere)")
            return
        await self.app(scope, receive, send)

    def _cross_site(self, scope: Scope) -> bool:
        headers = dict(scope.get("headers") or [])
        origin = headers.get(b"origin", b"").decode("latin-1").rstrip("/").lower()
        if origin and origin in self.allowed:
            return False
        site = headers.get(b"sec-fetch-site", b"").decode("latin-1").lower()
        if site in ("cross-site", "same-site"):
            return True
        if origin and origin != "null":
            host = headers.get(b"host", b"").decode("latin-1").lower()
            return origin.split("://", 1)[-1] != host
        return origin == "null"  # sandboxed frames and file:// pages


def default_concurrency() -> int:
    """API requests a server computes at once by default: one for each CPU this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _streams(path: str) -> bool:
    """Whether ``path`` streams a file or takes an upload: it lasts as long as the client reads or sends."""
    if path.startswith("/api/upload/"):
        return True
    if path.startswith("/api/tracks/") and path.endswith("/audio"):
        return True
    return path.split(".", 1)[0] in ("/rest/stream", "/rest/download")


class AdmissionMiddleware:
    """Let at most ``limit`` API requests compute at once; the others wait their turn in the event loop, first
    come first served (asyncio's semaphore wakes its waiters in order).

    Every request runs in threads of one process, and the threads take turns on the interpreter (the GIL): with
    every request admitted at once, each is stretched by all the others and each return from SQLite, faiss or
    numpy waits for the interpreter again. Admitting about as many as there are cores served more requests a
    second at less CPU each at a million tracks (docs/scaling.md). Every API request queues, the cheap ones too:
    queueing only the searches (a dependency of theirs) was tried in exploratory runs, and their p99 was worse
    than without any queue, for a reason not found. uvicorn's ``--limit-concurrency`` answers 503 instead of
    queueing; anyio's thread limiter queues each thread trip of a request (dependencies, endpoint, response
    validation) on its own; FastAPI's ``Depends(max_concurrency=)`` fixes its limit at import, where this one is
    a server option. File streams and uploads are not counted: they last as long as the client, and uploads
    have slots of their own. A request gives its slot back as it sends its answer's last part, not once the
    client has read it."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = max(1, int(limit))
        self._slots: asyncio.Semaphore | None = None  # made in the server's event loop, on the first request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path.startswith("/api/") or path.startswith("/rest/")) or _streams(path):
            await self.app(scope, receive, send)
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        slots = self._slots
        await slots.acquire()
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                slots.release()

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                release()  # the answer is made: a slow reader does not keep others waiting while it drains
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            release()
