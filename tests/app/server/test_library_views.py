"""The web page's JSON API for albums, artists, cover art, plays and stored playlists (FastAPI's TestClient)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from helpers import short_error
from soundalike.app.server.app import create_app
from soundalike.library.catalog import Library

LOCAL_CLIENT = ("127.0.0.1", 50000)


@pytest.fixture(scope="module")
def views_client(subsonic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A tokenless app over a copy of the Subsonic test library's catalogue (these tests write playlists)."""
    lib = tmp_path_factory.mktemp("views") / "lib"
    shutil.copytree(subsonic_root / "lib", lib)
    with TestClient(create_app(lib, refresh_seconds=0.0), raise_server_exceptions=False, client=LOCAL_CLIENT) as c:
        yield c


def test_albums_and_artists_group_the_tracks_with_stable_ids(views_client: TestClient,
                                                             subsonic_client: TestClient) -> None:
    albums = views_client.get("/api/albums").json()
    assert albums["total"] == len(albums["items"]) >= 2
    assert sum(a["track_count"] for a in albums["items"]) == 6
    # The same ids as the Subsonic endpoints give.
    subsonic = subsonic_client.get("/rest/getAlbumList2", params={"type": "alphabeticalByName", "f": "json"}).json()
    assert {a["id"] for a in albums["items"]} == {a["id"] for a in subsonic["subsonic-response"]["albumList2"]["album"]}
    first = albums["items"][0]
    detail = views_client.get(f"/api/albums/{first['id']}").json()
    assert detail["name"] == first["name"] and len(detail["tracks"]) == first["track_count"]
    assert [t["track_no"] for t in detail["tracks"]] == sorted(t["track_no"] for t in detail["tracks"])
    assert all(t["album"] == first["name"] and not t["path"].startswith("/") for t in detail["tracks"])
    artist = views_client.get(f"/api/artists/{first['artist_id']}").json()
    assert artist["name"] == first["artist"] and first["id"] in [a["id"] for a in artist["albums"]]
    assert {t["track_id"] for t in detail["tracks"]} <= {t["track_id"] for t in artist["tracks"]}
    artists = views_client.get("/api/artists").json()
    assert first["artist_id"] in [a["id"] for a in artists["items"]]
    # From a track to its album and artist.
    track_id = detail["tracks"][0]["track_id"]
    assert views_client.get(f"/api/tracks/{track_id}/album").json()["id"] == first["id"]
    assert views_client.get(f"/api/tracks/{track_id}/artist").json()["name"] == detail["tracks"][0]["artist"]
    short_error(views_client.get("/api/albums/al-0000000000000000"), 404)
    short_error(views_client.get("/api/artists/ar-0000000000000000"), 404)
    short_error(views_client.get("/api/albums/../../etc"), 404)
    short_error(views_client.get("/api/albums/al-xyz"), 422)
    short_error(views_client.get("/api/tracks/999999/album"), 404)
    paged = views_client.get("/api/albums", params={"offset": 1, "limit": 1}).json()
    assert paged["items"] == albums["items"][1:2]


def test_cover_art_embedded_beside_the_files_or_a_placeholder(views_client: TestClient) -> None:
    import io

    from PIL import Image

    albums = views_client.get("/api/albums").json()["items"]
    colours = {}
    for album in albums:
        answer = views_client.get(f"/api/cover/{album['id']}", params={"size": 32})
        if answer.status_code == 200:
            image = Image.open(io.BytesIO(answer.content)).convert("RGB")
            assert max(image.size) <= 32
            colours[album["name"]] = image.getpixel((16, 16))
        else:
            assert answer.status_code == 404
            placeholder = views_client.get(album["cover_url"])
            assert placeholder.status_code == 200 and placeholder.headers["content-type"] == "image/svg+xml"
            assert placeholder.headers["x-cover"] == "placeholder" and b"<svg" in placeholder.content
    reds = [c for c in colours.values() if c[0] > 150 and c[2] < 80]  # the techno file's embedded front cover
    blues = [c for c in colours.values() if c[2] > 150 and c[0] < 80]  # folder.jpg beside the ambient files
    assert reds and blues, colours
    short_error(views_client.get("/api/cover/not-an-id"), 422)
    short_error(views_client.get("/api/cover/al-0000000000000000"), 404)
    assert views_client.get("/api/cover/al-0000000000000000", params={"placeholder": True}).status_code == 200


