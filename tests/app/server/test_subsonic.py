"""OpenSubsonic endpoints: sonic similarity, sonic paths, helpers and auth."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from helpers import SERVER_TOKEN
from soundalike.library.catalog import Track


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
    assert _subsonic(token_client, "ping", apiKey=SERVER_TOKEN, u="admin")["error"]["code"] == 43
    assert _subsonic(token_client, "ping", apiKey=SERVER_TOKEN)["status"] == "ok"
    assert _subsonic(token_client, "getSonicSimilarTracks", id=tracks[0].id, count=2,
                     apiKey=SERVER_TOKEN)["status"] == "ok"
    assert _subsonic(token_client, "getOpenSubsonicExtensions")["status"] == "ok"  # no auth, by the spec
    assert token_client.get("/rest/stream", params={"id": tracks[0].id}).json()["subsonic-response"]["error"]
