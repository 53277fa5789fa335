"""A compact index built in parts (a library too large for a float32 copy): the same answers as exact search,
vectors decoded from the codes, kept up to date on open; playlists continued from its candidates."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from soundalike.audio.analysis import Tags
from soundalike.audio.descriptors import DESCRIPTOR_DIM
from soundalike.library.catalog import DESCRIPTOR_MODEL, Library, NewTrack
from soundalike.recommend import continue_playlist
from soundalike.search import index as search_index
from soundalike.search.index import VectorIndex


def add(lib: Library, start: int, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((20, DESCRIPTOR_DIM)) * 3
    lib.add_tracks([NewTrack(path=f"/m/{i}.flac", audio_hash=f"h{i}", duration=60.0,
                             tags=Tags(artist=f"A{i % 50}", title=f"T{i}"),
                             vectors={DESCRIPTOR_MODEL: centres[i % 20] + rng.standard_normal(DESCRIPTOR_DIM)})
                    for i in range(start, start + n)])


def test_compact_index_in_parts(tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        add(lib, 0, 3000)
        exact = VectorIndex.from_library(lib, DESCRIPTOR_MODEL, ann=False)
        parts = search_index.CHUNK
        search_index.CHUNK = 700  # several parts even for a small library
        try:
            compact = VectorIndex.from_library(lib, DESCRIPTOR_MODEL, ann=True, codec="sq8")
        finally:
            search_index.CHUNK = parts
        assert compact.compact and not exact.compact and compact.ann.params.codec == "sq8"
        assert compact.ann.params.calibration["recall"] >= 0.9
        np.testing.assert_allclose(compact.vector_of(17) @ exact.vector_of(17), 1.0, atol=1e-3)
        hits = 0
        for tid in (5, 500, 1500, 2999):
            want, _ = exact.search(exact.vector_of(tid), 10, exclude={tid})
            got, _ = compact.search(compact.vector_of(tid), 10, exclude={tid})
            hits += len(set(want.tolist()) & set(got.tolist()))
        assert hits >= 32
        _, results = continue_playlist(lib, [1, 21, 41], 10, index=compact)
        _, truth = continue_playlist(lib, [1, 21, 41], 10, index=exact)
        assert len(results) == 10 and len({r.track.id for r in results} & {r.track.id for r in truth}) >= 7
        add(lib, 3000, 40, seed=1)
        again = VectorIndex.from_library(lib, DESCRIPTOR_MODEL, ann=True, codec="sq8")
        assert len(again) == 3040 and 3040 in again and again.ann.params.nlist == compact.ann.params.nlist
        assert again.embedding.built_on == 3000  # statistics frozen with the index, as for every index
