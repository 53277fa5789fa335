"""Audio by catalogue id with range requests, vanished files, spectrogram images with ETags."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from helpers import short_error
from soundalike.app.server.app import create_app
from soundalike.library.catalog import Library, Track


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
        assert "gone" in short_error(c.get(f"/api/tracks/{t.id}/audio"), 404)


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
    short_error(client.get(url, params={"width": 100000}), 422)
