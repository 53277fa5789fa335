"""The recommendation engine: filters, duplicates, playlist continuation, paths between tracks, playlist files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers import synth_library
from soundalike.app.cli import app
from soundalike.library.catalog import Library, Track
from soundalike.recommend import (
    Filters,
    QueryError,
    continue_playlist,
    load_index,
    path_between,
    recording_key,
    similar,
)
from soundalike.recommend.playlists import PlaylistError, read_playlist

STYLES = ["techno", "ambient", "chiptune", "classical"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_library(tmp_path_factory.mktemp("recommend"), STYLES, tracks_per_style=6, duration=6.0, seed=5)


def _tracks(root: Path) -> list[Track]:
    with Library.open(root / "lib") as lib:
        return lib.tracks()


def test_recording_key_ignores_version_notes() -> None:
    def t(artist: str, title: str) -> Track:
        return Track(1, "/x", artist, "", title, 1.0, "h")

    assert recording_key(t("Björk", "Jóga (Remastered 2011)")) == recording_key(t("bjork", "Joga"))
    assert recording_key(t("A", "Song - Live at Wembley")) == recording_key(t("A", "Song"))
    assert recording_key(t("A", "Song")) != recording_key(t("B", "Song"))
    assert recording_key(t("A", "")) is None


def test_filters_exclude_and_cap_artists_and_albums(root: Path) -> None:
    with Library.open(root / "lib") as lib:
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


def test_duplicate_versions_are_skipped(root: Path, tmp_path: Path) -> None:
    library = tmp_path / "lib"
    shutil.copytree(root / "lib", library)
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


def test_continue_playlist_every_score_excludes_the_playlist(root: Path, tmp_path: Path) -> None:
    tracks = _tracks(root)
    ambient = [t for t in tracks if "ambient" in t.album.lower() or "ambient" in t.path][:4]
    assert len(ambient) == 4
    m3u = tmp_path / "mix.m3u"
    lines = ["#EXTM3U"]
    for t in ambient:
        lines += [f"#EXTINF:6,{t.label}", t.path]
    m3u.write_text("\n".join(lines) + "\n")
    with Library.open(root / "lib") as lib:
        index = load_index(lib, "descriptor")
        for score in ("max", "mean", "topk", "cluster"):
            pq, results = continue_playlist(lib, m3u, 5, score=score, index=index)
            assert len(pq.queries) == 4 and not pq.skipped
            assert len(results) == 5 and not {r.track.id for r in results} & {t.id for t in ambient}
        # The synthetic styles are easy: most continuations of an ambient playlist are ambient.
        _, results = continue_playlist(lib, m3u, 2, score="mean", index=index)
        assert sum("ambient" in r.track.path for r in results) >= 1
        with pytest.raises(QueryError, match="unknown score"):
            continue_playlist(lib, m3u, 5, score="median", index=index)


def test_playlist_with_bad_entries_still_continues(root: Path, tmp_path: Path) -> None:
    t0, t1 = _tracks(root)[:2]
    playlist = tmp_path / "p.json"
    playlist.write_text(json.dumps([t0.id, t0.path, str(tmp_path / "gone.mp3"), "no such song at all", t1.label,
                                    {"track_id": 99999}]))
    with Library.open(root / "lib") as lib:
        pq, results = continue_playlist(lib, playlist, 3, model="descriptor")
    assert [q.track.id for q in pq.queries if q.track] == [t0.id, t1.id]
    assert len(pq.skipped) == 4 and any("listed twice" in s for s in pq.skipped)
    assert any("gone.mp3: file not found" in s for s in pq.skipped)
    assert len(results) == 3
    empty = tmp_path / "empty.m3u"
    empty.write_text("#EXTM3U\n")
    with Library.open(root / "lib") as lib, pytest.raises(QueryError, match="no usable track"):
        continue_playlist(lib, empty, 3, model="descriptor")


def test_read_playlist_formats(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    m3u = tmp_path / "sub" / "list.m3u8"
    m3u.write_text("#EXTM3U\n#EXTINF:10,A - B\n../music/a.flac\nfile:///abs/b%20c.ogg\nhttp://radio/x\n\n",
                   encoding="utf-8")
    entries = read_playlist(m3u)
    assert entries[0].path == str(tmp_path / "music" / "a.flac")
    assert entries[1].path == "/abs/b c.ogg" and entries[2].path is None
    (tmp_path / "l.json").write_text('{"tracks": [3, "Artist - Title", {"path": "x/y.mp3"}]}')
    entries = read_playlist(tmp_path / "l.json")
    assert entries[0].track_id == 3 and entries[1].text == "Artist - Title" and entries[2].path == str(
        tmp_path / "x" / "y.mp3")
    (tmp_path / "bad.json").write_text("[1, 2")
    with pytest.raises(PlaylistError, match="bad.json: not valid JSON"):
        read_playlist(tmp_path / "bad.json")
    with pytest.raises(PlaylistError, match="no such playlist file"):
        read_playlist(tmp_path / "none.m3u")


def test_path_runs_from_start_to_end_through_distinct_tracks(root: Path) -> None:
    tracks = _tracks(root)
    start = next(t for t in tracks if "techno" in t.path)
    end = next(t for t in tracks if "classical" in t.path)
    with Library.open(root / "lib") as lib:
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


def test_cli_continue_and_path(root: Path, tmp_path: Path) -> None:
    t = _tracks(root)
    playlist = tmp_path / "p.m3u"
    playlist.write_text("\n".join(x.path for x in t[:3]) + "\nmissing.ogg\n")
    lib = str(root / "lib")
    res = CliRunner().invoke(app, ["continue", str(playlist), "-k", "4", "--library", lib, "--model", "descriptor",
                                   "--score", "topk", "-f", "json", "--max-per-album", "2"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert len(payload["results"]) == 4 and len(payload["playlist"]["tracks"]) == 3
    albums = [r["album"] for r in payload["results"]]
    assert max(albums.count(a) for a in albums) <= 2
    assert "skip" in res.stderr and "missing.ogg" in res.stderr
    res = CliRunner().invoke(app, ["path", str(t[0].id), str(t[-1].id), "-n", "5", "--library", lib, "--model",
                                   "descriptor", "-f", "m3u"])
    assert res.exit_code == 0, res.output
    paths = [line for line in res.stdout.splitlines() if line and not line.startswith("#")]
    assert paths[0] == t[0].path and paths[-1] == t[-1].path and len(paths) == 5
    res = CliRunner().invoke(app, ["continue", str(tmp_path / "none.m3u"), "--library", lib])
    assert res.exit_code == 2 and "no such playlist file" in res.stderr
    res = CliRunner().invoke(app, ["similar", str(t[0].id), "--library", lib, "--model", "descriptor",
                                   "--no-same-artist", "-f", "json"])
    assert res.exit_code == 0 and all(r["artist"] != t[0].artist for r in json.loads(res.stdout)["results"])


def test_vectors_used_are_unit_length(root: Path) -> None:
    with Library.open(root / "lib") as lib:
        index = load_index(lib, "descriptor")
    np.testing.assert_allclose(np.linalg.norm(index.vectors, axis=1), 1.0, rtol=1e-5)


def test_large_library_index_is_persisted_and_follows_the_library(root: Path, tmp_path: Path) -> None:
    from soundalike.search.index import VectorIndex, index_paths

    library = tmp_path / "lib"
    shutil.copytree(root / "lib", library)
    with Library.open(library) as lib:
        exact = VectorIndex.from_library(lib, "descriptor", ann=False)
        forced = VectorIndex.from_library(lib, "descriptor", ann=True)
        index_file, stats_file = index_paths(lib, "descriptor")
        assert forced.ann is not None and index_file.exists() and stats_file.exists()
        q = exact.vector_of(int(exact.ids[0]))
        assert forced.search(q, 5)[0].tolist() == exact.search(q, 5)[0].tolist()  # one cell: exact here
        built = index_file.stat().st_mtime_ns
        again = VectorIndex.from_library(lib, "descriptor", ann=True)
        assert index_file.stat().st_mtime_ns == built and again.ann is not None  # reused, not rebuilt
        # A track leaves the library: the persisted index drops it on the next open.
        gone = int(exact.ids[3])
        lib.conn.execute("DELETE FROM vectors WHERE track_id=?", (gone,))
        lib.conn.commit()
        after = VectorIndex.from_library(lib, "descriptor", ann=True)
        assert after.ann is not None and gone not in after.ann and len(after.ann) == len(exact) - 1
        assert gone not in after.search(q, 23)[0].tolist()
        # A corrupt index file is rebuilt, not fatal.
        index_file.write_bytes(b"garbage")
        assert len(VectorIndex.from_library(lib, "descriptor", ann=True).ann or []) == len(exact) - 1
