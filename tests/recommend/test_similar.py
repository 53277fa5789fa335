""""More like this": every distance with the default model (API and command line), fallbacks said aloud."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from helpers import run_cli
from soundalike.app.server.app import create_app
from soundalike.library.catalog import Library
from soundalike.recommend import DISTANCES, QueryError, load_index, similar


@pytest.fixture(scope="module")
def client(indexed: tuple[Path, Path, list]) -> TestClient:
    _, library, _ = indexed
    with TestClient(create_app(library, refresh_seconds=0.0), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("distance", DISTANCES)
def test_every_distance_works_with_the_default_model(indexed: tuple[Path, Path, list], client: TestClient,
                                                     distance: str) -> None:
    _, library, _ = indexed
    code, out, err = run_cli("similar", "3", "--library", str(library), "--distance", distance, "-k", "5",
                             "--format", "json")
    assert code == 0, err
    cli = json.loads(out)
    parts = [part.split("@")[0].split("#")[0].split("-")[0] for part in cli["model"].split("+")]
    assert parts == ["descriptor", "musicnn", "contrastive"] and cli["notes"] == []  # the default's three parts
    answer = client.get("/api/tracks/3/similar", params={"distance": distance, "k": 5})
    assert answer.status_code == 200, answer.text
    api = answer.json()
    for payload in (cli, api):
        results = payload["results"]
        assert len(results) == 5 and all(r["track_id"] != 3 for r in results)
        scores = [r["score"] for r in results]
        assert scores == sorted(scores, reverse=True)
        if distance != "cosine":
            assert all(r["distance"] == pytest.approx(1 - r["score"], abs=1e-6) for r in results)
    assert [r["track_id"] for r in api["results"]] == [r["track_id"] for r in cli["results"]]
    assert api["model"] == cli["model"]


def test_sequence_distances_rank_the_same_style_first(indexed: tuple[Path, Path, list]) -> None:
    _, library, tracks = indexed
    style = {str(t.path.resolve()): t.style for t in tracks}
    with Library.open(library) as lib:
        for distance in ("minpoint", "frechet", "dtw"):
            hits = total = 0
            for query in range(1, 21, 4):
                q, results = similar(lib, str(query), 4, distance=distance)
                hits += sum(style[r.track.path] == style[q.track.path] for r in results)  # type: ignore[union-attr]
                total += len(results)
            assert hits / total >= 0.75, distance


def test_descriptors_alone_have_no_sequences(indexed: tuple[Path, Path, list]) -> None:
    _, library, _ = indexed
    code, _, err = run_cli("similar", "3", "--library", str(library), "--model", "descriptor", "--distance", "dtw")
    assert code == 2 and "descriptor" in err and "--model default" in err


def test_a_track_the_default_has_not_reached_is_answered_from_descriptors_and_says_so(
        indexed: tuple[Path, Path, list], tmp_path: Path) -> None:
    _, library, _ = indexed
    copy = tmp_path / "lib"
    shutil.copytree(library, copy)
    with Library.open(copy) as lib:
        key = load_index(lib, "default").embedding.model
        learned = key.split("+")[1].partition("@")[0]
        lib.conn.execute("DELETE FROM vectors WHERE track_id=5 AND model=?", (learned,))
    code, out, err = run_cli("similar", "5", "--library", str(copy), "--format", "json", "-k", "3")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["model"] == "descriptor" and len(payload["results"]) == 3
    assert "track 5" in payload["notes"][0] and "descriptors" in payload["notes"][0] and "note:" in err
    with TestClient(create_app(copy)) as c:
        api = c.get("/api/tracks/5/similar", params={"k": 3}).json()
        assert api["model"] == "descriptor" and api["notes"] == payload["notes"]
        other = c.get("/api/tracks/6/similar", params={"k": 3}).json()
        assert other["model"] == key and other["notes"] == []
        assert 5 not in [r["track_id"] for r in other["results"]]  # not embedded: not a default candidate
    code, out, _ = run_cli("continue", "--library", str(copy), "--format", "json", str(_playlist(tmp_path, [5, 6])))
    assert code == 0 and json.loads(out)["model"] == "descriptor" and json.loads(out)["notes"]
    with Library.open(copy) as lib, pytest.raises(QueryError, match="no 'musicnn"):
        similar(lib, "5", model=learned)  # a model asked for by name does not fall back


def _playlist(folder: Path, ids: list[int]) -> Path:
    path = folder / "playlist.json"
    path.write_text(json.dumps(ids))
    return path
