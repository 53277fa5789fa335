"""Paths between tracks: distinct tracks from the start to the end."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import library_tracks
from soundalike.library.catalog import Library
from soundalike.recommend import (
    QueryError,
    load_index,
    path_between,
)


def test_path_runs_from_start_to_end_through_distinct_tracks(styled: Path) -> None:
    tracks = library_tracks(styled)
    start = next(t for t in tracks if "techno" in t.path)
    end = next(t for t in tracks if "classical" in t.path)
    with Library.open(styled / "lib") as lib:
        index = load_index(lib, "descriptor")
        _, _, steps = path_between(lib, str(start.id), str(end.id), 7, index=index)
        ids = [r.track.id for r in steps]
        assert len(ids) == 7 and ids[0] == start.id and ids[-1] == end.id and len(set(ids)) == 7
        # Smooth: similarity to the start falls (roughly) and similarity to the end rises along the path.
        va, vb = index.vector_of(start.id), index.vector_of(end.id)
        to_end = [float(index.vector_of(i) @ vb) for i in ids]
        to_start = [float(index.vector_of(i) @ va) for i in ids]
        assert to_end[-2] > to_end[1] and to_start[1] > to_start[-2]
        with pytest.raises(QueryError, match="same track"):
            path_between(lib, str(start.id), str(start.id), 5, index=index)

