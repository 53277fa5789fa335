"""Neighbourhood smoothing (database-side augmentation): the exact graph, its incremental updates, the smoothed
vectors and expanded queries, and the ``~nnK`` keys that ask for them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from soundalike.library.catalog import CatalogError, Library
from soundalike.recommend import load_index
from soundalike.search.index import VectorIndex, graph_path
from soundalike.search.neighbours import (
    ALPHA,
    NeighbourGraph,
    compute_graph,
    expanded_query,
    smoothed,
    updated_graph,
)
from soundalike.search.space import (
    MAX_NEIGHBOURS,
    SpaceError,
    model_parts,
    part_weights,
    split_neighbours,
    with_neighbours,
)
from soundalike.search.vectors import unit_rows


def _unit(n: int, dim: int, seed: int) -> np.ndarray:
    return unit_rows(np.random.default_rng(seed).normal(size=(n, dim)))


def _brute(ids: np.ndarray, x: np.ndarray, others: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's nearest other rows by a full sort: the reference the graph must equal."""
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :others]
    return ids[order], np.take_along_axis(sims, order, axis=1)


def test_graph_holds_each_tracks_nearest_others_best_first() -> None:
    ids = np.arange(10, 70, 2, dtype=np.int64)
    x = _unit(len(ids), 16, 0)
    graph = compute_graph(ids, x, 4, "s")
    want_ids, want_scores = _brute(ids, x, 4)
    np.testing.assert_array_equal(graph.neighbours, want_ids)
    np.testing.assert_allclose(graph.scores, want_scores, rtol=1e-6)
    assert not (graph.neighbours == ids[:, None]).any()  # never itself


def test_a_library_smaller_than_the_neighbourhood_pads_with_nothing() -> None:
    ids = np.array([3, 5, 9], dtype=np.int64)
    graph = compute_graph(ids, _unit(3, 8, 1), 4, "s")
    assert (graph.neighbours[:, 2:] == -1).all() and (graph.neighbours[:, :2] >= 0).all()
    assert np.isneginf(graph.scores[:, 2:]).all()
    out = smoothed(_unit(3, 8, 1), graph)  # missing neighbours weigh nothing
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)


def test_updated_graph_equals_the_graph_computed_afresh() -> None:
    """Tracks come and go over several rounds; the updated graph is always the one computed from scratch."""
    rng = np.random.default_rng(2)
    pool_ids = np.arange(200, dtype=np.int64)
    pool = _unit(200, 12, 3)
    present = np.sort(rng.choice(200, 40, replace=False))
    graph = compute_graph(pool_ids[present], pool[present], 5, "s")
    for round_ in range(6):
        keep = present[rng.random(len(present)) > 0.2]  # some leave
        new = rng.choice(np.setdiff1d(np.arange(200), present), 3 + round_ * 4, replace=False)  # some arrive
        present = np.sort(np.concatenate([keep, new]))
        graph, changed = updated_graph(graph, pool_ids[present], pool[present])
        fresh = compute_graph(pool_ids[present], pool[present], 5, "s")
        assert changed
        np.testing.assert_array_equal(graph.ids, fresh.ids)
        np.testing.assert_array_equal(graph.neighbours, fresh.neighbours)
        np.testing.assert_allclose(graph.scores, fresh.scores, rtol=1e-6)
    same, changed = updated_graph(graph, pool_ids[present], pool[present])
    assert same is graph and not changed


def test_a_reused_track_id_is_a_new_track_to_the_graph() -> None:
    """SQLite gives a new track the id of a deleted one: same ids, another vector — not the old graph row."""
    ids = np.arange(30, dtype=np.int64)
    x = _unit(30, 8, 6)
    graph = compute_graph(ids, x, 4, "s")
    y = x.copy()
    y[[3, 17]] = _unit(2, 8, 7)  # two ids now hold other tracks
    updated, changed = updated_graph(graph, ids, y)
    fresh = compute_graph(ids, y, 4, "s")
    assert changed
    np.testing.assert_array_equal(updated.neighbours, fresh.neighbours)
    np.testing.assert_allclose(updated.scores, fresh.scores, rtol=1e-6)


