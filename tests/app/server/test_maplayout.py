"""The map of a large library: a sampled overview, windows that keep the points already shown, and the API."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from soundalike.app.server.app import create_app
from soundalike.app.server.maplayout import (
    MapLayout,
    Projection,
    answer,
    full_layout,
    overview_layout,
    principal_components,
    priority,
    serve_map,
)
from soundalike.audio.analysis import Tags
from soundalike.audio.descriptors import DESCRIPTOR_DIM
from soundalike.library.catalog import DESCRIPTOR_MODEL, Library, NewTrack


def test_principal_components_find_the_widest_directions() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 40)) * np.r_[6.0, 3.0, np.ones(38)]
    comps = principal_components(x - x.mean(axis=0))
    assert abs(comps[0, 0]) > 0.99 and abs(comps[1, 1]) > 0.99
    assert comps[0, 0] > 0 and comps[1, 1] > 0  # signed: the largest coordinate is positive
    np.testing.assert_array_equal(comps, principal_components(x - x.mean(axis=0)))
    xy = Projection.fit(x)(x)
    assert xy.min() >= 0.0 and xy.max() <= 1.0 and xy[:, 0].max() == 1.0


def test_windows_keep_the_points_already_shown() -> None:
    rng = np.random.default_rng(1)
    ids = priority(np.arange(1, 10_001))
    layout = MapLayout("pca", ids, rng.random(10_000).astype(np.float32), rng.random(10_000).astype(np.float32))
    rows, total = layout.window(None, 500)
    assert rows.tolist() == list(range(500)) and total == 10_000
    box = (0.2, 0.4, 0.5, 0.9)
    inside, count = layout.window(box, 300)
    expected = np.flatnonzero((layout.x >= 0.2) & (layout.x <= 0.4) & (layout.y >= 0.5) & (layout.y <= 0.9))
    assert count == len(expected) > 300 and inside.tolist() == expected[:300].tolist()
    overview_inside = [r for r in rows if 0.2 <= layout.x[r] <= 0.4 and 0.5 <= layout.y[r] <= 0.9]
    assert set(overview_inside) <= set(inside.tolist())  # zooming in never drops a point of the overview
    assert priority(np.arange(5), seed=3).tolist() == priority(np.arange(5), seed=3).tolist()


def add_tracks(lib: Library, start: int, n: int) -> None:
    """``n`` tracks with clustered random descriptors (no audio), ids from ``start + 1``."""
    rng = np.random.default_rng(2 + start)
    centres = np.random.default_rng(2).standard_normal((6, DESCRIPTOR_DIM)) * 3
    lib.add_tracks([NewTrack(path=f"/m/{i}.flac", audio_hash=f"h{i}", duration=60.0,
                             tags=Tags(artist=f"A{i % 6}", album=f"B{i % 12}", title=f"T {i}"),
                             vectors={DESCRIPTOR_MODEL: centres[i % 6] + rng.standard_normal(DESCRIPTOR_DIM)})
                    for i in range(start, start + n)])


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 tracks with clustered random descriptors (no audio)."""
    root = tmp_path_factory.mktemp("maplib") / "lib"
    with Library.open(root) as lib:
        add_tracks(lib, 0, 600)
    return root


def test_the_api_samples_large_maps_and_windows_them(large: Path) -> None:
    with TestClient(create_app(large, refresh_seconds=0.0), client=("127.0.0.1", 5000)) as c:
        whole = c.get("/api/map").json()
        assert whole["count"] == 600 and "total" not in whole  # a small library: every point, as before
        over = c.get("/api/map", params={"limit": 100}).json()
        assert over["count"] == 100 and over["total"] == 600 and over["sampled"] and over["window"] is None
        box = {"x0": 0.0, "x1": 0.5, "y0": 0.0, "y1": 1.0, "limit": 100}
        for _ in range(100):
            win = c.get("/api/map", params=box).json()
            if not win["partial"]:
                break
            time.sleep(0.1)
        assert not win["partial"] and win["count"] <= 100 and win["in_window"] >= win["count"]
        assert all(0.0 <= x <= 0.5 for x in win["x"])
        shown = {i for i, x in zip(over["ids"], over["x"], strict=True) if x <= 0.5}
        assert shown <= set(win["ids"])  # window and overview limits are equal: the shown points stay
        assert c.get("/api/map", params={"x0": 0.5, "x1": 0.1, "y0": 0, "y1": 1}).status_code == 422
        assert c.get("/api/map", params={"x0": 0.5}).status_code == 422
        assert c.get("/api/map", params={"limit": 0}).status_code == 422


