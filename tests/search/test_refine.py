"""The re-rank store of a compact index: float16 search vectors by track id, in a file beside the index, written with
it, brought up to date with it, and read by re-ranks instead of the catalogue."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from soundalike.audio.analysis import Tags
from soundalike.audio.descriptors import DESCRIPTOR_DIM
from soundalike.library.catalog import DESCRIPTOR_MODEL, Library, NewTrack
from soundalike.search.index import VectorIndex, index_paths
from soundalike.search.refine import RefineStore, StoreReplaced, fingerprint, store_paths
from soundalike.search.vectors import unit_rows

from .test_rerank import tight_clusters

DIM = 24


def vectors(n: int, seed: int = 0) -> np.ndarray:
    return unit_rows(np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32))


def test_rows_come_back_by_id_within_float16_rounding(tmp_path: Path) -> None:
    store = RefineStore.create(tmp_path / "k", DIM, "s1")
    x = vectors(50)
    store.append(np.arange(100, 150), x)
    ids, got = store.read(np.array([149, 100, 7, 120, 100]))  # an unknown id, a duplicate
    assert ids.tolist() == [100, 120, 149]
    np.testing.assert_allclose(got, x[[0, 20, 49]], atol=1e-3)
    assert not np.array_equal(got, x[[0, 20, 49]])  # rounded, not the float32 values
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)  # unit length again
    assert store.read(np.array([1, 2]))[1].shape == (0, DIM)


def test_a_saved_store_opens_only_with_its_statistics_and_whole(tmp_path: Path) -> None:
    stem = tmp_path / "k"
    store = RefineStore.create(stem, DIM, "s1")
    x = vectors(30, seed=1)
    store.append(np.arange(30), x)
    store.remove(np.array([3, 4, 99]))
    store.save()
    again = RefineStore.open(stem, DIM, "s1")
    assert again is not None and len(again) == 28 and again.dead == 2
    ids, got = again.read(np.arange(30))
    assert 3 not in ids and len(ids) == 28
    np.testing.assert_allclose(got, x[ids], atol=1e-3)
    assert RefineStore.open(stem, DIM, "other statistics") is None
    assert RefineStore.open(stem, DIM + 1, "s1") is None
    rows, _ = store_paths(stem)
    with open(rows, "r+b") as f:  # cut short: the map names rows the file no longer has
        f.truncate(10 * DIM * 2)
    assert RefineStore.open(stem, DIM, "s1") is None
    store_paths(stem)[1].write_bytes(b"garbage")
    assert RefineStore.open(stem, DIM, "s1") is None
    assert RefineStore.open(tmp_path / "absent", DIM, "s1") is None


def test_a_replaced_rows_file_is_never_written_by_an_older_store(tmp_path: Path) -> None:
    """Another process writing the store again (new statistics) makes a new rows file: a store opened before
    neither appends to it nor is its map taken for the new rows; a reader keeps reading its own rows."""
    stem = tmp_path / "k"
    old = RefineStore.create(stem, DIM, "s1")
    x = vectors(10, seed=2)
    old.append(np.arange(10), x)
    old.save()
    reader = RefineStore.open(stem, DIM, "s1")
    assert reader is not None
    new = RefineStore.create(stem, DIM, "s2")
    new.append(np.arange(5), -x[:5])
    new.save()
    with pytest.raises(StoreReplaced):
        old.append(np.array([11]), x[:1])
    ids, got = reader.read(np.arange(10))
    np.testing.assert_allclose(got, x, atol=1e-3)  # the rows it opened
    assert RefineStore.open(stem, DIM, "s1") is None  # the map is the new store's
    reopened = RefineStore.open(stem, DIM, "s2")
    assert reopened is not None and reopened.read(np.arange(10))[0].tolist() == [0, 1, 2, 3, 4]


def test_appends_of_two_stores_of_one_file_keep_their_own_rows(tmp_path: Path) -> None:
    """Two processes appending to the same rows file (each under its lock) find their own rows again."""
    stem = tmp_path / "k"
    RefineStore.create(stem, DIM, "s1")
    a, b = RefineStore.open(stem, DIM, "s1"), RefineStore.open(stem, DIM, "s1")
    assert a is not None and b is not None
    xa, xb = vectors(4, seed=3), vectors(3, seed=4)
    a.append(np.arange(4), xa)
    b.append(np.arange(10, 13), xb)
    a.append(np.array([2]), xb[:1])  # replaced: the newest row counts
    np.testing.assert_allclose(a.read(np.arange(4))[1], np.vstack([xa[:2], xb[:1], xa[3:]]), atol=1e-3)
    np.testing.assert_allclose(b.read(np.arange(10, 13))[1], xb, atol=1e-3)
    assert a.dead == 1 + 3  # its replaced row, and b's rows it does not own
    assert len(store_paths(stem)[0].read_bytes()) == 8 * DIM * 2


def test_a_compact_index_writes_its_store_and_reranks_from_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    with Library.open(tmp_path / "lib") as lib:
        tight_clusters(lib, 1200, seed=5)
        compact = VectorIndex.from_library(lib, DESCRIPTOR_MODEL, ann=True, codec="sq8")
        assert compact.refine is not None and len(compact.refine) == len(compact.ids)
        rows, _ = store_paths(index_paths(lib, DESCRIPTOR_MODEL)[0].with_suffix(""))
        stats = lib.stats()  # `soundalike info`: the indexes' folder (the store in it) and the catalogue on disk
        assert stats["indexes_bytes"] > rows.stat().st_size == 1200 * DESCRIPTOR_DIM * 2
        assert stats["catalogue_bytes"] >= (tmp_path / "lib" / "catalog.sqlite").stat().st_size > 0
        catalogue_ids, floats = compact._catalogue_vectors(lib, compact.ids)
        stored_ids, stored = compact.exact_vectors(lib, compact.ids[::-1])
        assert np.array_equal(stored_ids, compact.ids[::-1])
        np.testing.assert_allclose(stored, floats[::-1], atol=1e-3)
        # a search re-ranks without reading the catalogue's vectors
        monkeypatch.setattr(Library, "vectors_of", lambda *a, **k: (_ for _ in ()).throw(AssertionError("read")))
        compact.ann.params.nprobe = compact.ann.params.nlist
        q = floats[7]
        got, scores = compact.search(q, 10, exclude={int(compact.ids[7])}, lib=lib)
        exact = floats @ q
        exact[7] = -np.inf
        want = compact.ids[np.argsort(-exact, kind="stable")[:10]]
        assert len(set(got.tolist()) & set(want.tolist())) >= 9
        np.testing.assert_allclose(scores, exact[np.searchsorted(compact.ids, got)], atol=1e-4)


def test_the_store_follows_the_library_and_comes_back_when_lost(tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        tight_clusters(lib, 1000, seed=6)
        first = VectorIndex.from_library(lib, DESCRIPTOR_MODEL, ann=True, codec="sq8")
        assert first.refine is not None
        stem = index_paths(lib, DESCRIPTOR_MODEL)[0].with_suffix("")
        rng = np.random.default_rng(7)
        lib.add_tracks([NewTrack(path=f"/more/{i}.flac", audio_hash=f"more{i}", duration=60.0,
                                 tags=Tags(artist=f"B{i}", title=f"U{i}"),
                                 vectors={DESCRIPTOR_MODEL: rng.standard_normal(DESCRIPTOR_DIM)})
                        for i in range(500)])  # 500 more tracks (not a rebuild: under twice as many) ...
        gone = [int(t) for t in first.ids[:50]]
        lib.remove_files([f"/m/{t - 1}.flac".encode() for t in gone])  # ... and 50 fewer
        second = VectorIndex.from_library(lib, DESCRIPTOR_MODEL, ann=True, codec="sq8")
        assert second.refine is not None and len(second.refine) == len(second.ids) == 1450
        assert second.refine.dead == 50
        assert not second.refine.has(np.array(gone)).any()
        _, floats = second._catalogue_vectors(lib, second.ids)
        np.testing.assert_allclose(second.exact_vectors(lib, second.ids)[1], floats, atol=1e-3)
        for path in store_paths(stem):
            path.unlink()
        third = VectorIndex.from_library(lib, DESCRIPTOR_MODEL, ann=True, codec="sq8")
        assert third.refine is not None and len(third.refine) == 1450  # written again from the catalogue
        stats = fingerprint(third.embedding.to_json())
        assert RefineStore.open(stem, third.embedding.dim, stats) is not None


def test_without_a_store_a_read_only_library_reranks_from_the_catalogue(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    with Library.open(tmp_path / "lib") as lib:
        tight_clusters(lib, 1000, seed=8)
        built = VectorIndex.from_library(lib, DESCRIPTOR_MODEL, ann=True, codec="sq8")
        stem = index_paths(lib, DESCRIPTOR_MODEL)[0].with_suffix("")
    for path in store_paths(stem):
        path.unlink()

    def read_only(*args: object) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(RefineStore, "create", read_only)  # (tests run as root: a mode would not stop the write)
    with Library.open(tmp_path / "lib", create=False, readonly=True) as lib:
        index = VectorIndex.from_library(lib, DESCRIPTOR_MODEL, ann=True, codec="sq8")
        assert index.refine is None and len(index) == 1000
        ids, got = index.exact_vectors(lib, built.ids[:20])
        assert np.array_equal(ids, built.ids[:20])
        np.testing.assert_array_equal(got, built._catalogue_vectors(lib, built.ids[:20])[1])


def test_a_fill_cut_short_resumes_from_its_last_save(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store of an existing index is written a chunk at a time and its map saved every few chunks: after a
    kill the next open appends only what the last save did not hold (not every track again)."""
    from soundalike.search import index as index_module

    with Library.open(tmp_path / "lib") as lib:
        tight_clusters(lib, 1000, seed=9)
        VectorIndex.from_library(lib, DESCRIPTOR_MODEL, ann=True, codec="sq8")
        stem = index_paths(lib, DESCRIPTOR_MODEL)[0].with_suffix("")
        for path in store_paths(stem):
            path.unlink()
        monkeypatch.setattr(index_module, "CHUNK", 100)
        monkeypatch.setattr(index_module, "REFINE_SAVE_EVERY", 300)
        appended: list[int] = []
        plain_append = RefineStore.append

        def killed_on_the_fifth(self: RefineStore, ids: np.ndarray, vectors: np.ndarray) -> None:
            if len(appended) == 4:
                raise KeyboardInterrupt  # what a kill leaves: rows written, the map as last saved
            appended.append(len(ids))
            plain_append(self, ids, vectors)

        monkeypatch.setattr(RefineStore, "append", killed_on_the_fifth)
        with pytest.raises(KeyboardInterrupt):
            VectorIndex.from_library(lib, DESCRIPTOR_MODEL, ann=True, codec="sq8")
        monkeypatch.setattr(RefineStore, "append", plain_append)
        again = VectorIndex.from_library(lib, DESCRIPTOR_MODEL, ann=True, codec="sq8")
        assert again.refine is not None and len(again.refine) == 1000
        # the 300 saved rows kept, the 100 written after the save dead, the other 700 appended once
        assert again.refine.dead == 100 and len(again.refine.row_ids) == 1100
