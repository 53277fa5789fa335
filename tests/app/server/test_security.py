"""Who may talk to the server and what it tells them: tokens, CORS, other sites in the user's browser, bind rules,
HEAD, odd ids, playlist injection, the public address, no server paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from helpers import SERVER_TOKEN
from soundalike.app.server.app import create_app
from soundalike.app.server.security import BindError, check_bind, is_loopback
from soundalike.library.catalog import Library, Track


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


# --- another site in the user's browser, HEAD, ids, playlists, paths --------------------------------------------
def test_cross_site_requests_are_refused(root: Path, client: TestClient, tracks: list[Track]) -> None:
    t = tracks[0].id
    evil = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
    for method, url, body in [("GET", "/api/tracks", None), ("GET", f"/api/tracks/{t}/similar", None),
                              ("POST", "/api/continue", {"track_ids": [t]}), ("GET", "/api/map", None),
                              ("GET", f"/api/tracks/{t}/audio", None), ("GET", f"/rest/getSong?id={t}", None)]:
        answer = client.request(method, url, json=body, headers=evil)
        assert answer.status_code == 403 and "cross-site" in answer.json()["detail"], url
    assert client.post("/api/continue", json={"track_ids": [t]}, headers={"Origin": "http://evil.example"}
                       ).status_code == 403  # an old browser without Sec-Fetch-Site: the Origin tells
    assert client.get("/api/tracks", headers={"Sec-Fetch-Site": "same-site"}).status_code == 403
    # the page itself, a player or a script (no browser headers) and an allowed origin are answered
    assert client.get("/api/tracks", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    assert client.post("/api/continue", json={"track_ids": [t]},
                       headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}).status_code == 200
    assert client.get("/api/tracks").status_code == 200 and client.get("/api/health", headers=evil).status_code == 200
    with TestClient(create_app(root / "lib", cors_origins=["http://player.example"])) as c:
        assert c.get("/api/tracks", headers={"Origin": "http://player.example", "Sec-Fetch-Site": "cross-site"}
                     ).status_code == 200
    audio = client.get(f"/api/tracks/{t}/audio")
    assert audio.headers["cross-origin-resource-policy"] == "same-origin"  # not embeddable by other sites


def test_head_answers_wherever_get_does(client: TestClient, tracks: list[Track]) -> None:
    t = tracks[0]
    for url in ("/", "/api/health", f"/api/tracks/{t.id}", f"/api/tracks/{t.id}/audio", "/rest/ping?f=json"):
        got, head = client.get(url), client.head(url)
        assert head.status_code == got.status_code == 200 and head.content == b"", url
        assert head.headers.get("content-type") == got.headers.get("content-type"), url
    assert int(client.head(f"/api/tracks/{t.id}/audio").headers["content-length"]) == Path(t.path).stat().st_size


def test_odd_ids_are_4xx_not_500(client: TestClient) -> None:
    for url in ("/api/tracks/99999999999999999999999", "/api/tracks/%D9%A1", "/api/tracks/%C2%B2/similar",
                "/api/playlist.m3u?ids=99999999999999999999999", "/api/path?start=%C2%B2&end=1"):
        assert 400 <= client.get(url).status_code < 500, url
    for song in ("²", "١٢", "9" * 40, "-1"):
        body = client.get("/rest/getSong", params={"id": song, "f": "json"}).json()["subsonic-response"]
        assert body["status"] == "failed" and body["error"]["code"] == 70, song
    body = client.get("/rest/getSonicSimilarTracks", params={"id": "1", "count": "²", "f": "json"}).json()
    assert body["subsonic-response"]["status"] == "failed"


def test_tags_cannot_add_playlist_entries_and_urls_use_the_public_address(tmp_path: Path) -> None:
    from soundalike import synth
    from soundalike.library.scan import scan

    y = synth.render_track("rock", seed=1, duration=3.0)
    synth.write_track(tmp_path / "music" / "a.flac", y, 22050, artist="Evil\n/etc/passwd",
                      album="X", title="Song\r\n#EXTINF:1,injected\nhttp://evil.example/x.mp3")
    with Library.open(tmp_path / "lib") as lib:
        scan(lib, [tmp_path / "music"], isolate=False)
    app = create_app(tmp_path / "lib", public_url="https://music.example/soundalike/")
    with TestClient(app, client=("127.0.0.1", 5000)) as c:
        text = c.get("/api/playlist.m3u", params={"ids": "1"}).text
        entries = [line for line in text.splitlines() if not line.startswith("#")]
        assert entries == [str((tmp_path / "music" / "a.flac").resolve())] and len(text.splitlines()) == 4
        urls = c.get("/api/playlist.m3u", params={"ids": "1", "target": "urls"}, headers={"Host": "evil.example"})
        assert [u for u in urls.text.splitlines() if not u.startswith("#")] == [
            "https://music.example/soundalike/api/tracks/1/audio"]


def test_clients_never_see_the_servers_folders(root: Path, client: TestClient, tracks: list[Track]) -> None:
    t = tracks[0]
    answers = [client.get("/api/tracks").text, client.get(f"/api/tracks/{t.id}/similar").text,
               client.get("/api/library").text, client.get(f"/api/tracks/{t.id}/similar?model=melae").text,
               client.post("/api/continue", json={"track_ids": [t.id, 999999]}).text,
               client.get("/api/path", params={"start": t.id, "end": tracks[1].id}).text]
    for text in answers:
        assert str(root) not in text, text[:300]
    assert client.get(f"/api/tracks/{t.id}/similar?model=melae").status_code == 400
