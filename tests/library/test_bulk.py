"""Bulk cataloguing (:meth:`Library.add_tracks`), vectors read in one pass or by id, the model list, and the
trigram full-text index behind :meth:`Library.search`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from soundalike.audio.analysis import Tags
from soundalike.audio.descriptors import DESCRIPTOR_DIM
from soundalike.library import catalog
from soundalike.library.catalog import DESCRIPTOR_MODEL, SCHEMA_VERSION, CatalogError, Library, NewTrack

WORDS = ["Blue", "Night", "Echo", "Beyoncé", "Déjà", "Vu", "River", "Glass", "AC", "DC", 'Say "Hi"', "Love"]


def bulk(lib: Library, n: int, seed: int = 0, start: int = 0) -> list[int]:
    """``n`` tracks with tags built from :data:`WORDS` and random descriptor and ``extra`` vectors."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(start, start + n):
        title = " ".join(WORDS[j] for j in rng.choice(len(WORDS), 2, replace=False))
        records.append(NewTrack(path=f"/music/a{i % 7}/{i:05d}.flac", audio_hash=f"h{i}", duration=100.0 + i,
                                tags=Tags(artist=f"Artist {WORDS[i % len(WORDS)]}", album=f"Album {i // 10}",
                                          title=title, track_no=i % 10 + 1, year=2000 + i % 20),
                                vectors={DESCRIPTOR_MODEL: rng.standard_normal(DESCRIPTOR_DIM).astype(np.float32),
                                         "extra-1": rng.standard_normal(8).astype(np.float32)}))
    return lib.add_tracks(records)


