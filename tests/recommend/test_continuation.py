"""Playlist continuation: every score method, the playlist's tracks never returned, bad entries skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import library_tracks
from soundalike.library.catalog import Library
from soundalike.recommend import (
    QueryError,
    continue_playlist,
    load_index,
)


def test_continue_playlist_every_score_excludes_the_playlist(styled: Path, tmp_path: Path) -> None:
    tracks = library_tracks(styled)
    ambient = [t for t in tracks if "ambient" in t.album.lower() or "ambient" in t.path][:4]
    assert len(ambient) == 4
    m3u = tmp_path / "mix.m3u"
    lines = ["#EXTM3U"]
    for t in ambient:
        lines += [f"#EXTINF:6,{t.label}", t.path]
    m3u.write_text("\n".join(lines) + "\n")
    with Library.open(styled / "lib") as lib:
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


def test_playlist_with_bad_entries_still_continues(styled: Path, tmp_path: Path) -> None:
    t0, t1 = library_tracks(styled)[:2]
    playlist = tmp_path / "p.json"
    playlist.write_text(json.dumps([t0.id, t0.path, str(tmp_path / "gone.mp3"), "no such song at all", t1.label,
                                    {"track_id": 99999}]))
    with Library.open(styled / "lib") as lib:
        pq, results = continue_playlist(lib, playlist, 3, model="descriptor")
    assert [q.track.id for q in pq.queries if q.track] == [t0.id, t1.id]
    assert len(pq.skipped) == 4 and any("listed twice" in s for s in pq.skipped)
    assert any("gone.mp3: file not found" in s for s in pq.skipped)
    assert len(results) == 3
    empty = tmp_path / "empty.m3u"
    empty.write_text("#EXTM3U\n")
    with Library.open(styled / "lib") as lib, pytest.raises(QueryError, match="no usable track"):
        continue_playlist(lib, empty, 3, model="descriptor")

