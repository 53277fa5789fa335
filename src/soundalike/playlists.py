"""Playlist files: write extended M3U for music players."""

from __future__ import annotations

from collections.abc import Iterable

from .catalog import Track


def to_m3u(tracks: Iterable[Track], title: str | None = None) -> str:
    """An extended M3U playlist (UTF-8, absolute paths, ``#EXTINF`` with duration and artist - title)."""
    lines = ["#EXTM3U"]
    if title:
        lines.append(f"#PLAYLIST:{title}")
    for t in tracks:
        lines.append(f"#EXTINF:{int(round(t.duration))},{t.label}")
        lines.append(t.path)
    return "\n".join(lines) + "\n"
