"""Fixtures shared by the server tests: a small synthetic library, clients with and without a token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from helpers import SERVER_TOKEN, synth_library
from soundalike.app.server.app import create_app
from soundalike.library.catalog import Library, Track

LOCAL_CLIENT = ("127.0.0.1", 50000)  # a browser or player on the server's own machine


@pytest.fixture(scope="package")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four styles x 3 tracks of 6 s, indexed (descriptors only)."""
    return synth_library(tmp_path_factory.mktemp("server"), ["techno", "ambient", "chiptune", "classical"],
                         tracks_per_style=3, duration=6.0, seed=7)


@pytest.fixture(scope="package")
def tracks(root: Path) -> list[Track]:
    """Every track of ``root``'s library."""
    with Library.open(root / "lib") as lib:
        return lib.tracks()


@pytest.fixture(scope="package")
def client(root: Path) -> Iterator[TestClient]:
    """A client of a tokenless app that notices catalogue changes at once."""
    with TestClient(create_app(root / "lib", refresh_seconds=0.0), raise_server_exceptions=False,
                    client=LOCAL_CLIENT) as c:
        yield c


@pytest.fixture(scope="package")
def token_client(root: Path) -> Iterator[TestClient]:
    """A client of an app that wants :data:`SERVER_TOKEN`."""
    with TestClient(create_app(root / "lib", token=SERVER_TOKEN), raise_server_exceptions=False,
                    client=LOCAL_CLIENT) as c:
        yield c


@pytest.fixture(scope="package")
def subsonic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two styles x 3 tracks of 4 s tagged with genres and track numbers, indexed into ``lib``; Techno's first
    file has an embedded front cover, the Ambient folder a ``folder.jpg`` (the second techno album has no art).
    Its own library: the Subsonic tests write playlists, plays and stars into it."""
    import io

    import mutagen
    from mutagen.id3 import APIC, TCON, TRCK
    from PIL import Image

    from soundalike import synth
    from soundalike.library.scan import scan

    root = tmp_path_factory.mktemp("subsonic")
    made = synth.make_library(root / "music", styles=["techno", "ambient"], tracks_per_style=3, duration=4.0,
                              seed=11)

    def jpeg(colour: tuple[int, int, int]) -> bytes:
        out = io.BytesIO()
        Image.new("RGB", (96, 96), colour).save(out, format="JPEG")
        return out.getvalue()

    for n, track in enumerate(made):
        genre, number = track.style.capitalize(), str(n % 3 + 1)
        if track.path.suffix == ".wav":
            f = mutagen.File(track.path)
            f.tags.add(TCON(encoding=3, text=[genre]))
            f.tags.add(TRCK(encoding=3, text=[number]))
            if track.style == "techno":
                f.tags.add(APIC(encoding=3, mime="image/jpeg", type=3, desc="front", data=jpeg((200, 30, 30))))
            f.save()
        else:
            f = mutagen.File(track.path, easy=True)
            f["genre"], f["tracknumber"] = [genre], [number]
            f.save()
    (root / "music" / "ambient" / "folder.jpg").write_bytes(jpeg((30, 30, 200)))
    with Library.open(root / "lib") as lib:
        scan(lib, [root / "music"], isolate=False)
    return root


@pytest.fixture(scope="package")
def subsonic_client(subsonic_root: Path) -> Iterator[TestClient]:
    """A tokenless app over the Subsonic test library (genres, track numbers, cover art)."""
    with TestClient(create_app(subsonic_root / "lib", refresh_seconds=0.0), raise_server_exceptions=False,
                    client=LOCAL_CLIENT) as c:
        yield c
