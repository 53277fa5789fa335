"""The JSON API (FastAPI's TestClient): page and docs, tracks, search, recommendations, M3U, errors."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from helpers import short_error
from soundalike.app.server import app as server_app
from soundalike.app.server.app import create_app
from soundalike.library.catalog import Library, Track
from soundalike.models.pretrained import default_metrics


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


def test_a_request_hands_its_work_to_the_pool_once(client: TestClient, tracks: list[Track],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The blocking endpoints run in a pool thread, and their answers are validated against the response model on
    the event loop: one trip to the pool a request, not FastAPI's two for a plain ``def`` (``threaded``)."""
    import fastapi.routing
    from starlette.concurrency import run_in_threadpool

    trips: list[str] = []
    loop_thread: list[int] = []

    async def counted(func, *args, **kwargs):  # type: ignore[no-untyped-def]
        trips.append(getattr(func, "__name__", repr(func)))
        loop_thread.append(threading.get_ident())
        return await run_in_threadpool(func, *args, **kwargs)

    monkeypatch.setattr(server_app, "run_in_threadpool", counted)
    monkeypatch.setattr(fastapi.routing, "run_in_threadpool", counted)
    ran_in: list[int] = []
    real_similar = server_app.similar

    def watched_similar(*args, **kwargs):  # type: ignore[no-untyped-def]
        ran_in.append(threading.get_ident())
        return real_similar(*args, **kwargs)

    monkeypatch.setattr(server_app, "similar", watched_similar)
    a, b = tracks[0].id, tracks[1].id
    for url, endpoint in ((f"/api/tracks/{a}/similar?k=3", "track_similar"), (f"/api/tracks/{a}", "track_detail"),
                          (f"/api/tracks?q={tracks[0].title.split()[0]}", "list_tracks"),
                          (f"/api/path?start={a}&end={b}&n=3", "tracks_path")):
        trips.clear()
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert trips == [endpoint], url  # the endpoint's trip; none for validating its answer
    assert client.post("/api/continue", json={"track_ids": [a, b], "k": 3}).status_code == 200
    assert ran_in and ran_in[0] != loop_thread[0]  # the work ran in a pool thread, not on the event loop
    trips.clear()
    assert client.get("/api/health").json()["status"] == "ok" and trips == []  # answered on the loop


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


