"""The catalogue: one accent- and case-folded search, schema migrations."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from helpers import run_cli
from soundalike import synth
from soundalike.app.server.app import create_app
from soundalike.audio import descriptors
from soundalike.audio.analysis import Analysis, Tags
from soundalike.audio.descriptors import DESCRIPTOR_DIM
from soundalike.library.catalog import SCHEMA_VERSION, CatalogError, Library
from soundalike.library.scan import scan
from soundalike.models.embedding import checkpoint_path, registered_models, stored_checkpoint
from soundalike.models.pretrained import default_checkpoint
from soundalike.recommend import load_index


def test_search_ranks_exact_titles_first(indexed: tuple[Path, Path, list[synth.SynthTrack]]) -> None:
    _, library, tracks = indexed
    with Library.open(library) as lib:
        for t in tracks[:6]:
            assert lib.search(t.title)[0].title == t.title
            assert lib.search(f"{t.artist} - {t.title}")[0].path == str(t.path.resolve())
        assert lib.search("zzz-no-such-words") == [] and lib.search_count("zzz") == 0
        assert len(lib.search("", limit=None)) == lib.search_count("  -  ") == 20  # no words: every track


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four tracks whose tags test folding and SQL wildcards, indexed (descriptors only)."""
    root = tmp_path_factory.mktemp("tagged")
    for i, (artist, title) in enumerate([("Beyoncé", "Halo"), ("Sigur Rós", "Hoppípolla"),
                                         ("Percent", "100% Pure_Love"), ("Percent", "1000 PureXLove")]):
        y = synth.render_track("ambient" if i % 2 else "techno", seed=i, duration=4.0)
        synth.write_track(root / "music" / f"t{i}.flac", y, 22050, artist=artist, album="Folding", title=title)
    with Library.open(root / "lib") as lib:
        scan(lib, [root / "music"], isolate=False)
    return root


def test_one_search_folds_accents_and_case_in_cli_and_server(tagged: Path) -> None:
    library = str(tagged / "lib")
    code, out, err = run_cli("similar", "beyonce - halo", "--library", library, "--model", "descriptor",
                             "--format", "json", "-k", "2")
    assert code == 0, err
    assert json.loads(out)["query"]["artist"] == "Beyoncé"
    code, out, _ = run_cli("similar", "SIGUR ROS hoppipolla", "--library", library, "--model", "descriptor",
                           "--format", "json", "-k", "1")
    assert code == 0 and json.loads(out)["query"]["title"] == "Hoppípolla"
    with TestClient(create_app(tagged / "lib")) as client:
        for q, title in [("BEYONCE", "Halo"), ("rós hoppi", "Hoppípolla"), ("hoppipolla", "Hoppípolla")]:
            items = client.get("/api/tracks", params={"q": q}).json()["items"]
            assert [t["title"] for t in items] == [title], q


def test_percent_and_underscore_are_plain_characters(tagged: Path) -> None:
    with Library.open(tagged / "lib") as lib:
        assert [t.title for t in lib.search("pure_love")] == ["100% Pure_Love"]  # LIKE would take _ for any char
        assert [t.title for t in lib.search("100%")] == ["100% Pure_Love"]       # and % for anything
        assert lib.search_count("percent") == 2 and lib.search("100%%") == lib.search("0_p") == []
        page = lib.search("percent", limit=1, offset=1)
        assert len(page) == 1 and page[0].title == lib.search("percent")[1].title


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE tracks (id INTEGER PRIMARY KEY, audio_hash TEXT NOT NULL UNIQUE, duration REAL NOT NULL,
    analysed_seconds REAL NOT NULL, artist TEXT NOT NULL DEFAULT '', album TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '', added_at REAL NOT NULL);
CREATE TABLE files (path BLOB PRIMARY KEY, track_id INTEGER REFERENCES tracks(id) ON DELETE CASCADE,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, file_hash TEXT, status TEXT NOT NULL, error TEXT,
    scanned_at REAL NOT NULL);
CREATE TABLE spectrograms (track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE, preset TEXT NOT NULL,
    chunk INTEGER NOT NULL, offset INTEGER NOT NULL, n_mels INTEGER NOT NULL, n_frames INTEGER NOT NULL,
    PRIMARY KEY (track_id, preset));
