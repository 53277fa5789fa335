"""The search index: unit-length search vectors, the persisted IVF index following the library, frozen statistics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from soundalike.audio.analysis import Tags
from soundalike.audio.descriptors import DESCRIPTOR_DIM
from soundalike.library.catalog import DESCRIPTOR_MODEL, Library, NewTrack
from soundalike.recommend import load_index
from soundalike.search.index import VectorIndex, index_paths


def test_vectors_used_are_unit_length(styled: Path) -> None:
    with Library.open(styled / "lib") as lib:
        index = load_index(lib, "descriptor")
    np.testing.assert_allclose(np.linalg.norm(index.vectors, axis=1), 1.0, rtol=1e-5)


def test_large_library_index_is_persisted_and_follows_the_library(styled: Path, tmp_path: Path) -> None:
    library = tmp_path / "lib"
    shutil.copytree(styled / "lib", library)
    with Library.open(library) as lib:
        exact = VectorIndex.from_library(lib, "descriptor", ann=False)
        forced = VectorIndex.from_library(lib, "descriptor", ann=True)
        index_file, stats_file = index_paths(lib, "descriptor")
        assert forced.ann is not None and index_file.exists() and stats_file.exists()
        q = exact.vector_of(int(exact.ids[0]))
        assert forced.search(q, 5)[0].tolist() == exact.search(q, 5)[0].tolist()  # one cell: exact here
        built = index_file.stat().st_mtime_ns
        again = VectorIndex.from_library(lib, "descriptor", ann=True)
        assert index_file.stat().st_mtime_ns == built and again.ann is not None  # reused, not rebuilt
        # A track leaves the library: the persisted index drops it on the next open.
        gone = int(exact.ids[3])
        lib.conn.execute("DELETE FROM vectors WHERE track_id=?", (gone,))
        lib.conn.commit()
        after = VectorIndex.from_library(lib, "descriptor", ann=True)
        assert after.ann is not None and gone not in after.ann and len(after.ann) == len(exact) - 1
        assert gone not in after.search(q, 23)[0].tolist()
        # A corrupt index file is rebuilt, not fatal.
        index_file.write_bytes(b"garbage")
        assert len(VectorIndex.from_library(lib, "descriptor", ann=True).ann or []) == len(exact) - 1



@pytest.mark.parametrize("codec", [None, "sq8"])
def test_a_track_added_after_the_last_one_left_is_searched_by_its_own_vector(tmp_path: Path, codec: str | None
                                                                             ) -> None:
    """A persisted index keys vectors by track id: a new track must never get the id of one deleted before (as
    SQLite gave out the highest id again until catalogue schema 10), or the index would serve the old vector."""
    rng = np.random.default_rng(0)

    def track(i: int) -> NewTrack:
        return NewTrack(path=f"/m/{i}.flac", audio_hash=f"h{i}", duration=60.0, tags=Tags(),
                        vectors={DESCRIPTOR_MODEL: rng.standard_normal(DESCRIPTOR_DIM).astype(np.float32)})

    with Library.open(tmp_path / "lib") as lib:
        ids = lib.add_tracks([track(i) for i in range(40)])
        assert VectorIndex.from_library(lib, DESCRIPTOR_MODEL, ann=True, codec=codec).ann is not None  # saved
        lib.remove_files([b"/m/39.flac"])  # the highest id leaves ...
        (new,) = lib.add_tracks([track(40)])  # ... and a new track comes, before any query
        assert new not in ids
        index = VectorIndex.from_library(lib, DESCRIPTOR_MODEL, ann=True, codec=codec)
        assert ids[-1] not in index and new in index
        want = index.embedding.transform(lib.vectors(DESCRIPTOR_MODEL, ids=[new])[1])[0]
        assert index.search(want, 1)[0].tolist() == [new]  # through the approximate index's own vectors
        got = index.vector_of(new)  # a compact index decodes it from there too
        assert float(got @ want / np.linalg.norm(got) / np.linalg.norm(want)) > 0.9  # the old one: ~0


@pytest.mark.parametrize("ann", [False, True])
def test_statistics_are_frozen_with_the_index_and_refreshed_on_rebuild(styled: Path, tmp_path: Path,
                                                                       ann: bool) -> None:
    """One rule for exact and IVF search: a track's search vector (and every score) stays put while tracks come
    and go, until the library has grown or shrunk 2x since the index was built; then the statistics are refitted."""
    library = tmp_path / "lib"
    shutil.copytree(styled / "lib", library, ignore=shutil.ignore_patterns("indexes"))  # no statistics yet
    with Library.open(library) as lib:
        ids, _ = lib.vectors("descriptor")
        held = [int(i) for i in ids[:8]]
        marks = ",".join("?" * len(held))
        saved = lib.conn.execute(f"SELECT * FROM vectors WHERE track_id IN ({marks})", held).fetchall()
        lib.conn.execute(f"DELETE FROM vectors WHERE track_id IN ({marks})", held)
        first = VectorIndex.from_library(lib, "descriptor", ann=ann)
        assert first.embedding.built_on == len(ids) - 8 and first.embedding.kind == ("ivf" if ann else "flat")
        a, b = int(first.ids[0]), int(first.ids[1])
        before = first.vector_of(a).copy()
        marks = ",".join("?" * len(saved[0]))
        lib.conn.executemany(f"INSERT INTO vectors VALUES ({marks})", saved)  # 16 -> 24 tracks: < 2x
        grown = VectorIndex.from_library(lib, "descriptor", ann=ann)
        assert len(grown) == len(ids) and grown.embedding.built_on == len(ids) - 8
        np.testing.assert_array_equal(grown.vector_of(a), before)
        assert float(grown.vector_of(a) @ grown.vector_of(b)) == pytest.approx(float(before @ first.vector_of(b)))
        np.testing.assert_allclose(grown.vector_of(held[0]), grown.embedding.transform(
            lib.vectors("descriptor")[1][0])[0], rtol=1e-6)  # a returning track: the frozen statistics
        # shrink below half of what the statistics were fitted on: rebuilt with fresh statistics
        keep = [int(i) for i in ids[:7]]
        lib.conn.execute(f"DELETE FROM vectors WHERE track_id NOT IN ({','.join('?' * 7)})", keep)
        shrunk = VectorIndex.from_library(lib, "descriptor", ann=ann)
        assert shrunk.embedding.built_on == 7
        _, stats_file = index_paths(lib, "descriptor")
        assert json.loads(stats_file.read_text())["built_on"] == 7
        assert not np.allclose(shrunk.vector_of(keep[0]), grown.vector_of(keep[0]))


def test_sequences_of_a_fused_key_repeat_the_descriptor_block(indexed: tuple[Path, Path, list]) -> None:
    """The default (descriptors + the shipped models) has segment sequences: each row holds each learned part's
    segment transformed like its pooled vector (the shorter part resampled to the longer), beside the track's
    descriptor block."""
    _, library, _ = indexed
    with Library.open(library) as lib:
        index = load_index(lib, "default")
        track = int(index.ids[0])
        kept, (seq,) = index.sequences(lib, [track])
        learned = index.embedding.parts[1:]
        raws = [lib.segments(track, part.model) for part in learned]
    assert len(learned) == 2 and all(raw is not None for raw in raws)
    longest = max(range(len(raws)), key=lambda i: len(raws[i]))  # type: ignore[arg-type]
    length = len(raws[longest])  # type: ignore[arg-type]
    assert kept == [track] and seq.shape == (length, index.embedding.dim)
    cols = index.embedding.slices()
    np.testing.assert_allclose(np.linalg.norm(seq, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(seq[:, cols["descriptor"]], np.broadcast_to(
        index.vector_of(track)[cols["descriptor"]], (length, 120)), rtol=1e-6)
    part = learned[longest]
    np.testing.assert_allclose(seq[:, cols[part.model]], part.transform(raws[longest]), rtol=1e-5, atol=1e-6)
