"""The feature store: float16 spectrograms appended to chunk files, read back as memory maps, rolled by size."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from soundalike.library.featurestore import FeatureStore


def test_append_read_round_trip_and_roll_to_a_new_chunk(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    specs = [rng.normal(-40, 10, (16, n)).astype(np.float32) for n in (10, 30, 5)]
    store = FeatureStore(tmp_path / "features", chunk_bytes=16 * 35 * 2)  # room for about 35 frames a chunk
    locations = [store.append("melae", s) for s in specs]
    assert [loc.chunk for loc in locations] == [0, 0, 1]  # the third would cross the chunk size: a new chunk
    assert (locations[0].offset, locations[1].offset) == (0, 16 * 10 * 2)
    for spec, loc in zip(specs, locations, strict=True):
        back = store.read("melae", loc)
        assert back.dtype == np.float16 and back.shape == spec.shape
        np.testing.assert_allclose(back.astype(np.float32), spec, rtol=1e-3, atol=0.05)
    assert store.disk_bytes() == sum(s.size for s in specs) * 2
    again = FeatureStore(tmp_path / "features", chunk_bytes=16 * 35 * 2)  # reopened: appends after what is there
    assert again.append("melae", specs[2]).chunk == 1