def test_equal_cosines_go_to_the_smaller_track_id_however_the_graph_was_made() -> None:
    base = _unit(6, 5, 8)
    x = np.repeat(base, 4, axis=0)  # every vector four times: ties everywhere
    ids = np.arange(len(x), dtype=np.int64) * 7
    fresh = compute_graph(ids, x, 5, "s")
    for row in range(len(x)):  # the three copies first (smallest ids), then the nearest other vector's copies
        copies = [int(i) for i in ids[(row // 4) * 4:(row // 4) * 4 + 4] if i != ids[row]]
        assert fresh.neighbours[row, :3].tolist() == copies
        assert fresh.neighbours[row, 3] < fresh.neighbours[row, 4]
    start = compute_graph(ids[:10], x[:10], 5, "s")
    grown, _ = updated_graph(start, ids, x)
    np.testing.assert_array_equal(grown.neighbours, fresh.neighbours)


def test_an_empty_library_expands_nothing() -> None:
    q = _unit(1, 4, 9)[0]
    np.testing.assert_allclose(expanded_query(q, np.zeros(0, np.int64), np.zeros((0, 4), np.float32), 3), q,
                               rtol=1e-6)
    np.testing.assert_allclose(expanded_query(q, np.zeros(0, np.int64), np.zeros((0, 4), np.float32), 3,
                                              exclude=5), q, rtol=1e-6)


def test_smoothed_vectors_and_expanded_queries_follow_the_formula() -> None:
    ids = np.arange(25, dtype=np.int64) * 3
    x = _unit(25, 10, 4)
    graph = compute_graph(ids, x, 3, "s")
    out = smoothed(x, graph)
    for row in (0, 7, 24):
        nbrs = np.searchsorted(ids, graph.neighbours[row])
        w = np.maximum(x[nbrs] @ x[row], 0) ** ALPHA
        want = x[row] + w @ x[nbrs]
        np.testing.assert_allclose(out[row], want / np.linalg.norm(want), rtol=1e-5, atol=1e-6)
        # A library track's query, expanded against the library without itself, is its smoothed vector.
        np.testing.assert_allclose(expanded_query(x[row], ids, x, 3, exclude=int(ids[row])), out[row], atol=1e-6)


def test_graph_file_round_trip_and_mismatch(tmp_path: Path) -> None:
    ids = np.arange(12, dtype=np.int64)
    graph = compute_graph(ids, _unit(12, 6, 5), 3, "stats-a")
    path = tmp_path / "g.graph.npz"
    graph.save(path)
    back = NeighbourGraph.load(path, "stats-a", 3)
    assert back is not None
    np.testing.assert_array_equal(back.neighbours, graph.neighbours)
    assert NeighbourGraph.load(path, "stats-b", 3) is None  # other statistics: computed again
    assert NeighbourGraph.load(path, "stats-a", 4) is None  # another K
    path.write_bytes(b"garbage")
    assert NeighbourGraph.load(path, "stats-a", 3) is None
    graph.save(path)
    path.write_bytes(path.read_bytes()[:200])  # cut short: a damaged zip
    assert NeighbourGraph.load(path, "stats-a", 3) is None


def test_keys_carry_the_neighbourhood() -> None:
    assert split_neighbours("descriptor@0.2+melae-1a@0.8~nn5") == ("descriptor@0.2+melae-1a@0.8", 5)
    assert split_neighbours("descriptor") == ("descriptor", 0)
    assert model_parts("descriptor@0.2+melae-1a@0.8~nn5") == ["descriptor", "melae-1a"]
    assert part_weights("descriptor@0.2+melae-1a@0.8~nn5") == pytest.approx([0.2, 0.8])
    assert with_neighbours("descriptor~nn3", 5) == "descriptor~nn5"
    assert with_neighbours("descriptor~nn3", 0) == "descriptor~nn3"
    for bad in ("descriptor~nn1", "descriptor~nn05", f"descriptor~nn{MAX_NEIGHBOURS + 1}", "descriptor~nn3~nn5"):
        with pytest.raises(SpaceError):
            split_neighbours(bad)
    # not a mark at the end: part of a name (a checkpoint's folder, a typo that names no embedding)
    for name in ("/tmp/x~nnet/c.pt", "descriptor~nnx", "~nn5", "descriptor~nn\u00b2"):
        assert split_neighbours(name) == (name, 0)


def test_a_smoothed_index_searches_smoothed_vectors_and_keeps_its_graph(styled: Path, tmp_path: Path) -> None:
    library = tmp_path / "lib"
    shutil.copytree(styled / "lib", library, ignore=shutil.ignore_patterns("indexes"))
    with Library.open(library) as lib:
        index = load_index(lib, "descriptor~nn4")  # first: the index folder does not exist yet
        assert graph_path(lib, index.embedding.model).exists()
        plain = load_index(lib, "descriptor")
        assert index.smoothed and not plain.smoothed and index.embedding.neighbours == 4
        np.testing.assert_array_equal(index.ids, plain.ids)
        graph = compute_graph(plain.ids, plain.vectors, 3, "s")
        np.testing.assert_allclose(index.vectors, smoothed(plain.vectors, graph), atol=1e-6)
        # A track's own plain vector as an outside query (its audio excluded) finds what its library query finds.
        track = int(plain.ids[5])
        q = index.expand(plain.vector_of(track), exclude=track)
        np.testing.assert_allclose(q, index.vector_of(track), atol=1e-6)
        assert index.search(q, 3, exclude={track})[0].tolist() == index.search(
            index.vector_of(track), 3, exclude={track})[0].tolist()
        # The graph is kept beside the index and reused while nothing changes.
        path = graph_path(lib, index.embedding.model)
        written = path.stat().st_mtime_ns
        load_index(lib, "descriptor~nn4")
        assert path.stat().st_mtime_ns == written
        # A track leaves: the graph follows, as if computed afresh.
        lib.conn.execute("DELETE FROM vectors WHERE track_id=?", (int(plain.ids[2]),))
        lib.conn.commit()
        after = VectorIndex.from_library(lib, "descriptor~nn4")
        rest = load_index(lib, "descriptor")
        np.testing.assert_allclose(after.vectors, smoothed(rest.vectors, compute_graph(rest.ids, rest.vectors, 3,
                                                                                        "s")), atol=1e-6)
        assert path.stat().st_mtime_ns != written


def test_resolve_model_and_default_key_keep_the_mark(indexed: tuple[Path, Path, list],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from soundalike.models import embedding

    _, library, _ = indexed
    with Library.open(library) as lib:
        assert embedding.resolve_model(lib, "descriptor~nn5") == "descriptor~nn5"
        with pytest.raises(CatalogError, match="from 2 to"):
            embedding.resolve_model(lib, "descriptor~nn1")
        plain_stats = load_index(lib, "descriptor").embedding.to_json()
        assert "neighbours" not in plain_stats  # the statistics' fingerprint of an unsmoothed key is as it was
        assert load_index(lib, "descriptor~nn3").embedding.to_json()["neighbours"] == 3
        monkeypatch.setattr(embedding, "default_neighbours", lambda: 0)
        plain = embedding.default_key(lib)
        assert split_neighbours(plain)[1] == 0 and "+" in plain  # the shipped parts, fused
        monkeypatch.setattr(embedding, "default_neighbours", lambda: 6)
        assert embedding.default_key(lib) == with_neighbours(plain, 6)
        assert embedding.resolve_model(lib, "default") == with_neighbours(plain, 6)
        assert embedding.resolve_model(lib, "default~nn3") == with_neighbours(plain, 3)
        index = load_index(lib, "default~nn3")
        assert index.smoothed and index.embedding.model == with_neighbours(plain, 3)
