"""Subsonic media: ``stream`` and ``download`` (the file as on disk, HTTP range requests) and ``getCoverArt``.

Cover art comes from the picture embedded in a song's file (ID3 ``APIC``, FLAC and Ogg pictures, MP4 ``covr``;
the front cover first) or, failing that, an image beside it (``cover``, ``folder``, ``front``, ``album`` with a
``.jpg``, ``.jpeg``, ``.png`` or ``.webp`` suffix, any case). An album's art is its first song's that has one, an
artist's the art of its first album that has one. ``size`` scales the image down (Pillow) to fit a square. No
art: HTTP 404 with a Subsonic error 70.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from fastapi.responses import FileResponse, Response

from soundalike.audio.decode import display_path
from soundalike.library.catalog import Track

from .media import audio_content_type
from .state import LibraryState
from .subsonic_model import Browse, browse
from .subsonic_protocol import Call, SubsonicError, endpoint

FOLDER_IMAGES = ("cover", "folder", "front", "album", "albumart")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MAX_ART_BYTES = 20 << 20


class SongFile(FileResponse):
    """A file answer that honours ``Range`` on a form POST too (Starlette's answers ranges only to GET and HEAD;
    Subsonic clients such as py-opensonic POST their ``stream`` requests)."""

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        """Answer as to a GET."""
        if scope.get("type") == "http" and str(scope.get("method", "")).upper() == "POST":
            scope = {**scope, "method": "GET"}
        await super().__call__(scope, receive, send)


def _file(call: Call) -> tuple[Track, str]:
    track = browse(call).track(call.params.required("id"))
    path = call.server.state.file_of(track.id)
    if path is None:
        raise SubsonicError(70, f"The file of song {track.id} is gone")
    return track, path


@endpoint("stream", "Stream a song (range requests; no transcoding)")
def stream(call: Call) -> Response:
    """``id``: the song's file as on disk (``Range`` answered with 206); ``maxBitRate`` and ``format`` are ignored."""
    _, path = _file(call)
    return SongFile(path, media_type=audio_content_type(path), headers={"Cache-Control": "private, max-age=3600"})


@endpoint("download", "Download a song's file")
def download(call: Call) -> Response:
    """``id``: the song's file, as an attachment with its file name."""
    _, path = _file(call)
    return SongFile(path, media_type=audio_content_type(path), filename=display_path(os.path.basename(path)))


def embedded_picture(path: str) -> bytes | None:
    """The picture embedded in an audio file (the front cover when several), or None."""
    try:
        import mutagen

        f = mutagen.File(path)
    except Exception:  # noqa: BLE001 - unreadable tags: no picture
        return None
    if f is None:
        return None
    pictures: list[tuple[int, bytes]] = [(int(p.type), bytes(p.data)) for p in getattr(f, "pictures", [])]
    tags = f.tags
    if tags is not None:
        if hasattr(tags, "getall"):  # ID3 (MP3, WAV, AIFF)
            pictures += [(int(frame.type), bytes(frame.data)) for frame in tags.getall("APIC")]
        elif hasattr(tags, "get"):
            pictures += [(3, bytes(cover)) for cover in tags.get("covr", []) or []]  # MP4
            for text in tags.get("metadata_block_picture", []) or []:  # Vorbis comments (Ogg, Opus)
                try:
                    from mutagen.flac import Picture

                    picture = Picture(base64.b64decode(text))
                    pictures.append((int(picture.type), bytes(picture.data)))
                except Exception:  # noqa: BLE001 - a broken picture block
                    continue
    pictures = [p for p in pictures if p[1]]
    if not pictures:
        return None
    pictures.sort(key=lambda p: p[0] != 3)  # type 3: front cover
    return pictures[0][1]


def folder_image(path: str) -> bytes | None:
    """An image file beside the audio file (``cover.jpg``, ``folder.jpg``...), or None."""
    folder = Path(path).parent
    try:
        names = {entry.name.lower(): entry for entry in os.scandir(folder) if entry.is_file()}
    except OSError:
        return None
    for stem in FOLDER_IMAGES:
        for suffix in IMAGE_SUFFIXES:
            entry = names.get(stem + suffix)
            if entry is not None and entry.stat().st_size <= MAX_ART_BYTES:
                return Path(entry.path).read_bytes()
    return None


def art_of(track_paths: list[str]) -> bytes | None:
    """The first cover found among these files (embedded, then beside each file)."""
    for path in track_paths:
        found = embedded_picture(path) or folder_image(path)
        if found:
            return found
    return None


def scaled(data: bytes, size: int | None) -> tuple[bytes, str]:
    """The image (scaled down to fit ``size`` x ``size`` when larger) and its content type."""
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(data))
        kind = (image.format or "").lower()
        if size is None or max(image.size) <= size:
            return data, Image.MIME.get(image.format or "", "application/octet-stream")
        image.thumbnail((size, size))
        out = io.BytesIO()
        if kind == "png" or image.mode in ("RGBA", "LA", "P"):
            image.save(out, format="PNG")
            return out.getvalue(), "image/png"
        image.convert("RGB").save(out, format="JPEG", quality=88)
        return out.getvalue(), "image/jpeg"
    except Exception:  # noqa: BLE001 - not an image Pillow reads
        raise SubsonicError(70, "Cover art is not a readable image", 404) from None


def cover_image(state: LibraryState, b: Browse, item_id: str, size: int | None) -> tuple[bytes, str] | None:
    """The cover art of a song, album or artist id (scaled to fit ``size``) and its content type; None when the id
    names nothing or no art is found. Cached per catalogue generation."""
    try:
        tracks = b.tracks_of(item_id)
    except SubsonicError:
        return None
    key = ("cover", item_id, size or 0, state.generation())

    def render() -> bytes:
        paths = [p for t in tracks[:50] if (p := state.file_of(t.id)) is not None]
        art = art_of(paths)
        if art is None:
            return b""
        data, kind = scaled(art, size)
        return kind.encode() + b"\n" + data

    stored = state.png(key, render)
    if not stored:
        return None
    kind, _, data = stored.partition(b"\n")
    return data, kind.decode()


@endpoint("getCoverArt", "Cover art of a song, album or artist")
def get_cover_art(call: Call) -> Response:
    """``id`` (a song, album or artist id, as in ``coverArt``), optional ``size`` in pixels."""
    raw = call.params.required("id")
    size = call.params.integer("size", 0, lo=0, hi=4096) or None
    found = cover_image(call.server.state, browse(call), raw, size)
    if found is None:
        raise SubsonicError(70, f"Cover art not found: {raw[:60]}", 404)
    data, kind = found
    return Response(data, media_type=kind, headers={"Cache-Control": "private, max-age=86400"})
