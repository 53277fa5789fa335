"""A real MPD (Debian's ``mpd``) on loopback for the companion's tests: its own config, database, state, playlists and
Unix socket in a temporary folder, a null audio output, its music directory the synthetic library's."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

MPD_BINARY = shutil.which("mpd") or "/usr/sbin/mpd"


def free_port() -> int:
    """A TCP port nobody listens on now (the OS's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MpdServer:
    """One MPD process: ``start``/``stop``/``restart`` on the same port and files, ``client()`` to talk to it."""

    def __init__(self, workdir: Path, music_dir: Path, password: str | None = None) -> None:
        self.workdir, self.music_dir, self.password = workdir, music_dir, password
        self.port = free_port()
        self.socket = workdir / "socket"
        self.config = workdir / "mpd.conf"
        (workdir / "playlists").mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f'music_directory "{music_dir}"\n'
            f'db_file "{workdir / "db"}"\n'
            f'state_file "{workdir / "state"}"\n'
            f'playlist_directory "{workdir / "playlists"}"\n'
            f'log_file "{workdir / "log"}"\n'
            'bind_to_address "127.0.0.1"\n'
            f'bind_to_address "{self.socket}"\n'
            f'port "{self.port}"\n'
            'auto_update "no"\n'
            'zeroconf_enabled "no"\n'
            'audio_output {\n    type "null"\n    name "null"\n}\n'
            + (f'password "{password}@read,add,control,admin"\ndefault_permissions ""\n' if password else ""))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def tcp_env(self) -> dict[str, str]:
        """MPD_HOST / MPD_PORT of its TCP address."""
        return {"MPD_HOST": "127.0.0.1", "MPD_PORT": str(self.port)}

    def start(self) -> None:
        """Start MPD and wait until it answers."""
        self.process = subprocess.Popen([MPD_BINARY, "--no-daemon", str(self.config)], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                self.client().disconnect()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (self.workdir / "log").read_text() if (self.workdir / "log").exists() else ""
                    raise RuntimeError(f"mpd did not start: {log[-2000:]}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop MPD (it saves its state) and wait for it to exit."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def client(self) -> Any:
        """A python-mpd2 client connected over TCP."""
        import mpd

        client = mpd.MPDClient()
        client.timeout = 10
        client.connect("127.0.0.1", self.port)
        if self.password:
            client.password(self.password)
        return client

    def update_db(self) -> None:
        """Let MPD read its music directory, and wait until it has."""
        client = self.client()
        try:
            client.update()
            deadline = time.monotonic() + 30
            while "updating_db" in client.status():
                assert time.monotonic() < deadline, "mpd did not finish its database update"
                time.sleep(0.05)
        finally:
            client.disconnect()


def running_mpd(workdir: Path, music_dir: Path, password: str | None = None) -> Iterator[MpdServer]:
    """Start an MPD over ``music_dir`` (its database up to date), yield it, stop it; skip where there is none."""
    pytest.importorskip("mpd", reason="python-mpd2 is not installed (pip install -e '.[dev]')")
    if not Path(MPD_BINARY).is_file():
        pytest.skip("Debian's mpd is not installed (apt-get install mpd; .ci/run does)")
    server = MpdServer(workdir, music_dir, password)
    server.start()
    try:
        server.update_db()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def mpd_server(styled: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MpdServer]:
    """A running MPD whose music directory is the ``styled`` synthetic library's, its database up to date."""
    yield from running_mpd(tmp_path_factory.mktemp("mpd"), styled / "music")


@pytest.fixture
def locked_mpd(styled: Path, tmp_path: Path) -> Iterator[MpdServer]:
    """An MPD that does nothing for a client without its password (``s3cret``)."""
    yield from running_mpd(tmp_path / "mpd", styled / "music", password="s3cret")


@pytest.fixture
def mpd_client(mpd_server: MpdServer) -> Iterator[Any]:
    """A client of the test MPD, its queue and stored playlists emptied before the test."""
    client = mpd_server.client()
    client.stop()
    client.clear()
    for playlist in client.listplaylists():
        client.rm(playlist["playlist"])
    client.consume(0)
    yield client
    client.disconnect()