CREATE TABLE vectors (track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE, model TEXT NOT NULL,
    dim INTEGER NOT NULL, vector BLOB NOT NULL, n_segments INTEGER NOT NULL DEFAULT 0, segments BLOB,
    PRIMARY KEY (track_id, model));
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO tracks VALUES (1, 'abc', 60.0, 60.0, 'Beyoncé', 'Dangerously', 'Crazy in Love', 0.0);
INSERT INTO files VALUES (x'2f6d2f612e6d7033', 1, 10, 0, 'h', 'ok', NULL, 0.0);
INSERT INTO vectors VALUES (1, 'descriptor', 2, x'0000803f00000040', 0, NULL);
INSERT INTO meta VALUES ('model:contrastive-4d54ea2b', '{"name": "contrastive",
    "checkpoint": "/old/venv/site-packages/soundalike/pretrained/default.pt", "registered_at": 1.0}');
"""


def test_a_version_1_catalogue_is_migrated_forward(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    folder.mkdir()
    with sqlite3.connect(folder / "catalog.sqlite") as conn:
        conn.executescript(V1_SCHEMA)
    with Library.open(folder) as lib:
        assert lib.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == \
            str(SCHEMA_VERSION)
        assert [t.title for t in lib.search("beyonce crazy")] == ["Crazy in Love"]
        assert lib._fts and lib.conn.execute(  # through every step: the trigram index holds the old track
            "SELECT rowid FROM tracks_fts WHERE tracks_fts MATCH '\"beyonce\"'").fetchall() == [(1,)]
        assert lib.track(1) is not None and lib.track(1).path == "/m/a.mp3"  # type: ignore[union-attr]
        # its descriptors are stamped version 1 (what made them): stale since version 2, analysed again by a scan
        assert lib.conn.execute("SELECT version FROM vectors WHERE model='descriptor'").fetchall() == [(1,)]
        assert lib.stale_descriptors() == {1} and lib.vectors("descriptor")[0].tolist() == []
        # the shipped model, recorded by absolute path in an older install, is found in this package
        info = registered_models(lib)["contrastive-4d54ea2b"]
        assert info["checkpoint"] == "package:default.pt"
        assert checkpoint_path(lib, info["checkpoint"]) == default_checkpoint()
    with Library.open(folder) as lib:  # opening again changes nothing
        assert lib.search_count("dangerously") == 1


def test_a_newer_catalogue_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    Library.open(tmp_path / "new").close()
    with sqlite3.connect(tmp_path / "new" / "catalog.sqlite") as conn:
        conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(CatalogError, match="schema 99, newer than this soundalike"):
        Library.open(tmp_path / "new")


def test_a_new_descriptor_version_is_computed_again_never_mixed(tmp_path: Path, music_dir: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with Library.open(tmp_path / "lib") as lib:
        scan(lib, [music_dir], isolate=False)
        before = load_index(lib, "descriptor").vectors.copy()
        monkeypatch.setattr(descriptors, "DESCRIPTOR_VERSION", descriptors.DESCRIPTOR_VERSION + 1)
        assert len(lib.stale_descriptors()) == 8
        with pytest.raises(CatalogError, match="older soundalike: run `soundalike index PATH`"):
            load_index(lib, "descriptor")  # old and new vectors are never searched together
        summary = scan(lib, [music_dir], isolate=False)
        assert (summary.analysed, summary.refreshed, summary.linked, summary.unchanged) == (0, 8, 0, 0)
        assert summary.refreshed_text == "8 re-analysed for this version's descriptors, "  # index's and beets' lines
        assert lib.stale_descriptors() == set()
        after = load_index(lib, "descriptor")
        assert len(after) == 8 and after.embedding.descriptor_version == descriptors.DESCRIPTOR_VERSION
        np.testing.assert_allclose(after.vectors, before, atol=1e-5)  # same code here: same values, refitted
        assert scan(lib, [music_dir], isolate=False).unchanged == 8


def test_checkpoints_are_recorded_relative_to_the_package_or_library(indexed: tuple[Path, Path, list],
                                                                     tmp_path: Path) -> None:
    _, library, _ = indexed
    with Library.open(library) as lib:
        stored = [info["checkpoint"] for info in registered_models(lib).values()]
        assert sorted(stored) == ["package:default.pt", "package:default_contrastive.pt"]  # default.json's parts
        inside = Path(lib.root) / "models" / "mine.pt"
        assert stored_checkpoint(lib, inside) == "library:models/mine.pt"
        assert checkpoint_path(lib, "library:models/mine.pt") == Path(lib.root) / "models" / "mine.pt"
        assert stored_checkpoint(lib, tmp_path / "x.pt") == str((tmp_path / "x.pt").resolve())


def _analysis(seed: int) -> Analysis:
    rng = np.random.default_rng(seed)
    return Analysis(f"audio{seed}", 10.0, 10.0, Tags("a", "b", f"t{seed}"),
                    {"melae": rng.normal(-40, 5, (128, 50)).astype(np.float16)},
                    rng.normal(size=DESCRIPTOR_DIM).astype(np.float32))


def test_a_track_leaves_when_its_last_file_changes_or_goes_and_not_before(tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        first, _ = lib.add_analysis(b"/m/one.ogg", 1, 1, "f1", _analysis(1))
        again, is_new = lib.add_analysis(b"/m/copy.ogg", 1, 1, "f1c", _analysis(1))  # the same audio elsewhere
        assert again == first and not is_new
        other, _ = lib.add_analysis(b"/m/two.ogg", 1, 1, "f2", _analysis(2))
        lib.add_analysis(b"/m/one.ogg", 2, 2, "f3", _analysis(3))  # one.ogg now holds other audio
        assert lib.track(first) is not None  # copy.ogg still holds it
        lib.remove_files([b"/m/copy.ogg"])
        assert lib.track(first) is None and lib.track(other) is not None
        lib.record_error(b"/m/two.ogg", 3, 3, "decode", "broken now")  # its only file became unreadable
        assert lib.track(other) is None
        assert {t.title for t in lib.tracks()} == {"t3"}


def test_the_schema_4_backfill_tries_every_file_and_leaves_unread_tracks_to_the_next_scan(tmp_path: Path) -> None:
    import shutil

    import mutagen

    from helpers import make_signal, write_audio

    music = tmp_path / "music"
    first = write_audio(music / "a" / "song.flac", make_signal(2.0, 330.0, seed=1))
    other = write_audio(music / "c" / "other.flac", make_signal(2.0, 990.0, seed=2))
    for path, genre in ((first, "Dub"), (other, "Jazz")):
        f = mutagen.File(path, easy=True)
        f.update({"artist": "Ann", "albumartist": "Various", "genre": genre, "tracknumber": "4", "date": "2001"})
        f.save()
    copy = music / "b" / "song.flac"  # the same bytes: one track with two files, a/ first
    copy.parent.mkdir()
    shutil.copy2(first, copy)
    folder = tmp_path / "lib"
    with Library.open(folder) as lib:
        scan(lib, [str(music)], isolate=False)
        assert len(lib.tracks()) == 2 and len(lib.paths_of(lib.tracks()[0].id)) == 2
        lib.conn.execute("UPDATE tracks SET album_artist='', genre='', track_no=0, disc_no=0, year=0")
        lib.conn.execute("UPDATE meta SET value='3' WHERE key='schema_version'")  # as version 3 left it
    away = tmp_path / "away"
    away.mkdir()
    first.rename(away / "song.flac")  # an unmounted disk: the track's first file and the other track's only one
    other.rename(away / "other.flac")
    with Library.open(folder) as lib:
        song, gone = lib.track_by_path(copy), lib.track_by_path(other)
        assert song is not None and (song.genre, song.track_no, song.year) == ("Dub", 4, 2001)  # from b/
        assert gone is not None and (gone.genre, gone.year) == ("", 0)
    (away / "song.flac").rename(first)
    (away / "other.flac").rename(other)
    code, out, err = run_cli("index", str(music), "--library", str(folder), "--model", "descriptor", "--jobs", "1",
                             "--json")
    assert code == 0, err
    assert json.loads(out)["summary"]["unchanged"] == 2  # only the unread track's file was analysed again
    with Library.open(folder) as lib:
        back = lib.track_by_path(other)
        assert back is not None and (back.genre, back.album_artist, back.track_no, back.year) == \
            ("Jazz", "Various", 4, 2001) and back.id == gone.id
        assert lib.track_by_path(copy) == song
