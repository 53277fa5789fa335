"""Listening data: MPD JSON slices, M3U folders and list,track CSVs to a playlist x track matrix; ALS factors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from soundalike import synth
from soundalike.evaluation.interactions import InteractionsError, als_item_factors, load_interactions
from soundalike.library.catalog import Library
from soundalike.library.scan import scan


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[synth.SynthTrack], dict[Path, int]]:
    root = tmp_path_factory.mktemp("interactions")
    tracks = synth.make_library(root / "music", styles=["techno", "ambient"], tracks_per_style=3, duration=3.0,
                                seed=5, formats=("wav",))
    with Library.open(root / "lib") as lib:
        scan(lib, [root / "music"], isolate=False)
        ids = {t.path: lib.track_by_path(t.path).id for t in tracks}  # type: ignore[union-attr]
    (root / "stray.wav").write_bytes((tracks[0].path).read_bytes())  # on disk, never indexed
    return root, tracks, ids


def _open(root: Path) -> Library:
    return Library.open(root / "lib")


def test_m3u_folder_relative_absolute_urls_missing_and_duplicates(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, tracks, ids = env
    lists = tmp_path / "playlists"
    (lists / "sub").mkdir(parents=True)
    a, b, c, d = (t.path for t in tracks[:4])
    (lists / "one.m3u8").write_text(
        "#EXTM3U\n#EXTINF:3,Someone - First\n"
        f"{Path('..') / '..' / a.relative_to(root.parent)}\n"  # relative to the playlist's folder
        f"{b}\n{b}\n"  # the same entry twice
        f"{tmp_path / 'gone.mp3'}\n"  # missing
        "http://example.com/stream.mp3\n\n", encoding="utf-8")
    (lists / "sub" / "two.m3u").write_text(f"{c.as_uri()}\r\n{d}\r\n{root / 'stray.wav'}\r\n", encoding="utf-8")
    with _open(root) as lib:
        data = load_interactions(lib, lists)
    assert data.format == "m3u" and sorted(data.lists) == ["one.m3u8", str(Path("sub") / "two.m3u")]
    assert data.matrix.shape == (2, 4) and data.matrix.nnz == 4
    assert sorted(data.track_ids.tolist()) == sorted(ids[p] for p in (a, b, c, d))
    assert data.entries == 8 and data.duplicates == 1
    assert data.unknown == {"missing file": 1, "URL, not a local file": 1, "file not in the catalogue": 1}
    report = data.report()
    assert "1 missing file" in report and "gone.mp3" in report and "1 duplicate" in report
    row = data.lists.index("one.m3u8")
    cols = data.matrix[row].indices
    assert sorted(data.track_ids[cols].tolist()) == sorted([ids[a], ids[b]])
    assert set(data.matrix.data.tolist()) == {1.0}


def test_single_m3u_file_and_a_latin1_m3u(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, tracks, ids = env
    pl = tmp_path / "mix.m3u"
    pl.write_bytes(f"#EXTINF:1,Caf\xe9\n{tracks[0].path}\n".encode("latin-1"))
    with _open(root) as lib:
        data = load_interactions(lib, pl)
    assert data.lists == ["mix.m3u"] and data.track_ids.tolist() == [ids[tracks[0].path]]


def test_list_track_csv_paths_ids_unknowns_duplicates(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, tracks, ids = env
    rel = Path("..") / tracks[1].path.relative_to(root.parent)  # relative to the CSV's folder (tmp_path)
    csv_path = tmp_path / "lists.csv"
    tid0 = ids[tracks[0].path]
    csv_path.write_text(
        "List,Track\n"  # header case does not matter
        f"party,{tid0}\n"
        f"party,{tracks[0].path}\n"  # the same track by path: duplicate
        f"party,{rel}\n"
        f"chill,{tracks[4].path}\n"
        "chill,99999\n"  # unknown id
        f"chill,{tmp_path / 'gone.flac'}\n"  # missing file
        "chill,\n"  # empty cell
        "nothing,98765\n", encoding="utf-8")
    with _open(root) as lib:
        data = load_interactions(lib, csv_path)
    assert data.format == "csv" and data.lists == ["party", "chill"]
    assert data.matrix.shape == (2, 3) and data.matrix.nnz == 3
    assert data.duplicates == 1 and data.empty_lists == 1
    assert data.unknown == {"unknown track id": 2, "missing file": 1, "empty list or track cell": 1}
    assert data.summary()["playlists"] == 2 and data.summary()["unknown_entries"]["missing file"] == 1


@pytest.mark.parametrize(("text", "match"), [
    ("playlist,song\na,b\n", r"lists\.csv: expected a header with the columns list,track \(found: playlist,song\)"),
    ("", r"lists\.csv: empty CSV file"),
    ("list,track\nonly-one-column\n", r"lists\.csv, line 2: expected 2 columns, got 1"),
    ("list,track\na,\"unterminated\n", r"lists\.csv"),
])
def test_bad_list_csv_names_file_and_reason(env, tmp_path: Path, text: str, match: str) -> None:  # type: ignore[no-untyped-def]
    root, _, _ = env
    (tmp_path / "lists.csv").write_text(text, encoding="utf-8")
    with _open(root) as lib, pytest.raises(InteractionsError, match=match):
        load_interactions(lib, tmp_path / "lists.csv")


def _slice(pid_tracks: dict[int, list[str]]) -> dict[str, object]:
    return {"info": {"slice": "0-1"}, "playlists": [
        {"pid": pid, "name": f"list {pid}", "tracks": [
            {"pos": i, "track_uri": uri, "artist_name": "Artist", "track_name": f"Song {uri[-1]}"}
            for i, uri in enumerate(uris)]} for pid, uris in pid_tracks.items()]}


def test_mpd_slices_with_track_map(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, tracks, ids = env
    mpd = tmp_path / "mpd"
    mpd.mkdir()
    (mpd / "mpd.slice.0-1.json").write_text(json.dumps(_slice({0: ["spotify:track:a", "spotify:track:b",
                                                                     "spotify:track:a"],
                                                                 1: ["spotify:track:c", "spotify:track:x",
                                                                     "spotify:track:gone"]})))
    (mpd / "mpd.slice.1-2.json").write_text(json.dumps(_slice({1: ["spotify:track:b"],  # repeated pid
                                                                 2: ["spotify:track:x"]})))
    (mpd / "uris.csv").write_text(  # relative paths resolve against the map's folder
        "track_uri,path\n"
        f"spotify:track:a,{Path('..') / '..' / tracks[0].path.relative_to(root.parent)}\n"
        f"spotify:track:b,{tracks[1].path}\nspotify:track:c,{tracks[3].path}\n"
        f"spotify:track:gone,{tmp_path / 'gone.ogg'}\n", encoding="utf-8")
    with _open(root) as lib:
        data = load_interactions(lib, mpd)
        single = load_interactions(lib, mpd / "mpd.slice.0-1.json")  # one slice, map found beside it
    assert data.format == "mpd" and data.lists == ["mpd:0", "mpd:1"]
    assert data.duplicate_lists == 1 and data.duplicates == 1 and data.empty_lists == 1
    assert data.unknown == {"track_uri not in the track map": 2, "missing file": 1}
    assert "Artist - Song x (spotify:track:x)" in data.report()
    assert sorted(data.track_ids.tolist()) == sorted(ids[tracks[i].path] for i in (0, 1, 3))
    assert single.matrix.shape == (2, 3)


def test_mpd_errors(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, tracks, _ = env
    with _open(root) as lib:
        (tmp_path / "a.json").write_text(json.dumps(_slice({0: ["spotify:track:a"]})))
        with pytest.raises(InteractionsError, match="a CSV of track_uri,path"):
            load_interactions(lib, tmp_path / "a.json")
        (tmp_path / "map.csv").write_text(f"track_uri,path\nspotify:track:a,{tracks[0].path}\n")
        assert load_interactions(lib, tmp_path / "a.json").matrix.nnz == 1
        with pytest.raises(InteractionsError, match=r"map\.csv: this is a track_uri,path map"):
            load_interactions(lib, tmp_path / "map.csv")
        (tmp_path / "b.json").write_text('{"playlists": [')
        with pytest.raises(InteractionsError, match=r"b\.json: not valid JSON"):
            load_interactions(lib, tmp_path / "b.json", track_map=tmp_path / "map.csv")
        (tmp_path / "c.json").write_text('{"lists": []}')
        with pytest.raises(InteractionsError, match=r"c\.json: not a Million Playlist Dataset slice"):
            load_interactions(lib, tmp_path / "c.json", track_map=tmp_path / "map.csv")
        with pytest.raises(InteractionsError, match="no such track map"):
            load_interactions(lib, tmp_path / "a.json", track_map=tmp_path / "nope.csv")


def test_sources_that_cannot_be_used(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, _, _ = env
    with _open(root) as lib:
        with pytest.raises(InteractionsError, match="no such file or folder"):
            load_interactions(lib, tmp_path / "nothing")
        (tmp_path / "empty").mkdir()
        with pytest.raises(InteractionsError, match="no playlists found"):
            load_interactions(lib, tmp_path / "empty")
        (tmp_path / "x.xlsx").write_text("?")
        with pytest.raises(InteractionsError, match="unrecognised listening data"):
            load_interactions(lib, tmp_path / "x.xlsx")
        (tmp_path / "other.m3u").write_text(f"{tmp_path / 'a.mp3'}\n{root / 'stray.wav'}\n")
        with pytest.raises(InteractionsError, match=r"other\.m3u: names no catalogue track .*1 missing file, "
                                                    r"1 file not in the catalogue"):
            load_interactions(lib, tmp_path / "other.m3u")
        assert len(load_interactions(lib, tmp_path / "other.m3u", require_tracks=False).track_ids) == 0


def test_als_factors_are_deterministic(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, tracks, ids = env
    csv_path = tmp_path / "lists.csv"
    csv_path.write_text("list,track\n" + "".join(f"{t.style}{k},{t.path}\n" for t in tracks for k in range(2)))
    with _open(root) as lib:
        data = load_interactions(lib, csv_path)
    a = als_item_factors(data, 8, seed=3)
    b = als_item_factors(data, 8, seed=3)
    assert a.shape == (6, 8) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    unit = a / np.linalg.norm(a, axis=1, keepdims=True)
    sims = unit @ unit.T
    style_of = {ids[t.path]: t.style for t in tracks}
    style = np.array([style_of[int(t)] for t in data.track_ids])
    same = style[:, None] == style[None, :]
    assert sims[same].mean() > sims[~same].mean()  # tracks sharing playlists get alike factors
    np.testing.assert_allclose(als_item_factors(data, 8, seed=3, num_threads=1), a, rtol=1e-5, atol=1e-6)
