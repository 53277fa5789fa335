"""Playlist files: M3U/M3U8 and JSON entries, errors naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from soundalike.recommend.playlists import PlaylistError, read_playlist


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