def test_add_tracks_catalogues_tracks_files_and_vectors(tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        ids = bulk(lib, 50)
        assert ids == list(range(1, 51))
        t = lib.track(7)
        assert t is not None and t.path == "/music/a6/00006.flac" and t.track_no == 7 and t.year == 2006
        assert lib.paths_of(7) == ["/music/a6/00006.flac"]
        got, mat = lib.vectors(DESCRIPTOR_MODEL)
        assert got.tolist() == ids and mat.shape == (50, DESCRIPTOR_DIM)
        assert lib.stale_descriptors() == set()
        # the same audio again (another file): the same track, no new row
        again = lib.add_tracks([NewTrack(path="/music/copy.flac", audio_hash="h3", duration=1.0, tags=Tags())])
        assert again == [4] and lib.paths_of(4) == ["/music/a3/00003.flac", "/music/copy.flac"]
        with pytest.raises(CatalogError, match="catalogued already"):
            lib.add_tracks([NewTrack(path="/music/copy.flac", audio_hash="new", duration=1.0, tags=Tags())])
        assert lib.track_for_audio_hash("new") is None  # the failed batch left nothing behind
        assert lib.add_tracks([]) == []


def test_vectors_by_id_and_the_model_list(tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        bulk(lib, 30)
        ids, mat = lib.vectors("extra-1")
        assert lib.vector_ids("extra-1").tolist() == ids.tolist()
        some, part = lib.vectors("extra-1", ids=[29, 3, 3, 999, 11])
        assert some.tolist() == [3, 11, 29]
        np.testing.assert_array_equal(part, mat[[2, 10, 28]])
        found, rows = lib.vectors_in("extra-1", [5])
        np.testing.assert_array_equal(rows[0], mat[4])
        assert lib.models() == [DESCRIPTOR_MODEL, "extra-1"]
        assert lib.vectors("nothing")[1].shape == (0, 0) and lib.vector_ids("nothing").size == 0
        lib.conn.execute("UPDATE vectors SET version=0 WHERE model=? AND track_id<=10", (DESCRIPTOR_MODEL,))
        assert lib.vector_ids(DESCRIPTOR_MODEL).tolist() == list(range(11, 31))  # stale descriptors left out
        wanted = [29, 3, 3, 999, 11, 12]
        together = lib.vectors_of(["extra-1", DESCRIPTOR_MODEL, "nothing", "extra-1"], wanted)
        alone = [lib.vectors(m, ids=wanted) for m in ("extra-1", DESCRIPTOR_MODEL, "nothing", "extra-1")]
        assert together[1][0].tolist() == [11, 12, 29]  # stale descriptors (3) left out here too
        for (ids_a, mat_a), (ids_b, mat_b) in zip(together, alone, strict=True):
            assert ids_a.tolist() == ids_b.tolist()
            np.testing.assert_array_equal(mat_a, mat_b)


def test_vectors_of_several_models_reads_more_than_one_query_holds(tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        bulk(lib, 1200)
        wanted = list(range(1200, 0, -2))  # 600 tracks: two queries of 500 ids at most
        (ids_e, mat_e), (ids_d, mat_d) = lib.vectors_of(["extra-1", DESCRIPTOR_MODEL], wanted)
        assert ids_e.tolist() == ids_d.tolist() == sorted(wanted)
        np.testing.assert_array_equal(mat_e, lib.vectors("extra-1", ids=wanted)[1])
        np.testing.assert_array_equal(mat_d, lib.vectors(DESCRIPTOR_MODEL, ids=wanted)[1])


@pytest.mark.parametrize("text", ["blue", "Blue night", "beyonce", "DEJA vu", "ac", "ac dc", "artist echo",
                                  "album 2", '"hi"', "say", "lo", "zzz", "", "  ", "- blue"])
def test_search_through_the_index_finds_what_a_scan_finds(tmp_path_factory: pytest.TempPathFactory,
                                                           text: str) -> None:
    root = tmp_path_factory.getbasetemp() / "fts-lib"
    with Library.open(root) as lib:
        if lib.search_count("") == 0:
            bulk(lib, 300)
        indexed = ([t.id for t in lib.search(text, limit=None)], lib.search_count(text))
        capped = [lib.search_count(text, limit=k) for k in (0, 3, 1000)]
        for limit, offset, cap in ((None, 0, None), (5, 0, 4), (5, 3, 1001), (None, 2, 0)):  # page and count at once
            items, counted = lib.search_counted(text, limit=limit, offset=offset, count_limit=cap)
            assert [t.id for t in items] == [t.id for t in lib.search(text, limit=limit, offset=offset)]
            assert counted == lib.search_count(text, limit=cap)
        lib._fts = False  # the same catalogue searched by scanning every row, as before the index
        scanned = ([t.id for t in lib.search(text, limit=None)], lib.search_count(text))
        assert [lib.search_count(text, limit=k) for k in (0, 3, 1000)] == capped
    assert indexed == scanned
    assert capped == [min(indexed[1], k) for k in (0, 3, 1000)]  # counting stops at the limit


def test_the_index_follows_edits_and_deletes(tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        bulk(lib, 20)
        lib.set_tags(5, Tags(artist="Quixotic", title="Zebra"))
        assert [t.id for t in lib.search("quixotic zeb")] == [5]
        assert 5 not in [t.id for t in lib.search("artist", limit=None)]
        lib.remove_files([b"/music/a4/00004.flac"])
        assert lib.search("quixotic") == []


def test_a_large_result_ranks_exact_and_prefix_titles_and_the_first_matches(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Past :data:`SEARCH_RANKED` matches only a bounded pool is ranked: every exact and prefix title (or "artist -
    title") and the first matches by id; the other matches follow by id, and pages still tile the whole result."""
    special = {55: ("Zed", "Quartz"), 50: ("Zed", "Quartz Night"), 45: ("Quartz Zed", "Echo"), 40: ("Zed", "Sky")}
    with Library.open(tmp_path / "lib") as lib:
        lib.add_tracks([NewTrack(path=f"/m/{i}.flac", audio_hash=f"h{i}", duration=60.0, tags=Tags(
            artist=special.get(i, (f"Artist {i}",))[0], album=f"Old Quartz {i % 3}",
            title=special.get(i, ("", f"Song {i * 7 % 60}"))[1])) for i in range(1, 61)])
        everything = [t.id for t in lib.search("quartz", limit=None)]
        assert everything[:3] == [55, 45, 50] and len(everything) == 60  # exact title, then labels by length
        monkeypatch.setattr(catalog, "SEARCH_RANKED", 10)
        found = [t.id for t in lib.search("quartz", limit=None)]
        assert sorted(found) == sorted(everything) and len(found) == lib.search_count("quartz")
        assert found[:3] == [55, 45, 50]  # the best are found through the indexes, wherever they are
        pool = set(range(1, 11)) | {55, 45, 50}
        assert found[:len(pool)] == [i for i in everything if i in pool]  # the pool as a full ranking orders it
        assert found[len(pool):] == sorted(set(everything) - pool)  # the rest by id
        pages = [t.id for offset in range(0, 60, 7) for t in lib.search("quartz", limit=7, offset=offset)]
        assert pages == found
        for offset, cap in ((0, 25), (7, 5), (49, 1001)):  # the first matches from the counting pass: the same pages
            items, counted = lib.search_counted("quartz", limit=7, offset=offset, count_limit=cap)
            assert [t.id for t in items] == found[offset:offset + 7] and counted == min(60, cap)
        assert [t.id for t in lib.search("zed - sky")][:1] == [40]  # an exact "artist - title"
        assert [t.id for t in lib.search("Zed - Quartz N")][:1] == [50]  # and one that starts with the text


def _as_version_5(lib: Library) -> None:
    """Make ``lib``'s catalogue look as schema 5 left it: the stars trigger, no full-text, vectors(model) or title
    index."""
    for name in ("tracks_fts_insert", "tracks_fts_delete", "tracks_fts_update"):
        lib.conn.execute(f"DROP TRIGGER {name}")
    lib.conn.execute("DROP TABLE tracks_fts")
    lib.conn.execute("DROP INDEX vectors_model_version")
    lib.conn.execute("DROP INDEX tracks_title")
    lib.conn.execute("UPDATE meta SET value='5' WHERE key='schema_version'")


def test_a_version_5_catalogue_gets_the_index_and_keeps_the_stars_trigger(tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        bulk(lib, 40)
        before = [t.id for t in lib.search("blue")]
        lib.stars.star("track", [1, 2])
        _as_version_5(lib)
    with Library.open(tmp_path / "lib") as lib:
        version = lib.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
        assert version == str(SCHEMA_VERSION)
        assert lib._fts and [t.id for t in lib.search("blue")] == before and before
        assert lib.conn.execute("SELECT count(*) FROM tracks_fts WHERE tracks_fts MATCH '\"blu\"'").fetchone()[0] \
            == len(before)  # filled from the tracks already catalogued
        for name in ("vectors_model_version", "tracks_title"):
            assert lib.conn.execute("SELECT 1 FROM sqlite_master WHERE name=?", (name,)).fetchone() is not None
        lib.remove_files([b"/music/a1/00001.flac"])  # track 2: schema 5's stars trigger still works
        assert set(lib.stars.starred("track")) == {"1"}
        new = bulk(lib, 5, seed=1, start=40)  # and new tracks enter the index
        assert set(new) <= {t.id for t in lib.search("album", limit=None)}


def test_a_version_7_catalogue_reads_its_vector_ids_from_the_index(tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        bulk(lib, 30)
        want = lib.vector_ids(DESCRIPTOR_MODEL)
        lib.conn.execute("DROP INDEX vectors_model_version")  # as schema 7 left it
        lib.conn.execute("CREATE INDEX vectors_model ON vectors(model, track_id)")
        lib.conn.execute("UPDATE meta SET value='7' WHERE key='schema_version'")
    with Library.open(tmp_path / "lib") as lib:
        names = {r[0] for r in lib.conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "vectors_model_version" in names and "vectors_model" not in names
        where, params = lib._vector_filter(DESCRIPTOR_MODEL)  # the current descriptors: model and version
        plan = " ".join(str(r) for r in lib.conn.execute(
            f"EXPLAIN QUERY PLAN SELECT track_id FROM vectors WHERE {where} ORDER BY track_id", params))
        assert "COVERING INDEX vectors_model_version" in plan and "TEMP B-TREE" not in plan, plan
        np.testing.assert_array_equal(lib.vector_ids(DESCRIPTOR_MODEL), want)


def test_vectors_are_read_from_one_state_while_another_process_writes(tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as writer:
        bulk(writer, 20)
        with Library.open(tmp_path / "lib", create=False, readonly=True) as reader:
            count = "SELECT COUNT(*) FROM vectors WHERE model=?"
            with reader._read_snapshot():
                before = reader.conn.execute(count, (DESCRIPTOR_MODEL,)).fetchone()[0]
                bulk(writer, 5, seed=1, start=20)  # commits between the reader's statements
                assert reader.conn.execute(count, (DESCRIPTOR_MODEL,)).fetchone()[0] == before == 20
            ids, mat = reader.vectors(DESCRIPTOR_MODEL)
            assert len(ids) == mat.shape[0] == 25 and not reader.conn.in_transaction


def test_add_tracks_refuses_a_vector_of_another_length_or_not_finite(tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        bulk(lib, 10)
        good = np.zeros(DESCRIPTOR_DIM, np.float32)
        for bad, reason in ((np.zeros(DESCRIPTOR_DIM + 1, np.float32), f"vector of {DESCRIPTOR_DIM + 1} values"),
                            (np.full(DESCRIPTOR_DIM, np.nan, np.float32), "not finite")):
            batch = [NewTrack(path=f"/music/new/{i}.flac", audio_hash=f"new{i}", duration=60.0, tags=Tags(),
                              vectors={DESCRIPTOR_MODEL: v}) for i, v in enumerate((good, bad))]
            with pytest.raises(CatalogError, match=reason):
                lib.add_tracks(batch)
            assert len(lib.tracks()) == 10  # nothing of the batch kept
        ids, mat = lib.vectors(DESCRIPTOR_MODEL)
        assert len(ids) == 10 and mat.shape == (10, DESCRIPTOR_DIM)


SHORT = {301: ("U2", "Zoo TV", "Achtung Baby"), 302: ("Numéro 9", "Live", "Ø"), 303: ("", "X", "Y z"),
         304: ("Sigur Rós", "( )", "Vaka"), 305: ("AB", "Qi", "Zq 7")}


def _short_word_library(root: Path) -> Library:
    """:func:`bulk`'s 300 tracks and a few whose artist, album or title is or ends with a 1-2 character word."""
    lib = Library.open(root)
    if lib.search_count("") == 0:
        bulk(lib, 300)
        lib.add_tracks([NewTrack(path=f"/m/{i}.flac", audio_hash=f"s{i}", duration=60.0,
                                 tags=Tags(artist=a, album=b, title=c)) for i, (a, b, c) in SHORT.items()])
    return lib


@pytest.mark.parametrize("text", ["u2", "U2 tv", "9", "x", "ø", "z", "qi", "zq", "7", "ab", "tv", "vu", "ac dc",
                                  "os", "( )", "2", "zz", "q 9", "é"])
def test_short_words_are_found_through_the_index_as_a_scan_finds_them(tmp_path_factory: pytest.TempPathFactory,
                                                                     text: str) -> None:
    """Words of 1-2 characters: a rare one is looked up in the padded index's trigrams (a word at a column's end
    too), a common one scanned; either way the result is the scan's, and a word no track has finds nothing."""
    with _short_word_library(tmp_path_factory.getbasetemp() / "short-lib") as lib:
        words = catalog.search_words(text)
        assert lib._fts_short and all(len(w) < catalog.FTS_MIN_WORD for w in words)
        indexed = ([t.id for t in lib.search(text, limit=None)], lib.search_count(text),
                   [lib.search_count(text, limit=k) for k in (0, 1, 1000)])
        lib._fts = False
        scanned = ([t.id for t in lib.search(text, limit=None)], lib.search_count(text),
                   [lib.search_count(text, limit=k) for k in (0, 1, 1000)])
    assert indexed == scanned


def test_a_rare_short_word_is_read_from_the_vocabulary_and_a_common_one_scanned(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch
                                                                                ) -> None:
    with _short_word_library(tmp_path / "lib") as lib:
        assert lib._short_word_terms("u2") == ["u2\x01"]  # the padding: "U2" is the whole artist
        assert lib._short_word_terms("ø") == ["ø\x01\x01"]
        assert lib._short_word_terms("zq") == ["zq "]
        assert lib._short_word_terms("u3") == [] and lib._fts_phrase("u3 x") == ""  # no track can match
        assert lib.search("u3 x") == [] and lib.search_count("u3 x") == 0
        assert lib._short_word_terms("a") is None  # in most tracks: a scan finds it in the first rows
        assert set(lib._short_word_terms("ac") or []) == {"ac\x01", "ac ", "ach"}  # "AC", "AC DC", "Achtung"
        monkeypatch.setattr(catalog, "SHORT_WORD_TERMS", 1)
        assert lib._short_word_terms("ac") is None  # more trigrams than that: scanned
        assert [t.id for t in lib.search("ac")] == [t.id for t in lib.search("ac", limit=None)][:10]


def _as_version_8(lib: Library) -> None:
    """Make ``lib``'s full-text index the unpadded one of schema 6-8."""
    for name in ("tracks_fts_insert", "tracks_fts_delete", "tracks_fts_update"):
        lib.conn.execute(f"DROP TRIGGER {name}")
    lib.conn.execute("DROP TABLE tracks_fts")
    lib.conn.execute("DROP VIEW tracks_fts_text")
    lib.conn.execute("CREATE VIRTUAL TABLE tracks_fts USING fts5(f_artist, f_album, f_title, content='tracks', "
                     "content_rowid='id', tokenize='trigram')")
    lib.conn.execute("INSERT INTO tracks_fts(tracks_fts) VALUES ('rebuild')")
    lib.conn.execute("UPDATE meta SET value='8' WHERE key='schema_version'")


def test_a_version_8_catalogue_gets_the_padded_index(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    with _short_word_library(root) as lib:
        want = {text: [t.id for t in lib.search(text, limit=None)] for text in ("u2", "blue", "ø", "zq 7")}
        _as_version_8(lib)
    with Library.open(root, create=False, readonly=True) as old:  # read-only: not migrated, short words scanned
        assert old._fts and not old._fts_short and old._short_word_terms("u2") is None
        assert {text: [t.id for t in old.search(text, limit=None)] for text in want} == want
    with Library.open(root) as lib:
        assert lib._fts_short and lib._short_word_terms("u2") == ["u2\x01"]
        assert {text: [t.id for t in lib.search(text, limit=None)] for text in want} == want
        lib.set_tags(301, Tags(artist="U3", title="Zoo TV"))  # the migrated index follows edits
        assert lib.search("u2") == [] and [t.id for t in lib.search("u3")] == [301]


def test_an_upgrade_of_a_large_catalogue_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "lib"
    with _short_word_library(root) as lib:
        _as_version_8(lib)
    monkeypatch.setattr(catalog, "UPGRADE_NOTICE_TRACKS", 300)
    with caplog.at_level("WARNING", logger="soundalike.library.catalog"), Library.open(root):
        pass
    assert f"from schema 8 to {SCHEMA_VERSION} (305 tracks; once" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="soundalike.library.catalog"), Library.open(root):
        pass
    assert caplog.text == ""  # only the upgrade says it
