"""Result selection: recording keys, filters by artist and album, duplicate versions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from soundalike.library.catalog import Library, Track
from soundalike.recommend import (
    Filters,
    load_index,
    recording_key,
    similar,
)
from soundalike.recommend.selection import Selector


def test_recording_key_ignores_version_notes() -> None:
    def t(artist: str, title: str) -> Track:
        return Track(1, "/x", artist, "", title, 1.0, "h")

    assert recording_key(t("Björk", "Jóga (Remastered 2011)")) == recording_key(t("bjork", "Joga"))
    assert recording_key(t("A", "Song - Live at Wembley")) == recording_key(t("A", "Song"))
    assert recording_key(t("A", "Song")) != recording_key(t("B", "Song"))
    assert recording_key(t("A", "")) is None


def test_filters_exclude_and_cap_artists_and_albums(styled: Path) -> None:
    with Library.open(styled / "lib") as lib:
        index = load_index(lib, "descriptor")
        query = lib.tracks()[0]
        _, plain = similar(lib, str(query.id), 12, index=index)
        assert any(r.track.artist == query.artist for r in plain)  # otherwise this test shows nothing
        _, no_artist = similar(lib, str(query.id), 12, index=index, filters=Filters(exclude_artists=True))
        assert len(no_artist) == 12 and all(r.track.artist != query.artist for r in no_artist)
        _, no_album = similar(lib, str(query.id), 5, index=index, filters=Filters(exclude_albums=True))
        assert all(r.track.album != query.album for r in no_album)
        _, capped = similar(lib, str(query.id), 10, index=index, filters=Filters(max_per_artist=1))
        artists = [r.track.artist for r in capped]
        assert len(artists) == len(set(artists))
        assert len(capped) == min(10, len({t.artist for t in lib.tracks()}))  # one per artist, however far down
        scores = [r.score for r in plain]
        assert scores == sorted(scores, reverse=True)


def test_duplicate_versions_are_skipped(styled: Path, tmp_path: Path) -> None:
    library = tmp_path / "lib"
    shutil.copytree(styled / "lib", library)
    with Library.open(library) as lib:
        a, b = lib.tracks()[:2]
        # b becomes "another version" of a: same artist, title with a version note.
        lib.conn.execute("UPDATE tracks SET artist=?, title=? WHERE id=?", (a.artist, f"{a.title} (Remastered)", b.id))
        lib.conn.commit()
        index = load_index(lib, "descriptor")
        _, results = similar(lib, str(a.id), 23, index=index)
        assert b.id not in {r.track.id for r in results}
        _, results = similar(lib, str(a.id), 23, index=index, filters=Filters(skip_duplicates=False))
        assert b.id in {r.track.id for r in results}



def test_candidates_are_looked_up_in_growing_slices_with_the_same_answer(styled: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The selector reads the tags of about twice the results still wanted first, then twice as many each time a
    filter refused too many: the same answer as offering every candidate in order, from fewer lookups."""
    with Library.open(styled / "lib") as lib:
        index = load_index(lib, "descriptor")
        query = lib.tracks()[0]
        n = len(lib.tracks())
        looked: list[int] = []
        plain_tracks = Library.tracks

        def counting(self: Library, ids: list[int] | None = None) -> list[Track]:
            if ids is not None:
                looked.append(len(ids))
            return plain_tracks(self, ids)

        monkeypatch.setattr(Library, "tracks", counting)
        selector = Selector(lib, index, [query], index.vectors_of([query.id]), Filters(max_per_artist=1), set())
        ids, scores = index.search(index.vector_of(query.id), n, exclude={query.id})
        selector.take(ids, scores, 5)
        # offered one by one, in order, to a selector of its own: the same tracks
        one_by_one = Selector(lib, index, [query], index.vectors_of([query.id]), Filters(max_per_artist=1), set())
        for tid, score in zip(ids, scores, strict=True):
            if len(one_by_one.kept) == 5:
                break
            one_by_one.offer(plain_tracks(lib, [int(tid)])[0], float(score))
    assert [r.track.id for r in selector.kept] == [r.track.id for r in one_by_one.kept]
    assert looked[0] == 2 * 5 + 8 and all(b == 2 * a for a, b in zip(looked, looked[1:-1], strict=False))
