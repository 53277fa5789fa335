"""Resolving queries: ids, indexed paths, searches, outside files (cold start), and what cannot be resolved."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import library_tracks
from soundalike import synth
from soundalike.library.catalog import Library
from soundalike.recommend import NotEmbeddedError, QueryError, load_index, resolve_query


def test_every_kind_of_query_resolves_to_a_search_vector(styled: Path, tmp_path: Path) -> None:
    first = library_tracks(styled)[0]
    with Library.open(styled / "lib") as lib:
        index = load_index(lib, "descriptor")
        by_id = resolve_query(lib, index, str(first.id))
        by_path = resolve_query(lib, index, first.path)
        by_text = resolve_query(lib, index, f"{first.artist} - {first.title}")
        assert by_id.track == by_path.track == by_text.track == first
        np.testing.assert_array_equal(by_id.vector, index.vector_of(first.id))
        assert by_id.exclude == {first.id} and by_id.model == "descriptor" and by_id.notes == []
        # the same audio outside the library: analysed on the fly, the library copy excluded from results
        copy = tmp_path / "copy.flac"
        copy.write_bytes(Path(first.path).read_bytes())
        outside = resolve_query(lib, index, str(copy))
        assert outside.track is None and outside.exclude == {first.id}
        assert float(outside.vector @ by_id.vector) == pytest.approx(1.0, abs=1e-4)
        fresh = tmp_path / "new.wav"
        synth.write_track(fresh, synth.render_track("reggae", seed=9, duration=4.0), 22050, artist="N", album="N",
                          title="N")
        assert resolve_query(lib, index, str(fresh)).exclude == set()


@pytest.mark.parametrize(("text", "words"), [("999999", "no track with id"), ("   ", "no track matches"),
                                             ("-", "no track matches"), ("/nowhere/x.mp3", "file not found")])
def test_what_names_nothing_says_so(styled: Path, text: str, words: str) -> None:
    with Library.open(styled / "lib") as lib, pytest.raises(QueryError, match=words):
        resolve_query(lib, load_index(lib, "descriptor"), text)


def test_a_folder_or_a_track_outside_the_index_is_refused(styled: Path, tmp_path: Path) -> None:
    with Library.open(styled / "lib") as lib:
        index = load_index(lib, "descriptor")
        with pytest.raises(QueryError, match="is a folder"):
            resolve_query(lib, index, str(tmp_path))
        partial = index.__class__(index.ids[1:], index.vectors[1:], index.embedding)
        with pytest.raises(NotEmbeddedError, match="has no 'descriptor' embedding yet"):
            resolve_query(lib, partial, str(int(index.ids[0])))
