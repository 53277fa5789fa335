"""The HTTP API: every endpoint, bad input, traversal attempts, tokens, range requests, uploads, OpenSubsonic."""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from helpers import make_signal, synth_library, write_audio
from soundalike.app.cli import app as cli_app
from soundalike.app.server import app as server_app
from soundalike.app.server.app import create_app
from soundalike.app.server.run import background_server
from soundalike.app.server.security import BindError, check_bind, is_loopback
from soundalike.library.catalog import Library, Track

STYLES = ["techno", "ambient", "chiptune", "classical"]
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_library(tmp_path_factory.mktemp("server"), STYLES, tracks_per_style=3, duration=6.0, seed=7)


@pytest.fixture(scope="module")
def tracks(root: Path) -> list[Track]:
    with Library.open(root / "lib") as lib:
        return lib.tracks()


@pytest.fixture(scope="module")
def client(root: Path) -> Iterator[TestClient]:
    with TestClient(create_app(root / "lib", refresh_seconds=0.0), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def token_client(root: Path) -> Iterator[TestClient]:
    with TestClient(create_app(root / "lib", token=TOKEN), raise_server_exceptions=False) as c:
        yield c


def _short_error(response, status: int | tuple[int, ...]) -> str:  # type: ignore[no-untyped-def]
    """The response has the expected 4xx status and a short JSON message, never a stack trace."""
    expected = (status,) if isinstance(status, int) else status
    assert response.status_code in expected, (response.status_code, response.text)
    detail = response.json()["detail"]
    assert isinstance(detail, str) and 0 < len(detail) < 300
    assert "Traceback" not in response.text and 'File "' not in response.text
    return detail


# --- page, docs, health -------------------------------------------------------------------------------------------
def test_health_page_and_docs_are_served_locally(client: TestClient) -> None:
    assert client.get("/api/health").json()["status"] == "ok"
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/static/app.js" in page.text and "http" not in page.text.replace("http-equiv", "")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    for asset in ("/static/app.js", "/static/style.css", "/static/favicon.svg"):
        assert client.get(asset).status_code == 200
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs-static/swagger-ui-bundle.js" in docs.text
    assert client.get("/docs-static/swagger-ui-bundle.js").status_code == 200
    assert client.get("/redoc").status_code == 200


def test_openapi_lists_every_endpoint_once(client: TestClient) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FastAPI warns about duplicate operation ids
        spec = client.get("/openapi.json").json()
    paths = set(spec["paths"])
    for path in ("/api/health", "/api/library", "/api/tracks", "/api/tracks/{track_id}",
                 "/api/tracks/{track_id}/audio", "/api/tracks/{track_id}/spectrogram.png",
                 "/api/tracks/{track_id}/similar", "/api/continue", "/api/path", "/api/map", "/api/upload/similar",
                 "/api/playlist.m3u", "/rest/getSonicSimilarTracks", "/rest/findSonicPath"):
        assert path in paths, path
    assert not any(p.endswith(".view") for p in paths)


# --- library and tracks -------------------------------------------------------------------------------------------
def test_library_stats(client: TestClient, tracks: list[Track]) -> None:
    stats = client.get("/api/library").json()
    assert stats["tracks"] == len(tracks) and "default" in stats["models_offered"]


def test_track_listing_pages_cover_the_library_once(client: TestClient, tracks: list[Track]) -> None:
    seen: list[int] = []
    for offset in range(0, len(tracks), 5):
        page = client.get("/api/tracks", params={"offset": offset, "limit": 5}).json()
        assert page["total"] == len(tracks) and page["offset"] == offset
        seen += [t["track_id"] for t in page["items"]]
    assert sorted(seen) == sorted(t.id for t in tracks)
    assert client.get("/api/tracks", params={"offset": 1000}).json()["items"] == []


def test_track_search_matches_words_in_any_order_and_case(client: TestClient, tracks: list[Track]) -> None:
    target = tracks[4]
    words = f"{target.title.split()[0].upper()} {target.artist.split()[-1].lower()}"
    found = client.get("/api/tracks", params={"q": words}).json()
    assert target.id in [t["track_id"] for t in found["items"]]
    exact = client.get("/api/tracks", params={"q": target.title}).json()["items"][0]
    assert exact["track_id"] == target.id
    assert client.get("/api/tracks", params={"q": "zzzz-nothing"}).json()["total"] == 0


def test_track_detail(client: TestClient, tracks: list[Track]) -> None:
    t = tracks[0]
    detail = client.get(f"/api/tracks/{t.id}").json()
    assert detail["title"] == t.title and detail["artist"] == t.artist and detail["duration"] > 0
    assert detail["audio_url"] == f"/api/tracks/{t.id}/audio" and detail["paths"] == [t.path]
    assert detail["size_bytes"] == Path(t.path).stat().st_size
    _short_error(client.get("/api/tracks/999999"), 404)


@pytest.mark.parametrize("bad", ["abc", "-1", "0", "1.5", "99999999999999999999"])
def test_bad_track_ids_answer_422(client: TestClient, bad: str) -> None:
    for suffix in ("", "/audio", "/spectrogram.png", "/similar"):
        _short_error(client.get(f"/api/tracks/{bad}{suffix}"), 422)


# --- audio --------------------------------------------------------------------------------------------------------
def test_audio_whole_file(client: TestClient, tracks: list[Track]) -> None:
    t = next(t for t in tracks if t.path.endswith(".mp3"))
    answer = client.get(f"/api/tracks/{t.id}/audio")
    assert answer.status_code == 200 and answer.headers["content-type"] == "audio/mpeg"
    assert answer.content == Path(t.path).read_bytes()
    assert answer.headers["accept-ranges"] == "bytes"


def test_audio_range_requests(client: TestClient, tracks: list[Track]) -> None:
    t = tracks[1]
    data = Path(t.path).read_bytes()
    part = client.get(f"/api/tracks/{t.id}/audio", headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-1099/{len(data)}"
    assert part.content == data[100:1100]
    tail = client.get(f"/api/tracks/{t.id}/audio", headers={"Range": "bytes=-64"})
    assert tail.status_code == 206 and tail.content == data[-64:]
    open_end = client.get(f"/api/tracks/{t.id}/audio", headers={"Range": f"bytes={len(data) - 10}-"})
    assert open_end.status_code == 206 and open_end.content == data[-10:]
    beyond = client.get(f"/api/tracks/{t.id}/audio", headers={"Range": f"bytes={len(data) + 10}-"})
    assert beyond.status_code == 416


def test_audio_of_a_vanished_file_is_404(root: Path, tmp_path: Path) -> None:
    lib_copy = tmp_path / "lib"
    shutil.copytree(root / "lib", lib_copy)
    with Library.open(lib_copy) as lib:
        t = lib.tracks()[0]
        lib.conn.execute("UPDATE files SET path=? WHERE track_id=?", (str(tmp_path / "gone.wav").encode(), t.id))
    with TestClient(create_app(lib_copy)) as c:
        assert "gone" in _short_error(c.get(f"/api/tracks/{t.id}/audio"), 404)


@pytest.mark.parametrize("url", [
    "/api/tracks/..%2F..%2Fetc%2Fpasswd/audio",
    "/api/tracks/../../etc/passwd/audio",
    "/api/tracks/%2e%2e%2f%2e%2e%2fpyproject.toml/audio",
    "/api/tracks/1/audio/../../../../etc/passwd",
    "/api/tracks/1%2F..%2F..%2Fpyproject.toml/audio",
    "/static/../pyproject.toml",
    "/static/%2e%2e/pyproject.toml",
    "/static/..%2F..%2F..%2Fpyproject.toml",
    "/static/%2e%2e%2f%2e%2e%2f%2e%2e%2fcatalog.py",
    "/static//etc/passwd",
    "/docs-static/../../../../etc/passwd",
    "/rest/stream?id=../../etc/passwd",
    "/api/tracks/1/audio?path=/etc/passwd",
])
def test_traversal_attempts_read_nothing_outside(client: TestClient, tracks: list[Track], url: str) -> None:
    answer = client.get(url)
    body = answer.content
    assert b"root:" not in body and b"[project]" not in body and b"import " not in body
    if url.startswith("/api/tracks/1/audio?"):  # unknown parameters are ignored: track 1's own file
        assert answer.status_code == 200 and body == Path(tracks[0].path).read_bytes()
    elif url.startswith("/rest/"):
        assert answer.json()["subsonic-response"]["status"] == "failed"
    else:
        assert 400 <= answer.status_code < 500


# --- spectrogram --------------------------------------------------------------------------------------------------
def test_spectrogram_png_with_etag(client: TestClient, tracks: list[Track]) -> None:
    from PIL import Image

    url = f"/api/tracks/{tracks[2].id}/spectrogram.png"
    answer = client.get(url, params={"width": 300, "height": 80})
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(answer.content))
    assert image.size == (300, 80)
    again = client.get(url, params={"width": 300, "height": 80}, headers={"If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304
    _short_error(client.get(url, params={"width": 100000}), 422)


# --- recommendations ----------------------------------------------------------------------------------------------
def test_similar(client: TestClient, tracks: list[Track]) -> None:
    q = tracks[0]
    body = client.get(f"/api/tracks/{q.id}/similar", params={"k": 4}).json()
    assert body["query"]["track_id"] == q.id
    ids = [r["track_id"] for r in body["results"]]
    scores = [r["score"] for r in body["results"]]
    assert len(ids) == 4 and q.id not in ids and scores == sorted(scores, reverse=True)
    other = client.get(f"/api/tracks/{q.id}/similar", params={"k": 20, "no_same_album": True}).json()["results"]
    assert other and all(r["album"] != q.album for r in other)
    capped = client.get(f"/api/tracks/{q.id}/similar", params={"k": 8, "max_per_artist": 1}).json()["results"]
    assert len({r["artist"] for r in capped}) == len(capped)


def test_similar_bad_input(client: TestClient, tracks: list[Track]) -> None:
    url = f"/api/tracks/{tracks[0].id}/similar"
    assert "unknown model" in _short_error(client.get(url, params={"model": "../../etc/passwd"}), 400)
    assert "unknown model" in _short_error(client.get(url, params={"model": "pyproject.toml"}), 400)
    assert "distance" in _short_error(client.get(url, params={"distance": "euclid"}), 400)
    assert "segment" in _short_error(client.get(url, params={"distance": "dtw"}), 400)  # descriptors have none
    _short_error(client.get(url, params={"k": 0}), 422)
    _short_error(client.get(url, params={"k": 10**6}), 422)
    _short_error(client.get("/api/tracks/999999/similar"), 404)


def test_continue_playlist(client: TestClient, tracks: list[Track]) -> None:
    seeds = [tracks[0].id, tracks[1].id]
    body = client.post("/api/continue", json={"track_ids": seeds, "k": 5, "score": "mean"}).json()
    assert [t["track_id"] for t in body["playlist"]["tracks"]] == seeds
    ids = [r["track_id"] for r in body["results"]]
    assert len(ids) == 5 and not set(ids) & set(seeds)
    assert "score" in _short_error(client.post("/api/continue", json={"track_ids": seeds, "score": "best"}), 400)
    assert "no usable track" in _short_error(client.post("/api/continue", json={"track_ids": [999999]}), 400)
    _short_error(client.post("/api/continue", json={"track_ids": []}), 422)
    _short_error(client.post("/api/continue", json={"track_ids": ["../x"]}), 422)
    _short_error(client.post("/api/continue", json={"track_ids": [2**70]}), 422)
    _short_error(client.post("/api/continue", content=b"{not json", headers={"content-type": "application/json"}),
                 422)
    big = b'{"track_ids": [' + b"1," * 600_000 + b"1]}"
    _short_error(client.post("/api/continue", content=big, headers={"content-type": "application/json"}), 413)


def test_path(client: TestClient, tracks: list[Track]) -> None:
    a, b = tracks[0].id, tracks[-1].id
    body = client.get("/api/path", params={"start": a, "end": b, "n": 5}).json()
    ids = [r["track_id"] for r in body["results"]]
    assert len(ids) == 5 and ids[0] == a and ids[-1] == b and len(set(ids)) == 5
    assert "same track" in _short_error(client.get("/api/path", params={"start": a, "end": a}), 400)
    _short_error(client.get("/api/path", params={"start": a}), 422)
    _short_error(client.get("/api/path", params={"start": a, "end": 999999}), 404)
    _short_error(client.get("/api/path", params={"start": a, "end": b, "n": 1}), 422)


# --- map ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_map(client: TestClient, tracks: list[Track], method: str) -> None:
    body = client.get("/api/map", params={"method": method}).json()
    assert body["method"] == method and body["count"] == len(tracks)
    assert sorted(body["ids"]) == sorted(t.id for t in tracks)
    assert all(0.0 <= v <= 1.0 for v in body["x"] + body["y"])
    assert len(body["title"]) == len(body["album"]) == len(tracks)
    zipped = client.get("/api/map", params={"method": method}, headers={"Accept-Encoding": "gzip"})
    plain = client.get("/api/map", params={"method": method}, headers={"Accept-Encoding": "identity"})
    assert zipped.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert zipped.json() == plain.json() == body


def test_large_tsne_map_is_computed_in_the_background(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_app, "TSNE_INLINE_MAX", 0)
    with TestClient(create_app(root / "lib")) as c:
        first = c.get("/api/map", params={"method": "tsne"})
        assert first.status_code == 202 and first.headers["retry-after"]
        deadline = time.monotonic() + 60
        while (answer := c.get("/api/map", params={"method": "tsne"})).status_code == 202:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert answer.status_code == 200 and answer.json()["method"] == "tsne"
    _short_error(TestClient(create_app(root / "lib")).get("/api/map", params={"method": "umap"}), 422)


# --- upload -------------------------------------------------------------------------------------------------------
def test_upload_finds_similar_tracks_without_adding_the_file(client: TestClient, tracks: list[Track],
                                                             tmp_path: Path) -> None:
    new = write_audio(tmp_path / "new song.flac", make_signal(5.0, 330.0, seed=11))
    with new.open("rb") as fh:
        body = client.post("/api/upload/similar", params={"k": 3}, files={"file": ("new song.flac", fh)}).json()
    assert body["query"]["input"] == "new song.flac" and body["query"]["in_library"] is False
    assert body["query"]["duration"] == pytest.approx(5.0, abs=0.1) and len(body["results"]) == 3
    assert client.get("/api/library").json()["tracks"] == len(tracks)  # never added
    # A copy of a library track under another name: recognised, and not recommended to itself.
    twin = tracks[3]
    raw = client.post("/api/upload/similar", params={"k": 5, "filename": "copy.ogg"},
                      content=Path(twin.path).read_bytes(), headers={"content-type": "application/octet-stream"})
    assert raw.status_code == 200, raw.text
    assert raw.json()["query"]["same_audio_as"]["track_id"] == twin.id
    assert twin.id not in [r["track_id"] for r in raw.json()["results"]]


def test_bad_uploads_answer_4xx_and_do_not_hurt_the_server(client: TestClient, tracks: list[Track],
                                                           tmp_path: Path) -> None:
    good = Path(tracks[0].path).read_bytes()
    cases = [
        (("notes.mp3", b"this is not audio at all" * 100), (400, 415)),
        (("x.wav", good[:60]), (400, 415)),  # a header and nothing else
        (("broken.ogg", b"OggS" + bytes(range(256)) * 40), (400, 415)),
        (("trunc.mp3", Path(next(t.path for t in tracks if t.path.endswith(".mp3"))).read_bytes()[:1500]),
         (400, 415)),
        (("../../etc/passwd", b"\x00" * 5000), (400, 415)),
        (("empty.wav", b""), 400),
    ]
    for (name, data), status in cases:
        _short_error(client.post("/api/upload/similar", files={"file": (name, data)}), status)
    _short_error(client.post("/api/upload/similar", files={"other": ("a.wav", good)}), 400)
    _short_error(client.post("/api/upload/similar", files={"file": (None, "just text")}), 400)
    # Still answering, and nothing was added.
    assert client.get("/api/health").status_code == 200
    assert client.get(f"/api/tracks/{tracks[0].id}/similar").status_code == 200
    assert client.get("/api/library").json()["tracks"] == len(tracks)


def test_upload_size_limit(root: Path, tracks: list[Track]) -> None:
    data = Path(next(t.path for t in tracks if t.path.endswith(".wav"))).read_bytes()
    assert len(data) > 200_000
    with TestClient(create_app(root / "lib", max_upload_bytes=100_000), raise_server_exceptions=False) as c:
        assert "too large" in _short_error(c.post("/api/upload/similar", files={"file": ("big.wav", data)}), 413)
        raw = c.post("/api/upload/similar", content=data, headers={"content-type": "application/octet-stream"})
        assert "too large" in _short_error(raw, 413)

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while the body streams in
            for i in range(0, len(data), 16384):
                yield data[i:i + 16384]

        streamed = c.post("/api/upload/similar", content=chunks(), headers={"content-type": "audio/wav"})
        assert "too large" in _short_error(streamed, 413)
        assert c.get("/api/health").status_code == 200


# --- playlists ----------------------------------------------------------------------------------------------------
def test_playlist_m3u(client: TestClient, tracks: list[Track]) -> None:
    ids = [tracks[2].id, tracks[0].id]
    answer = client.get("/api/playlist.m3u", params={"ids": ",".join(map(str, ids)), "title": "Road\ntrip"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("audio/x-mpegurl")
    assert "attachment" in answer.headers["content-disposition"]
    lines = answer.text.splitlines()
    assert lines[0] == "#EXTM3U" and "#PLAYLIST:Road trip" in lines
    assert [ln for ln in lines if not ln.startswith("#")] == [tracks[2].path, tracks[0].path]
    urls = client.get("/api/playlist.m3u", params={"ids": str(ids[0]), "target": "urls"}).text
    assert f"/api/tracks/{ids[0]}/audio" in urls and "token" not in urls
    _short_error(client.get("/api/playlist.m3u", params={"ids": "1;rm -rf"}), 422)
    _short_error(client.get("/api/playlist.m3u", params={"ids": "999999,99999999999999999999"}), 404)
    _short_error(client.get("/api/playlist.m3u"), 422)


# --- tokens, hosts, CORS, binding ---------------------------------------------------------------------------------
def test_token_is_required_when_configured(token_client: TestClient, tracks: list[Track]) -> None:
    c = token_client
    t = tracks[0].id
    for url in ("/api/tracks", f"/api/tracks/{t}", f"/api/tracks/{t}/audio", f"/api/tracks/{t}/similar",
                "/api/map", "/api/library", f"/api/playlist.m3u?ids={t}"):
        assert c.get(url).status_code == 401, url
        assert c.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401, url
        assert c.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200, url
    assert c.get(f"/api/tracks/{t}/audio", params={"token": TOKEN}).status_code == 200
    assert c.get(f"/api/tracks/{t}/audio", params={"token": TOKEN[:-1]}).status_code == 401
    assert c.post("/api/continue", json={"track_ids": [t]}).status_code == 401
    assert c.post("/api/upload/similar", files={"file": ("a.wav", b"x")}).status_code == 401
    assert c.get("/api/health").status_code == 200 and c.get("/").status_code == 200  # no data there
    urls = c.get("/api/playlist.m3u", params={"ids": t, "target": "urls", "token": TOKEN}).text
    assert f"token={TOKEN}" in urls  # stream URLs a player can open


def test_loopback_server_refuses_other_host_names(root: Path) -> None:
    app = create_app(root / "lib", loopback_only=True)
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        assert c.get("/api/health").status_code == 200
        assert c.get("/api/tracks", headers={"Host": "localhost:8000"}).status_code == 200
        assert c.get("/api/tracks", headers={"Host": "[::1]:8000"}).status_code == 200
        assert _short_error(c.get("/api/tracks", headers={"Host": "evil.example:8000"}), 421)
        assert _short_error(c.get("/", headers={"Host": "127.0.0.1.evil.example"}), 421)


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


def test_serve_refuses_a_public_bind_without_a_token(root: Path) -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--library", str(root / "lib"), "--host", "0.0.0.0"])
    assert result.exit_code != 0 and "--token" in result.output


def test_serve_refuses_a_port_in_use(root: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli_app, ["serve", "--library", str(root / "lib"), "--port", str(port)])
    assert result.exit_code != 0 and "in use" in result.output


def test_unexpected_errors_answer_500_without_details(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail /home/user/x")

    monkeypatch.setattr(Library, "search", boom)
    with TestClient(create_app(root / "lib"), raise_server_exceptions=False) as c:
        answer = c.get("/api/tracks")
    assert answer.status_code == 500 and "secret" not in answer.text and "Traceback" not in answer.text


# --- OpenSubsonic -------------------------------------------------------------------------------------------------
def _subsonic(c: TestClient, endpoint: str, method: str = "GET", **params: object) -> dict:  # type: ignore[type-arg]
    answer = c.request(method, f"/rest/{endpoint}", params={"f": "json", "v": "1.16.1", "c": "test", **params})
    assert answer.status_code == 200
    body: dict = answer.json()["subsonic-response"]  # type: ignore[type-arg]
    assert body["openSubsonic"] is True and body["version"]
    return body


def test_subsonic_sonic_similar_tracks(client: TestClient, tracks: list[Track]) -> None:
    q = tracks[5]
    body = _subsonic(client, "getSonicSimilarTracks", id=q.id, count=4)
    matches = body["sonicMatch"]
    assert body["status"] == "ok" and len(matches) == 4
    sims = [m["similarity"] for m in matches]
    assert all(0.0 <= s <= 1.0 for s in sims) and sims == sorted(sims, reverse=True)
    entry = matches[0]["entry"]
    assert {"id", "title", "artist", "album", "duration", "isDir", "suffix", "contentType"} <= set(entry)
    assert str(q.id) not in [m["entry"]["id"] for m in matches]
    # The .view spelling and POST, as older clients send them; default count 10 (at most the library).
    assert len(_subsonic(client, "getSonicSimilarTracks.view", "POST", id=q.id)["sonicMatch"]) == 10
    assert _subsonic(client, "getSonicSimilarTracks")["error"]["code"] == 10
    assert _subsonic(client, "getSonicSimilarTracks", id=999999)["error"]["code"] == 70
    assert _subsonic(client, "getSonicSimilarTracks", id="../../etc")["error"]["code"] == 70


def test_subsonic_find_sonic_path(client: TestClient, tracks: list[Track]) -> None:
    a, b = tracks[0].id, tracks[-1].id
    body = _subsonic(client, "findSonicPath", startSongId=a, endSongId=b, count=5)
    ids = [m["entry"]["id"] for m in body["sonicMatch"]]
    assert len(ids) == 5 and ids[0] == str(a) and ids[-1] == str(b)
    assert body["sonicMatch"][0]["similarity"] == pytest.approx(1.0)
    assert _subsonic(client, "findSonicPath", startSongId=a)["error"]["code"] == 10
    assert _subsonic(client, "findSonicPath", startSongId=a, endSongId=a)["status"] == "failed"


def test_subsonic_helpers_and_auth(client: TestClient, token_client: TestClient, tracks: list[Track]) -> None:
    extensions = _subsonic(client, "getOpenSubsonicExtensions")["openSubsonicExtensions"]
    assert {"name": "sonicSimilarity", "versions": [1]} in extensions
    assert _subsonic(client, "ping")["status"] == "ok"
    assert _subsonic(client, "getSong", id=tracks[0].id)["song"]["title"] == tracks[0].title
    stream = client.get("/rest/stream", params={"id": tracks[0].id}, headers={"Range": "bytes=0-9"})
    assert stream.status_code == 206 and stream.content == Path(tracks[0].path).read_bytes()[:10]
    # With a token: apiKey (or token), never user names and passwords.
    assert _subsonic(token_client, "ping")["error"]["code"] == 44
    assert _subsonic(token_client, "ping", apiKey="nope")["error"]["code"] == 44
    assert _subsonic(token_client, "ping", u="admin", p="admin")["error"]["code"] == 42
    assert _subsonic(token_client, "ping", apiKey=TOKEN, u="admin")["error"]["code"] == 43
    assert _subsonic(token_client, "ping", apiKey=TOKEN)["status"] == "ok"
    assert _subsonic(token_client, "getSonicSimilarTracks", id=tracks[0].id, count=2,
                     apiKey=TOKEN)["status"] == "ok"
    assert _subsonic(token_client, "getOpenSubsonicExtensions")["status"] == "ok"  # no auth, by the spec
    assert token_client.get("/rest/stream", params={"id": tracks[0].id}).json()["subsonic-response"]["error"]


# --- reliability --------------------------------------------------------------------------------------------------
def test_server_answers_while_index_adds_tracks(tmp_path: Path) -> None:
    from soundalike import synth

    root = synth_library(tmp_path, ["techno", "ambient"], tracks_per_style=2, duration=4.0, seed=3)
    synth.make_library(tmp_path / "more", styles=["chiptune", "classical"], tracks_per_style=3, duration=4.0,
                       seed=4)
    errors: list[str] = []
    totals: list[int] = []
    with TestClient(create_app(root / "lib", refresh_seconds=0.0), raise_server_exceptions=False) as c:
        first = c.get("/api/tracks").json()["items"][0]["track_id"]
        indexer = subprocess.Popen([sys.executable, "-m", "soundalike", "index", str(tmp_path / "more"),
                                    "--library", str(root / "lib"), "--jobs", "1"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        while indexer.poll() is None or len(totals) < 5:
            for url in ("/api/tracks", f"/api/tracks/{first}/similar?k=3", "/api/map", f"/api/tracks/{first}"):
                answer = c.get(url)
                if answer.status_code != 200:
                    errors.append(f"{url}: {answer.status_code} {answer.text[:200]}")
            totals.append(c.get("/api/tracks").json()["total"])
        assert indexer.returncode == 0, indexer.stderr.read().decode() if indexer.stderr else ""
        assert not errors
        final = c.get("/api/tracks").json()
        assert final["total"] == 10 and totals[0] == 4 and totals == sorted(totals)
        newest = max(t["track_id"] for t in final["items"])
        assert c.get(f"/api/tracks/{newest}/similar", params={"k": 3}).status_code == 200
        assert c.get("/api/map").json()["count"] == 10


def test_concurrent_requests_from_many_threads(client: TestClient, tracks: list[Track]) -> None:
    failures: list[str] = []

    def worker(i: int) -> None:
        t = tracks[i % len(tracks)]
        for url in (f"/api/tracks/{t.id}/similar?k=3", f"/api/tracks?q={t.artist.split()[0]}",
                    f"/api/tracks/{t.id}/spectrogram.png?width=200&height=50"):
            answer = client.get(url)
            if answer.status_code != 200:
                failures.append(f"{url}: {answer.status_code}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not failures


def test_serve_command_runs_a_real_server(root: Path) -> None:
    with background_server(root / "lib") as server:
        url = server.url
        with urllib.request.urlopen(f"{url}/api/tracks?limit=2") as answer:
            assert json.load(answer)["total"] == 12
        request = urllib.request.Request(f"{url}/api/tracks", headers={"Host": "attacker.example"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request)
        assert refused.value.code == 421