def test_playlists_are_stored_in_the_catalogue(views_client: TestClient) -> None:
    ids = [t["track_id"] for t in views_client.get("/api/tracks").json()["items"]]
    made = views_client.post("/api/playlists", json={"name": "  Road   trip ", "track_ids": ids[:3]})
    assert made.status_code == 201
    p = made.json()
    assert p["name"] == "Road trip" and [t["track_id"] for t in p["tracks"]] == ids[:3] and p["track_count"] == 3
    assert p["cover_url"].startswith("/api/cover/al-")
    pid = p["id"]
    assert pid in [x["id"] for x in views_client.get("/api/playlists").json()]
    # Rename, add (duplicates allowed), reorder, remove one entry.
    assert views_client.patch(f"/api/playlists/{pid}", json={"name": "Night drive"}).json()["name"] == "Night drive"
    added = views_client.post(f"/api/playlists/{pid}/tracks", json={"track_ids": [ids[4], ids[0]], "position": 1})
    assert [t["track_id"] for t in added.json()["tracks"]] == [ids[0], ids[4], ids[0], ids[1], ids[2]]
    moved = views_client.post(f"/api/playlists/{pid}/move", json={"source": 0, "target": 4}).json()
    assert [t["track_id"] for t in moved["tracks"]] == [ids[4], ids[0], ids[1], ids[2], ids[0]]
    removed = views_client.delete(f"/api/playlists/{pid}/tracks/1").json()
    assert [t["track_id"] for t in removed["tracks"]] == [ids[4], ids[1], ids[2], ids[0]]
    refilled = views_client.patch(f"/api/playlists/{pid}", json={"track_ids": [ids[5]]}).json()
    assert [t["track_id"] for t in refilled["tracks"]] == [ids[5]] and refilled["name"] == "Night drive"
    # In the catalogue itself: what a Subsonic app or the command line sees.
    lib_root = Path(views_client.app.state.server.config.library)
    with Library.open(lib_root) as lib:
        assert lib.playlists.track_ids(pid) == [ids[5]]
    assert any(p["id"] == str(pid) for p in views_client.get("/rest/getPlaylists", params={"f": "json"}).json()[
        "subsonic-response"]["playlists"]["playlist"])
    # Refusals: unknown playlist or track, empty name, positions outside.
    short_error(views_client.post("/api/playlists", json={"name": " ", "track_ids": []}), 400)
    short_error(views_client.post("/api/playlists", json={"name": "x", "track_ids": [999999]}), 400)
    short_error(views_client.post(f"/api/playlists/{pid}/move", json={"source": 0, "target": 9}), 400)
    short_error(views_client.delete(f"/api/playlists/{pid}/tracks/7"), 400)
    short_error(views_client.get("/api/playlists/999999"), 404)
    short_error(views_client.patch("/api/playlists/999999", json={}), 404)
    short_error(views_client.post("/api/playlists/999999/tracks", json={"track_ids": [ids[0]]}), 404)
    assert views_client.delete(f"/api/playlists/{pid}").status_code == 204
    short_error(views_client.get(f"/api/playlists/{pid}"), 404)
    short_error(views_client.delete(f"/api/playlists/{pid}"), 404)


