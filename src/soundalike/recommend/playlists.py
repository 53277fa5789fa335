"""Playlist files: read M3U/M3U8 and JSON playlists into entries, write extended M3U for music players."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from soundalike.library.catalog import Track

M3U_SUFFIXES = (".m3u", ".m3u8")


class PlaylistError(ValueError):
    """A playlist file that cannot be read (missing, undecodable, malformed)."""


@dataclass(frozen=True)
class Entry:
    """One playlist entry: a local path (absolute), a track id, or a search text ("artist - title")."""

    text: str
    path: str | None = None
    track_id: int | None = None


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PlaylistError(f"{path}: cannot read playlist ({exc.strerror or exc})") from None
    for encoding in ("utf-8-sig", "cp1252"):  # .m3u is often Windows-1252; .m3u8 is UTF-8
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def _path_entry(text: str, base: Path) -> Entry:
    """A path, a relative path (against the playlist's folder) or a file:// URL; other URLs stay text."""
    value = text.strip()
    if value.lower().startswith("file://"):
        value = unquote(urlparse(value).path)
    elif "://" in value:
        return Entry(text)
    if "\\" in value and not os.path.exists(value):
        value = value.replace("\\", "/")
    p = Path(os.path.expanduser(value))
    return Entry(text, path=os.path.abspath(p if p.is_absolute() else base / p))


def read_m3u(path: Path) -> list[Entry]:
    """Entries of an M3U/M3U8 file: ``#`` lines (``#EXTM3U``, ``#EXTINF``...) skipped, relative paths resolved."""
    return [_path_entry(line, path.parent) for line in _read_text(path).splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def read_json_playlist(path: Path) -> list[Entry]:
    """Entries of a JSON playlist: a list (or ``{"tracks": [...]}``) of track ids, paths, "artist - title" texts, or
    objects with ``track_id`` / ``path`` (as ``soundalike similar --format json`` writes in ``results``)."""
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise PlaylistError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if isinstance(data, dict):
        data = data.get("tracks", data.get("results"))
    if not isinstance(data, list):
        raise PlaylistError(f"{path}: a JSON playlist is a list of tracks (or an object with a 'tracks' list)")
    entries = []
    for item in data:
        if isinstance(item, dict):
            if item.get("track_id") is not None:
                item = item["track_id"]
            elif item.get("path"):
                item = str(item["path"])
            else:
                raise PlaylistError(f"{path}: a track object needs 'track_id' or 'path': {json.dumps(item)[:80]}")
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise PlaylistError(f"{path}: cannot use playlist item {json.dumps(item)[:80]}")
        if isinstance(item, int) or item.strip().isdigit():
            entries.append(Entry(str(item), track_id=int(item)))
        elif os.sep in item or "/" in item or os.path.exists(item):
            entries.append(_path_entry(item, path.parent))
        else:
            entries.append(Entry(item))
    return entries


def read_playlist(path: str | os.PathLike[str]) -> list[Entry]:
    """Entries of an M3U/M3U8 or JSON playlist file (by extension; JSON if the content starts with ``[``/``{``)."""
    p = Path(path)
    if not p.is_file():
        raise PlaylistError(f"{p}: no such playlist file")
    if p.suffix.lower() == ".json" or (p.suffix.lower() not in M3U_SUFFIXES
                                       and _read_text(p).lstrip()[:1] in ("[", "{")):
        return read_json_playlist(p)
    return read_m3u(p)


def _one_line(text: str) -> str:
    """Text safe in one M3U line: tags and titles cannot start entries of their own."""
    return " ".join(text.splitlines()).replace("\x00", "")


def to_m3u(tracks: Iterable[Track], title: str | None = None) -> str:
    """An extended M3U playlist (UTF-8, absolute paths, ``#EXTINF`` with duration and artist - title). Line breaks
    in tags, titles or paths are flattened, so nothing can add an entry of its own."""
    lines = ["#EXTM3U"]
    if title:
        lines.append(f"#PLAYLIST:{_one_line(title)}")
    for t in tracks:
        lines.append(f"#EXTINF:{int(round(t.duration))},{_one_line(t.label)}")
        lines.append(_one_line(t.path))
    return "\n".join(lines) + "\n"
