"""The library map: PCA at once, large t-SNE maps in the background."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from helpers import short_error
from soundalike.app.server import app as server_app
from soundalike.app.server.app import create_app
from soundalike.library.catalog import Track


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
    short_error(TestClient(create_app(root / "lib")).get("/api/map", params={"method": "umap"}), 422)
