"""The Subsonic API over HTTP: sonic similarity and paths, auth forms, XML answers, errors, browsing and lists."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from helpers import SERVER_TOKEN
from soundalike.library.catalog import Library, Track


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
    refused = token_client.get("/rest/stream", params={"id": tracks[0].id, "f": "json"})
    assert refused.json()["subsonic-response"]["error"]["code"] == 10  # no credentials at all: u is missing


# --- authentication -----------------------------------------------------------------------------------------------
def test_subsonic_auth_forms(token_client: TestClient) -> None:
    """The token is the password of any user: token + salt, plain or hex-encoded password, API key, bearer."""
    salt = "c19b2d"
    good = hashlib.md5((SERVER_TOKEN + salt).encode()).hexdigest()
    hexed = "enc:" + SERVER_TOKEN.encode().hex()
    for creds in ({"u": "anna", "t": good, "s": salt}, {"u": "anna", "t": good.upper(), "s": salt},
                  {"u": "bob", "p": SERVER_TOKEN}, {"u": "bob", "p": hexed}, {"apiKey": SERVER_TOKEN},
                  {"token": SERVER_TOKEN}):
        assert _subsonic(token_client, "ping", **creds)["status"] == "ok", creds
        assert _subsonic(token_client, "ping", "POST", **creds)["status"] == "ok", creds
    bearer = token_client.get("/rest/ping", params={"f": "json"}, headers={"Authorization": f"Bearer {SERVER_TOKEN}"})
    assert bearer.json()["subsonic-response"]["status"] == "ok"
    wrong_salted = hashlib.md5(("nope" + salt).encode()).hexdigest()
    for creds, code in (({"u": "anna", "t": wrong_salted, "s": salt}, 40), ({"u": "anna", "p": "nope"}, 40),
                        ({"u": "anna", "p": "enc:zz"}, 40), ({"u": "anna", "p": "enc:" + b"nope".hex()}, 40),
                        ({"u": "anna", "t": good}, 10), ({"u": "anna"}, 10), ({}, 10), ({"apiKey": "nope"}, 44),
                        ({"apiKey": SERVER_TOKEN, "u": "admin"}, 43), ({"token": "nope"}, 40)):
        body = _subsonic(token_client, "ping", **creds)
        assert body["status"] == "failed" and body["error"]["code"] == code, (creds, body)
        assert SERVER_TOKEN not in str(body)
    assert _subsonic(token_client, "getOpenSubsonicExtensions")["status"] == "ok"  # no auth, by the spec
    # Form POST, as py-opensonic and most apps send it; .view aliases.
    form = token_client.post("/rest/ping.view", data={"u": "x", "p": SERVER_TOKEN, "f": "json", "v": "1.16.1",
                                                       "c": "t"})
    assert form.json()["subsonic-response"]["status"] == "ok"


# --- XML, missing parameters, not found ---------------------------------------------------------------------------
NS = "{http://subsonic.org/restapi}"


def _xml(c: TestClient, endpoint: str, **params: object) -> ET.Element:
    answer = c.get(f"/rest/{endpoint}", params={"v": "1.16.1", "c": "test", **params})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/xml")
    assert answer.content.startswith(b"<?xml")
    root = ET.fromstring(answer.content)  # well-formed, or this raises
    assert root.tag == f"{NS}subsonic-response" and root.get("version") == "1.16.1"
    assert root.get("openSubsonic") == "true"
    return root


def test_subsonic_xml_answers(subsonic_client: TestClient) -> None:
    c = subsonic_client
    root = _xml(c, "ping")
    assert root.get("status") == "ok" and len(root) == 0
    folders = _xml(c, "getMusicFolders").findall(f"{NS}musicFolders/{NS}musicFolder")
    assert [(f.get("id"), f.get("name")) for f in folders] == [("1", "Music")]
    indexes = _xml(c, "getArtists").find(f"{NS}artists")
    assert indexes is not None and indexes.get("ignoredArticles")
    # "The Techno Machines" sorts under T without its article (after "Techno..." words), "Slow Horizons" under S.
    letters = {i.get("name"): [a.get("name") for a in i] for i in indexes.findall(f"{NS}index")}
    assert "The Techno Machines" in letters["T"] and "Slow Horizons" in letters["S"]
    artist_id = next(a.get("id") for a in indexes.iter(f"{NS}artist") if a.get("name") == "Slow Horizons")
    # Ids derive from the tags, not from the order of a scan: the same names give the same ids on any server.
    assert artist_id == "ar-" + hashlib.blake2b(b"slow horizons", digest_size=8).hexdigest()
    artist = _xml(c, "getArtist", id=artist_id).find(f"{NS}artist")
    assert artist is not None and [a.get("name") for a in artist.findall(f"{NS}album")] == ["Ambient Weather"]
    album_id = artist.findall(f"{NS}album")[0].get("id")
    album = _xml(c, "getAlbum", id=album_id).find(f"{NS}album")
    assert album is not None and album.get("songCount") == "2" and album.get("genre") == "Ambient"
    songs = album.findall(f"{NS}song")
    assert [s.get("track") for s in songs] == ["1", "3"] and songs[0].get("isDir") == "false"
    assert all(s.get("albumId") == album_id and s.get("contentType", "").startswith("audio/") for s in songs)
    genres = _xml(c, "getGenres").find(f"{NS}genres")
    assert genres is not None
    assert {(g.text, g.get("songCount"), g.get("albumCount")) for g in genres} == {("Ambient", "3", "2"),
                                                                                  ("Techno", "3", "2")}
    extensions = _xml(c, "getOpenSubsonicExtensions").findall(f"{NS}openSubsonicExtensions")
    assert {"sonicSimilarity", "formPost"} <= {e.get("name") for e in extensions}
    assert [v.text for v in extensions[0].findall(f"{NS}versions")] == ["1"]
    error = _xml(c, "getAlbum", id="al-0000000000000000")
    assert error.get("status") == "failed"
    assert [e.get("code") for e in error.findall(f"{NS}error")] == ["70"]


@pytest.mark.parametrize(("endpoint", "params", "missing"), [
    ("getArtist", {}, "id"), ("getAlbum", {}, "id"), ("getSong", {}, "id"), ("getAlbumList2", {}, "type"),
    ("getAlbumList2", {"type": "byGenre"}, "genre"), ("getAlbumList2", {"type": "byYear"}, "fromYear"),
    ("getSongsByGenre", {}, "genre"), ("search3", {}, "query"), ("stream", {}, "id"), ("getCoverArt", {}, "id"),
    ("getPlaylist", {}, "id"), ("createPlaylist", {}, "name"), ("updatePlaylist", {}, "playlistId"),
    ("deletePlaylist", {}, "id"), ("scrobble", {}, "id"), ("star", {}, "id"), ("getTopSongs", {}, "artist"),
    ("getSimilarSongs2", {}, "id"), ("findSonicPath", {"startSongId": "1"}, "endSongId")])
def test_subsonic_missing_parameters_are_error_10(subsonic_client: TestClient, endpoint: str,
                                                  params: dict[str, str], missing: str) -> None:
    body = _subsonic(subsonic_client, endpoint, **params)
    assert body["status"] == "failed" and body["error"]["code"] == 10 and missing in body["error"]["message"]


def test_subsonic_not_found_and_bad_values(subsonic_client: TestClient) -> None:
    c = subsonic_client
    for endpoint, params in (("getArtist", {"id": "ar-nope"}), ("getAlbum", {"id": "12"}),
                             ("getSong", {"id": "al-x"}), ("getPlaylist", {"id": "999"}),
                             ("getPlaylist", {"id": "x"}), ("star", {"id": "999999"}),
                             ("createPlaylist", {"name": "x", "songId": "999999"})):
        assert _subsonic(c, endpoint, **params)["error"]["code"] == 70, (endpoint, params)
    assert _subsonic(c, "getAlbumList2", type="sideways")["error"]["code"] == 0
    assert _subsonic(c, "getRandomSongs", size="lots")["error"]["code"] == 0
    missing_art = c.get("/rest/getCoverArt", params={"id": "ar-nope", "f": "json"})
    assert missing_art.status_code == 404 and missing_art.json()["subsonic-response"]["error"]["code"] == 70


def test_subsonic_search_lists_and_genres(subsonic_client: TestClient) -> None:
    c = subsonic_client
    everything = _subsonic(c, "search3", query='""', songCount=100)["searchResult3"]
    assert len(everything["song"]) == 6 and len(everything["album"]) == 4 and len(everything["artist"]) == 4
    page = _subsonic(c, "search3", query="", songCount=2, songOffset=4)["searchResult3"]["song"]
    assert [s["id"] for s in page] == [s["id"] for s in everything["song"][4:6]]
    found = _subsonic(c, "search3", query="techno nights")["searchResult3"]
    assert [a["name"] for a in found["album"]] == ["Techno Nights"] and len(found["song"]) == 1
    assert [a["name"] for a in _subsonic(c, "search3", query="horizons")["searchResult3"]["artist"]] == \
        ["Slow Horizons"]
    by_name = _subsonic(c, "getAlbumList2", type="alphabeticalByName", size=10)["albumList2"]["album"]
    assert [a["name"] for a in by_name] == ["Ambient Drift", "Ambient Weather", "Techno Nights", "Warehouse Techno"]
    by_artist = _subsonic(c, "getAlbumList", type="alphabeticalByArtist")["albumList"]["album"]
    assert [a["artist"] for a in by_artist] == ["The Glass Clouds", "Kick Drum Collective", "Slow Horizons",
                                                "The Techno Machines"] and by_artist[0]["isDir"] is True
    ambient = _subsonic(c, "getAlbumList2", type="byGenre", genre="ambient")["albumList2"]["album"]
    assert {a["name"] for a in ambient} == {"Ambient Drift", "Ambient Weather"}
    assert len(_subsonic(c, "getAlbumList2", type="random", size=3)["albumList2"]["album"]) == 3
    songs = _subsonic(c, "getSongsByGenre", genre="Techno", count=2)["songsByGenre"]["song"]
    assert len(songs) == 2 and all(s["genre"] == "Techno" for s in songs)
    randoms = _subsonic(c, "getRandomSongs", size=50, genre="Ambient")["randomSongs"]["song"]
    assert len(randoms) == 3 and {s["genre"] for s in randoms} == {"Ambient"}
    folders = _subsonic(c, "getIndexes")["indexes"]
    artist = next(a for i in folders["index"] for a in i["artist"] if a["name"] == "The Techno Machines")
    directory = _subsonic(c, "getMusicDirectory", id=artist["id"])["directory"]
    assert [d["title"] for d in directory["child"]] == ["Warehouse Techno"]
    album = _subsonic(c, "getMusicDirectory", id=directory["child"][0]["id"])["directory"]
    assert [s["track"] for s in album["child"]] == [1, 3]


def test_subsonic_writes_keep_the_caches_but_a_scan_moves_them_on(subsonic_client: TestClient,
                                                                   subsonic_root: Path) -> None:
    state = subsonic_client.app.state.server.state  # type: ignore[attr-defined]
    song = _subsonic(subsonic_client, "search3", query="", songCount=1)["searchResult3"]["song"][0]["id"]
    before = state.generation()
    assert _subsonic(subsonic_client, "scrobble", id=song)["status"] == "ok"
    assert _subsonic(subsonic_client, "star", id=song)["status"] == "ok"
    assert _subsonic(subsonic_client, "unstar", id=song)["status"] == "ok"
    assert state.generation() == before  # the server's own writes: the track list and indexes stay
    with Library.open(subsonic_root / "lib") as lib:  # another process's write (as a scan's) is noticed
        lib.set_meta("touched", 1)
    assert state.generation() == before + 1


def test_subsonic_playlist_edits_are_all_or_nothing(subsonic_client: TestClient) -> None:
    c = subsonic_client
    songs = [s["id"] for s in _subsonic(c, "search3", query="", songCount=3)["searchResult3"]["song"]]
    made = _subsonic(c, "createPlaylist", name="all or nothing", songId=songs)["playlist"]

    def current() -> tuple[str, list[str]]:
        got = _subsonic(c, "getPlaylist", id=made["id"])["playlist"]
        return got["name"], [e["id"] for e in got["entry"]]

    bad = _subsonic(c, "updatePlaylist", playlistId=made["id"], name="renamed", songIndexToRemove=["0", "9"],
                    songIdToAdd=songs[0])
    assert bad["status"] == "failed" and "position 9" in bad["error"]["message"]
    assert current() == ("all or nothing", songs)  # neither renamed nor shortened
    bad = _subsonic(c, "createPlaylist", playlistId=made["id"], name="renamed", songId=[songs[0], "999999"])
    assert bad["error"]["code"] == 70 and current() == ("all or nothing", songs)
    ok = _subsonic(c, "updatePlaylist", playlistId=made["id"], name="renamed", songIndexToRemove=["0", "0"],
                   songIdToAdd=songs[0])
    assert ok["status"] == "ok" and current() == ("renamed", [*songs[1:], songs[0]])
    replaced = _subsonic(c, "createPlaylist", playlistId=made["id"], name="again", songId=songs[2])["playlist"]
    assert replaced["name"] == "again" and [e["id"] for e in replaced["entry"]] == [songs[2]]
    assert _subsonic(c, "deletePlaylist", id=made["id"])["status"] == "ok"


def test_a_file_whose_name_is_not_utf8_streams_and_downloads(tmp_path: Path) -> None:
    import os

    from helpers import make_signal, write_audio
    from soundalike.app.server.app import create_app
    from soundalike.library.scan import scan

    music = tmp_path / "music"
    made = write_audio(music / "plain.wav", make_signal(2.0, 440.0))
    raw = os.path.join(os.fsencode(music), b"caf\xe9.wav")  # Latin-1: not UTF-8
    os.rename(made, raw)
    with Library.open(tmp_path / "lib") as lib:
        scan(lib, [str(music)], isolate=False)
        (track,) = lib.tracks()
        assert lib.file_paths(track.id) == [raw] and "\\xe9" in track.path  # shown escaped, stored as it is
    data = Path(os.fsdecode(raw)).read_bytes()
    with TestClient(create_app(tmp_path / "lib", refresh_seconds=0.0), raise_server_exceptions=False,
                    client=("127.0.0.1", 50000)) as c:
        stream = c.get("/rest/stream", params={"id": track.id}, headers={"Range": "bytes=0-9"})
        assert stream.status_code == 206 and stream.content == data[:10]
        download = c.get("/rest/download", params={"id": track.id})
        assert download.status_code == 200 and download.content == data
        assert "caf" in download.headers["content-disposition"]
        audio = c.get(f"/api/tracks/{track.id}/audio")
        assert audio.status_code == 200 and audio.content == data


def test_a_catalogue_error_is_a_subsonic_error_not_an_http_500(tmp_path: Path) -> None:
    import sqlite3

    from helpers import make_signal, write_audio
    from soundalike.app.server.app import create_app
    from soundalike.library.scan import scan

    write_audio(tmp_path / "music" / "a.wav", make_signal(2.0, 440.0))
    with Library.open(tmp_path / "lib") as lib:
        scan(lib, [str(tmp_path / "music")], isolate=False)
        (track,) = lib.tracks()
    with TestClient(create_app(tmp_path / "lib", refresh_seconds=0.0), raise_server_exceptions=False,
                    client=("127.0.0.1", 50000)) as c:
        assert _subsonic(c, "star", id=track.id)["status"] == "ok"
        with sqlite3.connect(tmp_path / "lib" / "catalog.sqlite") as conn:  # a damaged catalogue
            conn.execute("DROP TABLE stars")
        for endpoint in ("star", "getStarred2"):
            body = _subsonic(c, endpoint, id=track.id)  # asserts HTTP 200
            assert body["status"] == "failed" and body["error"]["code"] == 0, endpoint
            message = body["error"]["message"]
            assert "no such table: stars" in message and "\n" not in message and str(tmp_path) not in message


def test_subsonic_answers_are_clean_json_and_valid_xml_whatever_the_tags() -> None:
    from soundalike.app.server.subsonic_protocol import Params, render, to_xml

    body = {"song": {"id": "1", "title": "bell\x07 & <tags>\x00", "year": None, "genres": [{"name": "a"}]}}
    parsed = ET.fromstring(to_xml(body))
    song = parsed.find(f"{NS}song")
    assert song is not None and song.get("title") == "bell\ufffd & <tags>\ufffd" and song.get("year") is None
    text = render(body, Params([("f", "json")])).body
    assert b"null" not in text and b'"year"' not in text  # absent, never null