def test_stored_playlist_m3u_even_when_empty(views_client: TestClient) -> None:
    ids = [t["track_id"] for t in views_client.get("/api/tracks").json()["items"]]
    empty = views_client.post("/api/playlists", json={"name": "Nothing yet"}).json()
    answer = views_client.get(f"/api/playlists/{empty['id']}/playlist.m3u")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("audio/x-mpegurl")
    assert answer.text.splitlines() == ["#EXTM3U", "#PLAYLIST:Nothing yet"]
    assert 'filename="Nothing yet.m3u8"' in answer.headers["content-disposition"]
    odd = views_client.post("/api/playlists", json={"name": 'Café / "night"'}).json()
    disposition = views_client.get(f"/api/playlists/{odd['id']}/playlist.m3u").headers["content-disposition"]
    assert 'filename="Caf_ _ _night_.m3u8"' in disposition
    assert "filename*=UTF-8''Caf%C3%A9%20_%20_night_.m3u8" in disposition
    full = views_client.post("/api/playlists", json={"name": "Two", "track_ids": [ids[1], ids[0]]}).json()
    lines = views_client.get(f"/api/playlists/{full['id']}/playlist.m3u", params={"target": "urls"}).text.splitlines()
    assert "#PLAYLIST:Two" in lines
    assert [ln.rsplit("/", 2)[-2] for ln in lines if ln.startswith("http")] == [str(ids[1]), str(ids[0])]
    remote = TestClient(views_client.app, client=("192.0.2.7", 5000))
    short_error(remote.get(f"/api/playlists/{full['id']}/playlist.m3u"), 403)


def test_plays_are_recorded(views_client: TestClient) -> None:
    track_id = views_client.get("/api/tracks").json()["items"][0]["track_id"]
    assert views_client.post(f"/api/tracks/{track_id}/played").status_code == 204
    with Library.open(Path(views_client.app.state.server.config.library)) as lib:
        assert lib.plays.count(track_id) == 1
    short_error(views_client.post("/api/tracks/999999/played"), 404)


def test_the_new_endpoints_need_the_token_and_are_documented(subsonic_root: Path) -> None:
    from helpers import SERVER_TOKEN

    with TestClient(create_app(subsonic_root / "lib", token=SERVER_TOKEN), raise_server_exceptions=False,
                    client=LOCAL_CLIENT) as c:
        for url in ("/api/albums", "/api/artists", "/api/playlists", "/api/cover/1"):
            assert c.get(url).status_code == 401, url
        assert c.get("/api/albums", headers={"Authorization": f"Bearer {SERVER_TOKEN}"}).status_code == 200
        assert c.get("/api/cover/1", params={"token": SERVER_TOKEN, "placeholder": True}).status_code == 200
        paths = c.get("/openapi.json").json()["paths"]
    for path in ("/api/albums", "/api/albums/{album_id}", "/api/artists", "/api/artists/{artist_id}",
                 "/api/cover/{item_id}", "/api/playlists", "/api/playlists/{playlist_id}",
                 "/api/playlists/{playlist_id}/tracks", "/api/playlists/{playlist_id}/move",
                 "/api/playlists/{playlist_id}/tracks/{position}", "/api/playlists/{playlist_id}/playlist.m3u",
                 "/api/tracks/{track_id}/album", "/api/tracks/{track_id}/artist", "/api/tracks/{track_id}/played"):
        assert path in paths, path
    assert set(paths["/api/playlists/{playlist_id}"]) == {"get", "patch", "delete"}


def test_every_choice_the_page_offers_is_answered(client: TestClient) -> None:
    """The continue scores and distances listed in the page's script all work on a library where they are offered
    (descriptors only: no sequence model, so the page offers only the whole-track comparison)."""
    import re

    from soundalike.app.server.app import STATIC_DIR

    script = (STATIC_DIR / "app.js").read_text(encoding="utf-8")
    scores = re.findall(r'\["(max|mean|topk|cluster)", "like', script)
    distances = re.findall(r'\["(\w+)", "(?:the whole track|section|closest|any moment|moments)', script)
    assert sorted(scores) == ["cluster", "max", "mean", "topk"] and distances[0] == "cosine" and len(distances) == 5
    ids = [t["track_id"] for t in client.get("/api/tracks").json()["items"]]
    for score in scores:
        for seed in (ids[:1], ids[:3]):
            answer = client.post("/api/continue", json={"track_ids": seed, "k": 5, "score": score})
            assert answer.status_code == 200, (score, answer.text)
    info = client.get("/api/library").json()
    for model in info["models_offered"]:
        offered = distances if model in info["sequence_models"] else ["cosine"]
        for distance in offered:
            answer = client.get(f"/api/tracks/{ids[0]}/similar", params={"model": model, "distance": distance})
            assert answer.status_code == 200, (model, distance, answer.text)