def test_a_search_counts_its_matches_up_to_a_cap(client: TestClient, tracks: list[Track],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    word = tracks[0].artist.split()[0]
    full = client.get("/api/tracks", params={"q": word, "limit": 500}).json()
    assert full["total"] == len(full["items"]) >= 2 and full["total_exact"] is True
    monkeypatch.setattr(server_app, "SEARCH_TOTAL_CAP", 1)
    capped = client.get("/api/tracks", params={"q": word, "limit": 500}).json()
    assert capped["total"] == 1 and capped["total_exact"] is False  # "1+": counting stopped at the cap
    assert capped["items"] == full["items"]  # the results themselves are not capped
    listing = client.get("/api/tracks").json()  # the library listing is always counted exactly
    assert listing["total"] == len(tracks) and listing["total_exact"] is True


def test_track_detail(client: TestClient, tracks: list[Track], root: Path) -> None:
    t = tracks[0]
    detail = client.get(f"/api/tracks/{t.id}").json()
    assert detail["title"] == t.title and detail["artist"] == t.artist and detail["duration"] > 0
    relative = str(Path(t.path).relative_to(root / "music"))
    assert detail["audio_url"] == f"/api/tracks/{t.id}/audio" and detail["paths"] == [relative]
    assert detail["path"] == relative  # never the server's absolute paths
    assert detail["size_bytes"] == Path(t.path).stat().st_size
    short_error(client.get("/api/tracks/999999"), 404)


@pytest.mark.parametrize("bad", ["abc", "-1", "0", "1.5", "99999999999999999999"])
def test_bad_track_ids_answer_422(client: TestClient, bad: str) -> None:
    for suffix in ("", "/audio", "/spectrogram.png", "/similar"):
        short_error(client.get(f"/api/tracks/{bad}{suffix}"), 422)


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
        assert b'status="failed"' in body  # a Subsonic error, in XML (the protocol's default)
    else:
        assert 400 <= answer.status_code < 500


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
    assert "unknown model" in short_error(client.get(url, params={"model": "../../etc/passwd"}), 400)
    assert "unknown model" in short_error(client.get(url, params={"model": "pyproject.toml"}), 400)
    assert "unknown model" in short_error(client.get(url, params={"model": "descriptor~nnx"}), 400)
    smoothed = client.get(url, params={"model": "descriptor~nn3", "k": 4})  # smoothed over 3 neighbours
    assert smoothed.status_code == 200 and len(smoothed.json()["results"]) == 4
    metric = default_metrics()["descriptor"]  # the descriptors through the default's learned metric
    mapped = client.get(url, params={"model": f"descriptor#{metric}", "k": 4})
    assert mapped.status_code == 200 and mapped.json()["model"] == f"descriptor#{metric}"
    assert "unknown metric 'rca-00000000'" in short_error(client.get(url, params={"model": "descriptor#rca-00000000"}),
                                                          400)
    assert "unknown model" in short_error(client.get(url, params={"model": "descriptor#a#b"}), 400)
    assert "distance" in short_error(client.get(url, params={"distance": "euclid"}), 400)
    assert "segment" in short_error(client.get(url, params={"distance": "dtw"}), 400)  # descriptors have none
    short_error(client.get(url, params={"k": 0}), 422)
    short_error(client.get(url, params={"k": 10**6}), 422)
    short_error(client.get("/api/tracks/999999/similar"), 404)


def test_continue_playlist(client: TestClient, tracks: list[Track]) -> None:
    seeds = [tracks[0].id, tracks[1].id]
    body = client.post("/api/continue", json={"track_ids": seeds, "k": 5, "score": "mean"}).json()
    assert [t["track_id"] for t in body["playlist"]["tracks"]] == seeds
    ids = [r["track_id"] for r in body["results"]]
    assert len(ids) == 5 and not set(ids) & set(seeds)
    assert "score" in short_error(client.post("/api/continue", json={"track_ids": seeds, "score": "best"}), 400)
    assert "no usable track" in short_error(client.post("/api/continue", json={"track_ids": [999999]}), 400)
    short_error(client.post("/api/continue", json={"track_ids": []}), 422)
    short_error(client.post("/api/continue", json={"track_ids": ["../x"]}), 422)
    short_error(client.post("/api/continue", json={"track_ids": [2**70]}), 422)
    short_error(client.post("/api/continue", content=b"{not json", headers={"content-type": "application/json"}),
                 422)


def test_path(client: TestClient, tracks: list[Track]) -> None:
    a, b = tracks[0].id, tracks[-1].id
    body = client.get("/api/path", params={"start": a, "end": b, "n": 5}).json()
    ids = [r["track_id"] for r in body["results"]]
    assert len(ids) == 5 and ids[0] == a and ids[-1] == b and len(set(ids)) == 5
    assert "same track" in short_error(client.get("/api/path", params={"start": a, "end": a}), 400)
    short_error(client.get("/api/path", params={"start": a}), 422)
    short_error(client.get("/api/path", params={"start": a, "end": 999999}), 404)
    short_error(client.get("/api/path", params={"start": a, "end": b, "n": 1}), 422)


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
    short_error(client.get("/api/playlist.m3u", params={"ids": "1;rm -rf"}), 422)
    short_error(client.get("/api/playlist.m3u", params={"ids": "999999,99999999999999999999"}), 404)
    short_error(client.get("/api/playlist.m3u"), 422)
    remote = TestClient(client.app, client=("192.0.2.7", 5000))  # no lifespan: shares the running app's state
    assert "target=urls" in short_error(remote.get("/api/playlist.m3u", params={"ids": str(ids[0])}), 403)


def test_unexpected_errors_answer_500_without_details(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail /home/user/x")

    monkeypatch.setattr(Library, "search_counted", boom)  # what /api/tracks calls
    with TestClient(create_app(root / "lib"), raise_server_exceptions=False) as c:
        answer = c.get("/api/tracks")
    assert answer.status_code == 500 and "secret" not in answer.text and "Traceback" not in answer.text


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


def test_a_server_runs_numpy_products_on_one_thread(root: Path) -> None:
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(2, user_api="blas"):  # as a fresh process on 2 cores starts
        create_app(root / "lib")
        assert {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"} == {1}
