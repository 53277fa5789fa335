"""Catalogue playlists, plays and stars (a track's star goes with it); schema 4 reads album artist, genre, numbers
and year from the files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from helpers import make_signal, write_audio
from soundalike.audio.analysis import Analysis, Tags, read_tags
from soundalike.audio.descriptors import DESCRIPTOR_DIM
from soundalike.library.catalog import SCHEMA_VERSION, Library
from soundalike.library.playlists import PlaylistError


def _analysis(seed: int, tags: Tags | None = None) -> Analysis:
    rng = np.random.default_rng(seed)
    return Analysis(f"audio{seed}", 10.0 + seed, 10.0, tags or Tags("a", "b", f"t{seed}"), {},
                    rng.normal(size=DESCRIPTOR_DIM).astype(np.float32))


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    library = Library.open(tmp_path / "lib")
    for seed in range(1, 5):
        library.add_analysis(f"/m/{seed}.ogg".encode(), 1, 1, f"f{seed}", _analysis(seed))
    return library


def test_playlists_create_edit_reorder_and_delete(lib: Library) -> None:
    store = lib.playlists
    first = store.create("  Road   trip ", [1, 2, 2], comment="for the car")
    assert (first.name, first.comment, first.track_count, first.public) == ("Road trip", "for the car", 3, False)
    assert first.duration == pytest.approx(11 + 12 + 12)
    assert store.track_ids(first.id) == [1, 2, 2]
    assert store.add_tracks(first.id, [4], position=1).track_count == 4
    assert store.track_ids(first.id) == [1, 4, 2, 2]
    store.move(first.id, 0, 3)
    assert store.track_ids(first.id) == [4, 2, 2, 1]
    store.remove_positions(first.id, [1, 2])
    assert store.track_ids(first.id) == [4, 1]
    assert store.replace_tracks(first.id, [3]).track_count == 1
    renamed = store.update(first.id, name="Night drive", public=True)
    assert (renamed.name, renamed.public, renamed.comment) == ("Night drive", True, "for the car")
    second = store.create("afternoon")
    assert [p.name for p in store.all()] == ["afternoon", "Night drive"]
    for bad in (lambda: store.create("   "), lambda: store.create("x", [99]),
                lambda: store.add_tracks(first.id, [1], position=5), lambda: store.move(first.id, 0, 7),
                lambda: store.remove_positions(first.id, [3]), lambda: store.track_ids(999)):
        with pytest.raises(PlaylistError):
            bad()
    store.delete(second.id)
    assert store.get(second.id) is None and [p.id for p in store.all()] == [first.id]
    assert lib.conn.execute("SELECT COUNT(*) FROM playlist_tracks WHERE playlist_id=?", (second.id,)).fetchone()[0] \
        == 0
    lib.remove_files([b"/m/3.ogg"])  # a track that leaves the library leaves its playlists
    assert store.track_ids(first.id) == []


def test_plays_and_stars(lib: Library) -> None:
    lib.plays.record(2, played_at=100.0, client="test")
    lib.plays.record(2, played_at=200.0)
    lib.plays.record(3, played_at=150.0)
    assert lib.plays.counts() == {2: (2, 200.0), 3: (1, 150.0)} and lib.plays.count(1) == 0
    with pytest.raises(ValueError, match="no track"):
        lib.plays.record(99)
    lib.stars.star("track", [1, 2], at=5.0)
    lib.stars.star("track", [1], at=9.0)  # starring again keeps the first date
    lib.stars.star("album", ["al-x"], at=6.0)
    lib.stars.unstar("track", [2, 3])
    assert lib.stars.starred("track") == {"1": 5.0} and lib.stars.starred("album") == {"al-x": 6.0}
    with pytest.raises(ValueError, match="unknown kind"):
        lib.stars.star("song", [1])


def test_extra_tags_are_stored_and_a_version_3_catalogue_reads_them_from_its_files(tmp_path: Path) -> None:
    import mutagen

    path = write_audio(tmp_path / "music" / "a.flac", make_signal(1.0, 330.0))
    f = mutagen.File(path, easy=True)
    f.update({"artist": "Ann", "albumartist": "Various", "album": "Mix", "title": "One", "genre": "Dub",
              "tracknumber": "3/12", "discnumber": "2", "date": "2004-05-01"})
    f.save()
    tags = read_tags(path)
    assert (tags.album_artist, tags.genre, tags.track_no, tags.disc_no, tags.year) == ("Various", "Dub", 3, 2, 2004)
    folder = tmp_path / "lib"
    with Library.open(folder) as lib:
        track_id, _ = lib.add_analysis(str(path).encode(), 1, 1, "f", _analysis(1, tags))
        track = lib.track(track_id)
        assert track is not None and (track.genre, track.year, track.album_artist) == ("Dub", 2004, "Various")
        # As a version 3 catalogue had it: no extra columns, no playlists.
        lib.conn.execute("UPDATE tracks SET genre='', year=0, album_artist=''")
        lib.conn.execute("DROP TABLE playlists")
        lib.conn.execute("UPDATE meta SET value='3' WHERE key='schema_version'")
    with sqlite3.connect(folder / "catalog.sqlite") as conn:
        for column in ("album_artist", "genre", "track_no", "disc_no", "year"):
            conn.execute(f"ALTER TABLE tracks DROP COLUMN {column}")
    with Library.open(folder) as lib:
        assert lib.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == \
            str(SCHEMA_VERSION)
        track = lib.track(track_id)
        assert track is not None and (track.genre, track.year, track.track_no, track.album_artist) == \
            ("Dub", 2004, 3, "Various")
        assert lib.playlists.create("new", [track_id]).track_count == 1


def test_a_track_that_leaves_takes_its_star_and_its_id_is_never_given_out_again(lib: Library) -> None:
    lib.stars.star("track", [4, 1])
    lib.stars.star("album", ["al-4"])
    lib.plays.record(4)
    lib.remove_files([b"/m/4.ogg"])  # the highest id: before schema 10, SQLite gave it to the next new track
    assert set(lib.stars.starred("track")) == {"1"} and set(lib.stars.starred("album")) == {"al-4"}
    assert lib.plays.count(4) == 0
    new_id, _ = lib.add_analysis(b"/m/new.ogg", 1, 1, "fnew", _analysis(9))
    assert new_id == 5 and "5" not in lib.stars.starred("track")


def test_a_version_4_catalogue_gets_the_trigger_and_loses_the_stars_of_gone_tracks(tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    with Library.open(folder) as lib:
        for seed in (1, 2):
            lib.add_analysis(f"/m/{seed}.ogg".encode(), 1, 1, f"f{seed}", _analysis(seed))
        lib.stars.star("track", [1, 2, 7])  # 7: a track deleted before the trigger existed
        lib.conn.execute("DROP TRIGGER tracks_drop_stars")
        lib.conn.execute("UPDATE meta SET value='4' WHERE key='schema_version'")
    with Library.open(folder) as lib:
        assert set(lib.stars.starred("track")) == {"1", "2"}
        lib.remove_files([b"/m/2.ogg"])
        assert set(lib.stars.starred("track")) == {"1"}


def test_an_edit_is_checked_whole_before_anything_is_written(lib: Library) -> None:
    store = lib.playlists
    made = store.create("mix", [1, 2, 3], comment="old")
    for bad in ({"name": "renamed", "remove": [9]}, {"comment": "new", "add": [99]},
                {"name": "renamed", "tracks": [1, 99]}, {"public": True, "name": "   "}):
        with pytest.raises(PlaylistError):
            store.edit(made.id, **bad)  # type: ignore[arg-type]
        after = store.get(made.id)
        assert after is not None and (after.name, after.comment, after.public) == ("mix", "old", False), bad
        assert store.track_ids(made.id) == [1, 2, 3] and after.changed_at == made.changed_at, bad
    done = store.edit(made.id, name="renamed", comment="", remove=[0, 0, 2], add=[4, 4])
    assert (done.name, done.comment) == ("renamed", "") and store.track_ids(made.id) == [2, 4, 4]
    assert store.edit(made.id, tracks=[3], add=[1]).track_count == 2 and store.track_ids(made.id) == [3, 1]


def _as_version_9(root: Path) -> None:
    """Make the catalogue at ``root`` look as schema 9 left it: track ids without AUTOINCREMENT (SQLite gave the
    highest deleted id out again)."""
    from soundalike.library import catalog

    with sqlite3.connect(root / catalog.DB_NAME) as conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        create = conn.execute("SELECT sql FROM sqlite_master WHERE name='tracks'").fetchone()[0]
        for name in (*catalog._FTS_TRIGGERS, "tracks_drop_stars"):
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("DROP VIEW tracks_fts_text")
        conn.execute(create.replace(" AUTOINCREMENT", "").replace("CREATE TABLE tracks", "CREATE TABLE old"))
        conn.execute("INSERT INTO old SELECT * FROM tracks")
        conn.execute("DROP TABLE tracks")
        conn.execute("ALTER TABLE old RENAME TO tracks")
        conn.execute("DELETE FROM sqlite_sequence")
        for statement in (*catalog._FTS, *catalog._TRIGGERS):
            conn.execute(statement)
        conn.execute("CREATE INDEX tracks_order ON tracks(f_artist, f_album, f_title, id)")
        conn.execute("UPDATE meta SET value='9' WHERE key='schema_version'")


def test_a_version_9_catalogue_keeps_every_row_and_never_gives_an_id_out_again(lib: Library) -> None:
    playlist = lib.playlists.create("mix", [4, 2, 4])
    lib.plays.record(4)
    lib.stars.star("track", [4, 3])
    root = lib.root
    count = "SELECT (SELECT COUNT(*) FROM files), (SELECT COUNT(*) FROM vectors), (SELECT COUNT(*) FROM plays)"
    before = lib.conn.execute(count).fetchone()
    lib.close()
    _as_version_9(root)
    (root / "indexes").mkdir(exist_ok=True)
    stale = root / "indexes" / "descriptor.ivf"  # a search index that may hold a deleted track's id
    stale.write_bytes(b"ids")
    with Library.open(root) as lib:
        assert lib.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == \
            str(SCHEMA_VERSION)
        assert "AUTOINCREMENT" in lib.conn.execute("SELECT sql FROM sqlite_master WHERE name='tracks'").fetchone()[0]
        assert lib.conn.execute(count).fetchone() == before  # nothing that points at a track was lost
        assert lib.playlists.track_ids(playlist.id) == [4, 2, 4] and lib.plays.count(4) == 1
        assert [t.id for t in lib.search("t3")] == [3] and not stale.exists()
        lib.remove_files([b"/m/4.ogg"])  # the highest id leaves, with its star, plays and playlist entries
        assert set(lib.stars.starred("track")) == {"3"} and lib.playlists.track_ids(playlist.id) == [2]
        new_id, _ = lib.add_analysis(b"/m/new.ogg", 1, 1, "fnew", _analysis(9))
        assert new_id == 5 and [t.id for t in lib.search("t9")] == [5]
        assert lib.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