def test_the_overview_is_computed_at_start_and_its_answer_kept_per_generation(tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        add_tracks(lib, 0, 300)
    app = create_app(tmp_path / "lib", refresh_seconds=0.0, map_points=50)
    server = app.state.server
    with TestClient(app, client=("127.0.0.1", 5000)) as c:
        for _ in range(300):  # no request yet: the start-up warm-up computes every track's position
            if isinstance(server.maps.get(("default", "pca-full", server.state.generation())), MapLayout):
                break
            time.sleep(0.1)
        assert isinstance(server.maps.get(("default", "pca-full", server.state.generation())), MapLayout)
        over = c.get("/api/map").json()  # the server's --map-points is the default limit
        assert over["count"] == 50 and over["total"] == 300 and over["sampled"]
        index = server.state.index("default")
        first = serve_map(server.state, server.maps, index, "default", "pca", None, 50)
        assert first is serve_map(server.state, server.maps, index, "default", "pca", None, 50)  # kept, not rebuilt
        assert c.get("/api/map").content == first.raw
        with Library.open(tmp_path / "lib") as lib:  # the catalogue changes: the next answer is computed again
            add_tracks(lib, 300, 1)
        again = c.get("/api/map").json()
        assert again["total"] == 301 and again["count"] == 50


def test_every_position_from_an_order_an_older_index_made(tmp_path: Path) -> None:
    from soundalike.search.index import VectorIndex

    with Library.open(tmp_path / "lib") as lib:
        add_tracks(lib, 0, 300)
        old = VectorIndex.from_library(lib, DESCRIPTOR_MODEL, ann=False)
        _, projection, order = overview_layout(old, "pca", 50)
        add_tracks(lib, 300, 2)  # the catalogue changed after the overview was made
        first = int(order[0])
        lib.conn.execute("DELETE FROM tracks WHERE id=?", (first,))
        new = VectorIndex.from_library(lib, DESCRIPTOR_MODEL, ann=False)
        full = full_layout(new, projection, order)
    assert sorted(full.ids.tolist()) == sorted(np.asarray(new.ids).tolist()) and first not in full.ids
    assert full.ids.tolist()[:10] == [i for i in order.tolist() if i != first][:10]  # the priority order kept
    at = {int(i): (float(x), float(y)) for i, x, y in zip(full.ids, full.x, full.y, strict=True)}
    expected = projection(new.vectors_of(np.asarray(new.ids)))
    for tid, (x, y) in zip(np.asarray(new.ids).tolist(), expected, strict=True):
        assert at[tid] == pytest.approx((float(x), float(y)), abs=1e-5)


def test_windows_take_their_labels_from_the_packed_labels_of_the_full_layout(tmp_path: Path) -> None:
    """Every track's title, artist and album packed with the full layout (one pass) answer a window as the
    catalogue would: same JSON; accents and a track without an indexed file (left out) included."""
    from soundalike.search.index import VectorIndex

    with Library.open(tmp_path / "lib") as lib:
        add_tracks(lib, 0, 200)
        lib.set_tags(7, Tags(artist="Sigur Rós", album="Ágætis byrjun", title="Svefn-g-englar 🎧"))
        lib.conn.execute("UPDATE files SET status='missing' WHERE track_id=9")
        index = VectorIndex.from_library(lib, DESCRIPTOR_MODEL, ann=False)
        overview, projection, order = overview_layout(index, "pca", 50)
        full = full_layout(index, projection, order, lib.label_rows)
        assert full.labels is not None and 9 not in full.labels.ids and len(full.labels.ids) == 199
        assert full.labels.lookup([7, 9, 3]) == lib.labels([7, 9, 3]) == [lib.labels([7])[0], lib.labels([3])[0]]
        assert lib.labels([7])[0].title == "Svefn-g-englar 🎧"
        plain = full_layout(index, projection, order)
        assert plain.labels is None
        for box in [(0.0, 1.0, 0.0, 1.0), (0.2, 0.7, 0.1, 0.6)]:
            assert answer("m", overview, full, box, 60, lib.labels, 200) == \
                answer("m", overview, plain, box, 60, lib.labels, 200)
