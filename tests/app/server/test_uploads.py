"""Uploads: cold-start similar tracks, analysed out of the server process (stopped when the client leaves), bad
files, size limits."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from helpers import make_signal, short_error, write_audio
from soundalike.app.server.app import create_app
from soundalike.app.server.run import background_server
from soundalike.library.catalog import Track


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
        short_error(client.post("/api/upload/similar", files={"file": (name, data)}), status)
    short_error(client.post("/api/upload/similar", files={"other": ("a.wav", good)}), 400)
    short_error(client.post("/api/upload/similar", files={"file": (None, "just text")}), 400)
    # Still answering, and nothing was added.
    assert client.get("/api/health").status_code == 200
    assert client.get(f"/api/tracks/{tracks[0].id}/similar").status_code == 200
    assert client.get("/api/library").json()["tracks"] == len(tracks)


def test_upload_size_limit(root: Path, tracks: list[Track]) -> None:
    data = Path(next(t.path for t in tracks if t.path.endswith(".wav"))).read_bytes()
    assert len(data) > 200_000
    with TestClient(create_app(root / "lib", max_upload_bytes=100_000), raise_server_exceptions=False) as c:
        assert "too large" in short_error(c.post("/api/upload/similar", files={"file": ("big.wav", data)}), 413)
        raw = c.post("/api/upload/similar", content=data, headers={"content-type": "application/octet-stream"})
        assert "too large" in short_error(raw, 413)

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while the body streams in
            for i in range(0, len(data), 16384):
                yield data[i:i + 16384]

        streamed = c.post("/api/upload/similar", content=chunks(), headers={"content-type": "audio/wav"})
        assert "too large" in short_error(streamed, 413)
        assert c.get("/api/health").status_code == 200


def test_uploads_are_analysed_out_of_the_server_process(client: TestClient, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import soundalike.audio.analysis as analysis
    import soundalike.recommend.queries as queries

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the server process decoded an upload")

    monkeypatch.setattr(queries, "analyse_file", never)
    monkeypatch.setattr(analysis, "analyse_file", never)
    new = write_audio(tmp_path / "x.wav", make_signal(4.0, 500.0, seed=3))
    answer = client.post("/api/upload/similar", params={"k": 2}, files={"file": ("x.wav", new.read_bytes())})
    assert answer.status_code == 200 and len(answer.json()["results"]) == 2


def test_a_client_that_leaves_stops_its_analysis(root: Path, tmp_path: Path) -> None:
    """A long upload's analysis runs in a child process; when the client disconnects, the child is killed."""
    long = write_audio(tmp_path / "long.wav", make_signal(900.0, 220.0, seed=5))  # 15 minutes, ~40 MB
    with background_server(root / "lib", "--max-upload-mb", "100") as server:
        host, port = server.url.split("//")[1].split("/")[0].split(":")
        data = long.read_bytes()
        sock = socket.create_connection((host, int(port)))
        sock.sendall(f"POST /api/upload/similar?filename=long.wav HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                     + data)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _analysers():
            time.sleep(0.05)
        assert _analysers(), "no analysing child process started"
        time.sleep(0.5)
        sock.close()  # the client leaves before the answer
        left = time.monotonic()
        while time.monotonic() < left + 10 and _analysers():
            time.sleep(0.05)
        stopped = time.monotonic() - left
        print(f"analysis stopped {stopped:.2f} s after the client left")
        assert not _analysers() and stopped < 2.0, "the analysis went on after the client left"
        with urllib.request.urlopen(f"{server.url}/api/health", timeout=10) as ok:
            assert ok.status == 200


def _analysers() -> list[int]:
    """Pids of live ``soundalike.app.server.uploads`` processes."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if b"soundalike.app.server.uploads" in cmd and state != "Z":
                found.append(int(entry.name))
    return found
