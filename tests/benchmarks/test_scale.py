"""The scale benchmark end to end at 2,000 tracks: build through the catalogue API, serve, measure; the JSON's
shape, and a map overview that is a sample (never every point above its limit)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scale

from soundalike.library.catalog import SCHEMA_VERSION


def test_build_and_measure_a_small_catalogue(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    timings = scale.build(library, 2000, seed=0)
    assert timings["index"]["dim"] == 1882 and "+" in timings["index"]["model"]  # the three-part default
    report = scale.measure(library, clients=2, seconds=2.0, map_limit=500, rounds=2, alone=3, profile=2.0)
    assert report["n"] == 2000 and report["rss_mb"] > 0 and report["disk_mb"] > 0
    rows = {r["endpoint"]: r for r in report["results"]}
    assert set(rows) == set(scale.WEIGHTS) and "health" in rows
    for row in rows.values():
        assert row["errors"] == 0 and row["count"] > 0 and 0 < row["p50_ms"] <= row["p99_ms"]
        assert 0 < row["alone_p50_ms"] <= row["alone_p99_ms"]
    assert len(report["rounds"]) == 2 and all(set(r["p99_vs_health"]) == set(scale.WEIGHTS) - {"health"}
                                              for r in report["rounds"])
    # the results pool both rounds
    assert sum(r["count"] for r in rows.values()) + report["errors"] == sum(r["requests"] for r in report["rounds"])
    warm = report["warm_up"]
    assert warm["map_overview_points"] == 500 < warm["map_overview_total"] == 2000
    profile = report["profile"]  # py-spy (a dev dependency) sampled the workers in the first round
    assert profile["busy_samples"] > 0 and abs(sum(profile["shares"].values()) - 1) < 0.01
    assert {"track_similar", "list_tracks"} <= set(profile["shares"])  # endpoints named by their functions
    # --versus: another checkout's server (here this one's own code) and this one's, alternated, one report
    ab = scale.versus(library, Path(scale.__file__).resolve().parent.parent, pairs=1, clients=2, seconds=1.0,
                      map_limit=500, rounds=1, alone=1)
    assert [(r["code"], r["pair"]) for r in ab["runs"]] == [("versus", 1), ("this", 1)]
    assert all(r["n"] == 2000 and r["errors"] == 0 for r in ab["runs"])
    assert set(ab["summary"]) == {"versus", "this"} and ab["ratios"]["requests_per_s"] > 0
    assert ab["versus"]["commit"] and "similar_p99_ms" in ab["ratios"]
    with pytest.raises(SystemExit, match="not a soundalike checkout"):
        scale.versus(library, tmp_path, pairs=1, clients=1, seconds=1.0)
    assert set(report["targets"]) == {"p99_within_3x_health", "p99_within_50ms", "rss_within_6gb",
                                      "map_overview_within_1s"}
    assert all(0 <= n <= 2 for n in report["rounds_within_3x_health"].values())
    cpu = scale.cpu_per_request(library, per_kind=3, map_limit=500)  # --cpu-only, on the same catalogue
    rows = {r["endpoint"]: r for r in cpu["results"]}
    assert cpu["n"] == 2000 and set(rows) == set(scale.WEIGHTS)
    assert all(r["cpu_ms"] > 0 for r in rows.values()) and rows["similar"]["vs_similar"] == 1.0
    cells = cpu["index"]  # 2,000 tracks are searched exactly: one cell, every track scanned
    assert (cells["kind"], cells["nlist"], cells["nprobe"]) == ("flat", 1, 1)
    assert cells["scanned_per_search"]["mean"] == cells["scanned_per_search"]["even_split"] == 2000
    words = scale.search_word_costs(library, words=("u2", "e", "lis"), repeats=1)  # --search-words
    assert words["n"] == 2000 and words["schema_before"] == SCHEMA_VERSION
    rows = {r["word"]: r for r in words["words"]}
    assert rows["u2"]["matches"] == 0 and rows["u2"]["through_index"]  # no trigram starts with it: nothing read
    assert not rows["e"]["through_index"] and rows["lis"]["through_index"]  # common: scanned; 3 letters: phrase
    assert all(r["index_ms"] >= 0 and r["scan_ms"] >= 0 for r in rows.values())
    reads = scale.rerank_read_costs(library, tracks=10, sets=3, rounds=2)  # --rerank-reads
    assert len(reads["models"]) == 3
    assert set(reads["median_ms"]) == {"query_a_model", "one_query", "catalogue_exact", "store_exact"}
    assert all(len(v) == 2 for v in reads["ms_a_read"].values()) and reads["one_vs_per_model"] > 0
    assert reads["store_vs_catalogue"] > 0 and 0 < reads["store_max_score_error"] < 1e-3  # float16, not the codes


def test_index_cells_of_an_approximate_index(tmp_path: Path) -> None:
    from soundalike.library.catalog import Library
    from soundalike.search.index import VectorIndex

    library = tmp_path / "lib"
    scale.build(library, 3000, seed=0, index=False)
    with Library.open(library, create=False) as lib:
        from soundalike.models.embedding import resolve_model

        index = VectorIndex.from_library(lib, resolve_model(lib, "default"), ann=True, codec="sq8")
    from soundalike.search.ann import trainable_nlist

    assert index.ann.params.nlist == trainable_nlist(3000)  # the in-parts build's cell count
    cells = scale.index_cells(index, queries=50)
    assert cells["kind"] == "ivf" and cells["nlist"] == index.ann.params.nlist and cells["nprobe"] >= 1
    sizes, scanned = cells["cell_size"], cells["scanned_per_search"]
    assert sizes["p0"] <= sizes["p50"] <= sizes["p100"] and sizes["p0"] >= 0 and scanned["queries"] == 50
    # what a search scans: the tracks of its probed cells (recounted here from the index's own cells)
    pick = np.sort(np.random.default_rng(0).choice(index.ids, 50, replace=False))
    cell_of = index.ann.cells(index.vectors_of(index.ids))
    per_cell = np.bincount(cell_of, minlength=cells["nlist"])
    want = per_cell[index.ann.probed_cells(index.vectors_of(pick))].sum(axis=1).mean()
    assert scanned["mean"] == round(float(want), 1) and scanned["mean"] >= scanned["even_split"] / 10


def test_recall_of_the_served_codes_with_and_without_the_exact_rerank(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    scale.build(library, 2000, seed=0, index=False)
    table = scale.ann_table(library, queries=40, served_only=True, reranks=(1, 8))
    rows = {(r["index"], r["nprobe"]): r["recall_at_10"] for r in table["rows"]}
    from soundalike.search import index as search_index

    assert search_index.RERANK == 4  # restored after the other factors were measured
    assert rows[("ivf-sq8+rerank8", 64)] == 1.0 and ("ivf-sq8+rerank1", 1) in rows
    assert table["n"] == 2000 and set(table["memory_mb"]) == {"ivf-sq8"}
    for nprobe in (1, 64):
        assert rows[("ivf-sq8+rerank4", nprobe)] >= rows[("ivf-sq8", nprobe)]
    assert rows[("ivf-sq8+rerank4", 64)] == 1.0  # every cell scanned: the re-rank finds the exact neighbours


def test_a_continue_request_is_five_tracks_of_one_album(tmp_path: Path) -> None:
    """Like a user's playlist: the workload's continue requests never cross an album (they did 40 % of the time)."""
    from soundalike.library.catalog import Library

    library = tmp_path / "lib"
    scale.build(library, 300, seed=0, index=False)
    work = scale.workload(library)
    with Library.open(library, create=False, readonly=True) as lib:
        for tid in work.ids[::7]:
            _, url, _, body = work.request("continue", tid)
            tracks, own = lib.tracks(body["track_ids"]), lib.track(tid)
            assert url == "/api/continue" and len(tracks) == 5 and own is not None
            assert {(t.artist, t.album) for t in tracks} == {(own.artist, own.album)}, body


def test_a_profile_is_summarised_by_endpoint_without_idle_threads() -> None:
    raw = "\n".join([
        "process 1:\"serve\";Runner.run (asyncio/runners.py:118) 30",
        "process 2:\"serve\";WorkerThread.run (anyio/_backends/_asyncio.py:986);_run_sync_endpoint (fastapi/x.py:9);"
        "track_similar (soundalike/app/server/app.py:400);similar (soundalike/recommend/similar.py:80);"
        "RefineStore.read (soundalike/search/refine.py:200) 45",
        "process 2:\"serve\";WorkerThread.run (anyio/_backends/_asyncio.py:986);_run_sync_endpoint (fastapi/x.py:9);"
        "track_similar (soundalike/app/server/app.py:400);Library._tracks_in (soundalike/library/catalog.py:919) 15",
        "process 2:\"serve\";WorkerThread.run (anyio/_backends/_asyncio.py:986);Queue.get (queue.py:171);"
        "Condition.wait (threading.py:327) 500",
        "not a stack line",
    ])
    summary = scale.summarise_profile(raw)
    assert summary["busy_samples"] == 90  # the waiting pool thread's 500 samples are not CPU
    assert summary["shares"] == {"track_similar": 0.667, "event loop and HTTP": 0.333}
    assert summary["top_leaves"]["track_similar"] == [["RefineStore.read", 0.75], ["Library._tracks_in", 0.25]]
