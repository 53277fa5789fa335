"""The server's ASGI middleware: the Host check of a tokenless server, body limits as JSON errors, headers, the
admission of API requests."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from helpers import short_error
from soundalike.app.server.app import create_app
from soundalike.app.server.middleware import AdmissionMiddleware, default_concurrency, host_name
from soundalike.library.catalog import Track


def test_host_names_parse_with_ports_and_ipv6() -> None:
    assert [host_name(h) for h in ("localhost:8000", "[::1]:8000", "[::1]", "127.0.0.2", " example.org ")] == \
        ["localhost", "::1", "::1", "127.0.0.2", "example.org"]


def test_loopback_server_refuses_other_host_names(root: Path) -> None:
    app = create_app(root / "lib", loopback_only=True)
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        assert c.get("/api/health").status_code == 200
        assert c.get("/api/tracks", headers={"Host": "localhost:8000"}).status_code == 200
        assert c.get("/api/tracks", headers={"Host": "[::1]:8000"}).status_code == 200
        assert short_error(c.get("/api/tracks", headers={"Host": "evil.example:8000"}), 421)
        assert short_error(c.get("/", headers={"Host": "127.0.0.1.evil.example"}), 421)
        assert c.get("/api/tracks", headers={"Host": "127.0.0.2:8000"}).status_code == 200  # any loopback address


def test_body_limits_answer_json_by_declared_length_and_by_stream(client: TestClient) -> None:
    big = b'{"track_ids": [' + b"1," * 600_000 + b"1]}"
    assert "1 MB" in short_error(client.post("/api/continue", content=big,
                                             headers={"content-type": "application/json"}), 413)

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(3):
            yield b"x" * 600_000

    streamed = client.post("/api/continue", content=chunks(), headers={"content-type": "application/json"})
    assert "too large" in short_error(streamed, 413)
    assert short_error(client.post("/api/continue", content=b"{}", headers={"content-length": "abc"}), 400)


def test_security_headers_on_every_answer(client: TestClient) -> None:
    for url in ("/", "/api/health", "/api/tracks", "/docs"):
        headers = client.get(url).headers
        assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer" and "frame-ancestors 'none'" in \
            headers["content-security-policy"]
    assert "'unsafe-inline'" in client.get("/docs").headers["content-security-policy"]  # Swagger starts inline
    assert "'unsafe-inline'" not in client.get("/").headers["content-security-policy"]


def _admitted(paths: list[str], limit: int) -> tuple[int, list[str]]:
    """Send requests for ``paths`` at once through :class:`AdmissionMiddleware` around an app that takes a while:
    the most requests inside the app at once, and the order they entered it."""
    inside = peak = 0
    entered: list[str] = []

    async def slow_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal inside, peak
        inside += 1
        peak = max(peak, inside)
        entered.append(scope["path"])
        await asyncio.sleep(0.02)
        inside -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    gate = AdmissionMiddleware(slow_app, limit=limit)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        return None

    async def main() -> None:
        await asyncio.gather(*(gate({"type": "http", "path": p, "method": "GET"}, receive, send) for p in paths))

    asyncio.run(main())
    return peak, entered


def test_admission_lets_limit_requests_compute_at_once_first_come_first_served() -> None:
    paths = [f"/api/tracks/{i}/similar" for i in range(1, 9)] + ["/rest/search3.view", "/api/health"]
    assert _admitted(paths, limit=2) == (2, paths)  # never more than 2 inside, in the order they came
    assert _admitted(paths, limit=1)[0] == 1
    assert _admitted(paths, limit=16)[0] == len(paths)


def test_a_slow_reader_gives_its_slot_back_once_its_answer_is_sent() -> None:
    draining, entered = asyncio.Event(), []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        entered.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        await send({"type": "http.response.body", "body": b"y"})

    gate = AdmissionMiddleware(app, limit=1)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def slow_send(message: dict[str, Any]) -> None:  # the first client reads its last part slowly
        if message["type"] == "http.response.body" and not message.get("more_body"):
            await draining.wait()

    async def send(message: dict[str, Any]) -> None:
        return None

    async def main() -> None:
        first = asyncio.create_task(gate({"type": "http", "path": "/api/a"}, receive, slow_send))
        await asyncio.sleep(0.01)
        assert entered == ["/api/a"] and not first.done()  # still sending
        await asyncio.wait_for(gate({"type": "http", "path": "/api/b"}, receive, send), 5)  # admitted meanwhile
        assert entered == ["/api/a", "/api/b"]
        draining.set()
        await first
        assert gate._slots is not None and gate._slots._value == 1  # every slot back, once each

    asyncio.run(main())


def test_admission_does_not_count_streams_uploads_or_pages() -> None:
    streams = ["/api/tracks/3/audio", "/rest/stream", "/rest/stream.view", "/rest/download.view",
               "/api/upload/similar", "/static/app.js", "/"]
    assert _admitted(streams, limit=1)[0] == len(streams)


def test_requests_wait_their_turn_in_the_app(root: Path, tracks: list[Track]) -> None:
    app = create_app(root / "lib", concurrency=1)
    assert app.state.server.config.concurrency == 1
    assert create_app(root / "lib").state.server.config.concurrency == default_concurrency() >= 1
    with TestClient(app) as c:
        assert c.get("/api/health").status_code == 200  # the first request builds the middleware and its slots
        gate: Any = app.middleware_stack
        while not isinstance(gate, AdmissionMiddleware):  # the app's own admission, innermost of the middleware
            gate = gate.app
        slots, held, release = gate._slots, threading.Event(), asyncio.Event()
        assert slots is not None

        async def hold() -> None:
            async with slots:
                held.set()
                await release.wait()

        c.portal.start_task_soon(hold)
        assert held.wait(10)
        answers: dict[str, Any] = {}
        waiting = [threading.Thread(target=lambda u=url: answers.__setitem__(u, c.get(u)))
                   for url in (f"/api/tracks/{tracks[0].id}/similar?k=3", "/rest/search3?f=json&v=1.16.1&c=t&query=a")]
        for t in waiting:
            t.start()
        assert c.get(f"/api/tracks/{tracks[0].id}/audio", headers={"Range": "bytes=0-9"}).status_code == 206
        for t in waiting:
            t.join(0.5)
        assert not answers and all(t.is_alive() for t in waiting)  # the one slot is taken: they wait
        c.portal.call(release.set)
        for t in waiting:
            t.join(60)
        assert sorted(a.status_code for a in answers.values()) == [200, 200]


def test_a_server_config_admits_one_request_a_cpu_by_default(root: Path) -> None:
    from soundalike.app.server.app import ServerConfig

    assert ServerConfig(root / "lib").concurrency == default_concurrency() >= 1
