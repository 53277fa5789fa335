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
