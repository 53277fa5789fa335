"""The library map: PCA at once, large t-SNE maps in the background."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
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


def test_json_bytes_writes_what_json_dumps_wrote() -> None:
    """The map's answers are encoded by orjson: the same values as the standard library's compact, non-ASCII
    output, and the same bytes but for numbers below 1e-4 (``0.00001``, where json wrote ``1e-05``)."""
    import json

    from soundalike.app.server.maps import json_bytes

    rng = np.random.default_rng(0)
    payload = {
        "model": "descriptor+default@0.5", "method": "pca", "count": 3, "total": 1_000_000, "sampled": True,
        "window": [np.float64(0.1), 0.35, 0.0, 1.0], "partial": False, "none": None, "ids": [1, 2**40, 0],
        "x": np.round(rng.random(200), 5).tolist(), "y": [0.0, 1.0, 0.12345, 0.5],
        "title": ['Svefn-g-englar 🎧', 'a "quoted" \\ back\\slash', "tab\there\nnew line\x01", "Ágætis byrjun", ""],
    }
    assert json_bytes(payload) == json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    tiny = {"x": [1e-05, 3.2e-05, 0.0001]}
    assert json.loads(json_bytes(tiny)) == tiny and json_bytes(tiny) == b'{"x":[0.00001,0.000032,0.0001]}'
