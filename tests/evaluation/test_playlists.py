"""Evaluation playlists over a small synthetic library: album/artist-derived, M3U, MPD, CSV; bad input; splits;
and the continuation protocol end to end on the library's own descriptor vectors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import synth_library
from soundalike.evaluation import (
    EvalPlaylist,
    EvaluationError,
    evaluate_continuation,
    holdout_size,
    library_embeddings,
    load_playlists,
    split_playlist,
    split_playlists,
    tag_playlists,
)
from soundalike.library.catalog import Library

STYLES = ["techno", "ambient", "chiptune"]
PER_ALBUM = 4  # synth: 2 albums (one per artist) per style, tracks alternate between them


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_library(tmp_path_factory.mktemp("evalpl"), STYLES, tracks_per_style=2 * PER_ALBUM, duration=3.0,
                         seed=7)


@pytest.fixture
def lib(root: Path):  # type: ignore[no-untyped-def]
    with Library.open(root / "lib") as library:
        yield library


def _paths(lib: Library) -> dict[str, list[str]]:
    by_album: dict[str, list[str]] = {}
    for t in lib.tracks():
        by_album.setdefault(t.album, []).append(t.path)
    return {k: sorted(v) for k, v in by_album.items()}


def test_album_and_artist_playlists(lib: Library) -> None:
    albums = tag_playlists(lib, "album", min_length=PER_ALBUM)
    assert len(albums) == 2 * len(STYLES) and albums.ordered and albums.kind == "album"
    tracks = {t.id: t for t in lib.tracks()}
    for pl in albums:
        assert len(pl) == PER_ALBUM and pl.name.startswith("album:")
        assert {tracks[t].album for t in pl.tracks} == {pl.name[len("album:"):]}
        paths = [tracks[t].path for t in pl.tracks]
        assert paths == sorted(paths)  # path order (track numbers)
    artists = load_playlists(lib, "artist", min_length=PER_ALBUM)
    assert len(artists) == 2 * len(STYLES) and all(p.name.startswith("artist:") for p in artists)
    assert "0 dropped" in artists.report()


def test_too_short_albums_are_reported_or_raise(lib: Library) -> None:
    with pytest.raises(EvaluationError, match=r"(?s)no evaluation playlist has at least 5.*too short") as info:
        tag_playlists(lib, "album", min_length=5)
    assert "'album:Ambient Drift' (4)" in str(info.value) and "and 1 more" in str(info.value)
    empty = tag_playlists(lib, "album", min_length=5, require=False)
    assert len(empty) == 0 and empty.dropped_by_reason() == {"too short (fewer than 5 catalogue tracks)": 6}
    with pytest.raises(EvaluationError, match="min_length must be >= 2"):
        tag_playlists(lib, "album", min_length=1)
    with pytest.raises(EvaluationError, match="unknown tag"):
        tag_playlists(lib, "genre")


def test_m3u_folder_with_bad_entries_keeps_the_good_playlists(lib: Library, root: Path, tmp_path: Path) -> None:
    albums = list(_paths(lib).values())
    good_a, good_b = albums[0], albums[1]
    folder = tmp_path / "lists"
    folder.mkdir()
    (folder / "a.m3u").write_text("#EXTM3U\n" + "\n".join(good_a + [good_a[0], str(tmp_path / "gone.mp3")]) + "\n",
                                  encoding="utf-8")  # a duplicate and a missing file; 4 tracks still resolve
    (folder / "b.m3u8").write_text("\n".join(good_b + [str(root / "music" / "manifest.csv")]) + "\n",
                                   encoding="utf-8")  # a file that is not in the catalogue
    (folder / "short.m3u").write_text("\n".join(albums[2][:2]) + "\n", encoding="utf-8")
    (folder / "none.m3u").write_text(f"{tmp_path / 'nothing.flac'}\nhttp://example.com/x.mp3\n", encoding="utf-8")
    result = load_playlists(lib, folder, min_length=4)
    assert sorted(p.name for p in result) == ["a.m3u", "b.m3u8"] and not result.ordered
    assert all(len(p) == 4 for p in result)
    assert result.lost_entries == {"missing file": 2, "file not in the catalogue": 1, "URL, not a local file": 1}
    report = result.report()
    for words in ("missing file", "gone.mp3", "file not in the catalogue", "1 duplicate entries counted once",
                  "'short.m3u' (2)", "too short", "name no catalogue track"):
        assert words in report, words
    assert result.to_dict()["dropped"] == {"too short (fewer than 4 catalogue tracks)": 1}
    json.dumps(result.to_dict())

    emb = library_embeddings(lib, ["descriptor"])
    report_ = evaluate_continuation(result, emb, top_n=(2,), min_length=4, scores=("max",))
    assert report_.result("descriptor", "max", 2).playlists == 2  # the rest still evaluates


def test_list_csv_with_unknown_track_ids(lib: Library, tmp_path: Path) -> None:
    ids = [t.id for t in lib.tracks()]
    rows = ["list,track"] + [f"mix,{i}" for i in ids[:6]] + ["mix,999999", "mix,not-a-track", f"tiny,{ids[0]}"]
    (tmp_path / "lists.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = load_playlists(lib, tmp_path / "lists.csv", min_length=4)
    assert [p.name for p in result] == ["mix"] and len(result.playlists[0]) == 6
    assert result.lost_entries.get("unknown track id") == 1
    assert "unknown track id" in result.report() and "'tiny' (1)" in result.report()


def test_mpd_slices_with_a_track_map(lib: Library, tmp_path: Path) -> None:
    paths = [t.path for t in lib.tracks()]
    (tmp_path / "map.csv").write_text("track_uri,path\n" + "".join(f"spotify:track:{i},{p}\n"
                                                                    for i, p in enumerate(paths)), encoding="utf-8")
    slice_ = {"playlists": [
        {"pid": 1, "tracks": [{"track_uri": f"spotify:track:{i}"} for i in range(12)]},
        {"pid": 2, "tracks": [{"track_uri": f"spotify:track:{i}"} for i in (0, 1, 2)]
         + [{"track_uri": "spotify:track:nope", "track_name": "Lost", "artist_name": "Someone"}]},
        {"pid": 1, "tracks": []},  # a repeated pid
    ]}
    (tmp_path / "mpd.slice.0-2.json").write_text(json.dumps(slice_), encoding="utf-8")
    result = load_playlists(lib, tmp_path)  # default min_length 10
    assert [p.name for p in result] == ["mpd:1"] and result.kind == "mpd" and len(result.playlists[0]) == 12
    report = result.report()
    assert "track_uri not in the track map" in report and "Someone - Lost" in report
    assert "repeated playlists skipped" in report and "'mpd:2' (3)" in report


def test_unreadable_source_raises_evaluation_error(lib: Library, tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="no such file or folder"):
        load_playlists(lib, tmp_path / "missing.m3u")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "map.csv").write_text("track_uri,path\n", encoding="utf-8")
    with pytest.raises(EvaluationError, match="not valid JSON"):
        load_playlists(lib, tmp_path / "bad.json")


def test_empty_library_gives_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "one.m3u").write_text("/nowhere.mp3\n", encoding="utf-8")
    with Library.open(tmp_path / "empty") as empty:
        with pytest.raises(EvaluationError, match="has no tracks; index music first"):
            tag_playlists(empty, "album")
        with pytest.raises(EvaluationError, match="has no tracks"):
            load_playlists(empty, tmp_path / "one.m3u")
        with pytest.raises(EvaluationError, match="no tracks embedded with 'descriptor'"):
            library_embeddings(empty, ["descriptor"])
    with pytest.raises(EvaluationError, match="'descriptor' has no tracks"):
        evaluate_continuation([EvalPlaylist("x", tuple(range(10)))],
                              {"descriptor": (np.zeros(0, np.int64), np.zeros((0, 8), np.float32))})


def test_holdout_sizes_and_splits() -> None:
    assert [holdout_size(n) for n in (2, 3, 10, 11)] == [1, 1, 5, 5]
    assert holdout_size(10, 0.2) == 2 and holdout_size(10, 0.99) == 9 and holdout_size(10, 0.01) == 1
    for bad in (0.0, 1.0, -0.5):
        with pytest.raises(EvaluationError, match="holdout_fraction"):
            holdout_size(10, bad)
    pl = EvalPlaylist("p", tuple(range(100, 111)))
    ordered = split_playlist(pl, mode="ordered")
    assert ordered.seed == tuple(range(100, 106)) and ordered.heldout == tuple(range(106, 111))
    rand = split_playlist(pl, seed=3)
    assert len(rand.heldout) == 5 and sorted(rand.seed + rand.heldout) == list(pl.tracks)
    assert rand == split_playlist(pl, seed=3)  # deterministic
    assert list(rand.seed) == sorted(rand.seed)  # keeps the playlist's order within each part
    others = [split_playlist(pl, seed=s).heldout for s in range(4, 10)]
    assert any(h != rand.heldout for h in others)
    # a playlist's split does not depend on the other playlists
    q = EvalPlaylist("q", tuple(range(20)))
    assert split_playlists([q, pl], seed=3)[1] == rand
    with pytest.raises(EvaluationError, match="split mode"):
        split_playlist(pl, mode="shuffled")  # type: ignore[arg-type]


def test_protocol_on_the_library(lib: Library) -> None:
    playlists = tag_playlists(lib, "album", min_length=PER_ALBUM)
    tracks = lib.tracks()
    albums = sorted({t.album for t in tracks})
    onehot = np.eye(len(albums), dtype=np.float32)[[albums.index(t.album) for t in tracks]]
    embeddings = {**library_embeddings(lib, ["descriptor"]),
                  "album-onehot": (np.array([t.id for t in tracks]), onehot)}
    report = evaluate_continuation(playlists, embeddings, top_n=(2, 4), min_length=PER_ALBUM, seed=1)
    for score in ("max", "mean", "topk", "cluster"):
        perfect = report.result("album-onehot", score, 2)
        assert perfect["map"] == pytest.approx(1.0) and perfect["ndcg"] == pytest.approx(1.0)
        assert perfect["r_precision"] == pytest.approx(1.0)
        assert report.result("album-onehot", score, 4)["recall"] == pytest.approx(1.0)
    assert report.catalogue == len(tracks) and report.result("random", None, 2).playlists == 6
    table = report.to_markdown()
    assert "| album-onehot@2 (max) |" in table and "| descriptor@4 (" in table and "| most_popular@2 |" in table
    again = evaluate_continuation(playlists, embeddings, top_n=(2, 4), min_length=PER_ALBUM, seed=1)
    assert again.to_dict() == report.to_dict()
