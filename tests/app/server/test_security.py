"""Who may talk to the server: tokens, loopback Host names, CORS, bind rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from helpers import SERVER_TOKEN
from soundalike.app.server.app import create_app
from soundalike.app.server.security import BindError, check_bind, is_loopback
from soundalike.library.catalog import Track


# --- tokens, hosts, CORS, binding ---------------------------------------------------------------------------------
def test_token_is_required_when_configured(token_client: TestClient, tracks: list[Track]) -> None:
    c = token_client
    t = tracks[0].id
    for url in ("/api/tracks", f"/api/tracks/{t}", f"/api/tracks/{t}/audio", f"/api/tracks/{t}/similar",
                "/api/map", "/api/library", f"/api/playlist.m3u?ids={t}"):
        assert c.get(url).status_code == 401, url
        assert c.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401, url
        assert c.get(url, headers={"Authorization": f"Bearer {SERVER_TOKEN}"}).status_code == 200, url
    assert c.get(f"/api/tracks/{t}/audio", params={"token": SERVER_TOKEN}).status_code == 200
    assert c.get(f"/api/tracks/{t}/audio", params={"token": SERVER_TOKEN[:-1]}).status_code == 401
    assert c.post("/api/continue", json={"track_ids": [t]}).status_code == 401
    assert c.post("/api/upload/similar", files={"file": ("a.wav", b"x")}).status_code == 401
    assert c.get("/api/health").status_code == 200 and c.get("/").status_code == 200  # no data there
    urls = c.get("/api/playlist.m3u", params={"ids": t, "target": "urls", "token": SERVER_TOKEN}).text
    assert f"token={SERVER_TOKEN}" in urls  # stream URLs a player can open


def test_cors_is_off_unless_an_origin_is_given(root: Path, client: TestClient) -> None:
    origin = {"Origin": "http://elsewhere.example"}
    assert "access-control-allow-origin" not in client.get("/api/tracks", headers=origin).headers
    preflight = client.options("/api/tracks", headers={**origin, "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in preflight.headers
    with TestClient(create_app(root / "lib", cors_origins=["http://player.example"])) as c:
        ok = c.get("/api/tracks", headers={"Origin": "http://player.example"})
        assert ok.headers["access-control-allow-origin"] == "http://player.example"
        assert "access-control-allow-origin" not in c.get("/api/tracks", headers=origin).headers


def test_bind_rules() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"):
        assert is_loopback(host)
        check_bind(host, None)
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.org"):
        assert not is_loopback(host)
        with pytest.raises(BindError, match="--token"):
            check_bind(host, None)
        check_bind(host, "t")
        check_bind(host, None, insecure=True)
