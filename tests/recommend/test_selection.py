"""Result selection: recording keys, filters by artist and album, duplicate versions."""

from __future__ import annotations

import shutil
from pathlib import Path

from soundalike.library.catalog import Library, Track
from soundalike.recommend import (
    Filters,
    load_index,
    recording_key,
    similar,
)


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

