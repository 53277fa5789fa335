"""The server's ASGI middleware: the Host check of a tokenless server, body limits as JSON errors, headers."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from helpers import short_error
from soundalike.app.server.app import create_app
from soundalike.app.server.middleware import host_name


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
