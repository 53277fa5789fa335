"""soundalike serve --workers N: the library loaded once, forked into workers that share it and follow the catalogue."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from soundalike.app.server.maps import BackgroundJobs
from soundalike.app.server.run import background_server, held_connections, port_sockets
from soundalike.app.server.state import LibraryState
from soundalike.audio.analysis import Tags
from soundalike.library.catalog import Library


def _retitle(library: Path, prefix: str) -> None:
    """Give every track of ``library`` a new title, from another connection (as another process would)."""
    with Library.open(library) as lib:
        for track in lib.tracks():
            lib.set_tags(track.id, Tags(artist=track.artist, album=track.album, title=f"{prefix} {track.id}"))


def test_a_forked_state_keeps_its_caches_and_notices_every_change(root: Path, tmp_path: Path) -> None:
    library = shutil.copytree(root / "lib", tmp_path / "lib")
    state = LibraryState(library, refresh_seconds=0.0)
    builds: list[int] = []

    def build() -> int:
        builds.append(1)
        return len(builds)

    try:
        assert state.cached(("k",), build) == 1
        for prefix in ("one", "two"):  # the watcher's data_version moves on: a new connection's starts elsewhere
            _retitle(library, prefix)
            assert state.cached(("k",), build) == len(builds)
        seen = len(builds)
        state.detach()  # what the server does before it forks into workers, then before each fork:
        state.generation(force=True)
        state.after_fork()  # and in the worker (here in one process: the watcher is replaced all the same)
        assert state.cached(("k",), build) == seen  # a worker's own connection is no change: the cache is kept
        _retitle(library, "three")
        assert state.cached(("k",), build) == seen + 1
        _retitle(library, "four")  # committed before a later fork (a lost worker replaced): noticed there
        state.generation(force=True)
        state.after_fork()
        assert state.cached(("k",), build) == seen + 2
    finally:
        state.close()


def test_background_jobs_wait_for_the_running_ones() -> None:
    jobs, release = BackgroundJobs(), threading.Event()
    assert jobs.wait(0.01)
    jobs.start("slow", lambda: release.wait(10) and "done")
    assert not jobs.wait(0.05)
    release.set()
    assert jobs.wait(10) and jobs.get("slow") == "done"


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return kids


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=30) as answer:  # a new connection each time: any worker answers
        return json.load(answer)  # type: ignore[no-any-return]


def _all_renamed(url: str, asks: int = 8) -> bool:
    """Whether ``asks`` map answers (new connections: either worker) show only renamed tracks."""
    return all(all(str(t).startswith("renamed") for t in _get(f"{url}/api/map")["title"])  # type: ignore[attr-defined]
               for _ in range(asks))


def _eventually(check: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.3)
    return check()


def _spread(port: int, workers: list[int], n: int) -> list[int]:
    """Open ``n`` connections to the server at once, then make a keep-alive request on each: how many each
    worker holds. (On one shared socket, the worker woken first accepted all queued connections.)"""
    connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    try:
        for connection in connections:
            connection.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        for connection in connections:
            connection.settimeout(10)
            assert connection.recv(65536).startswith(b"HTTP/1.1 200")
        return held_connections(workers, port)
    finally:
        for connection in connections:
            connection.close()


def _balanced(port: int, workers: list[int], n: int, rounds: int = 100) -> list[int]:
    """Keep ``n`` keep-alive clients asking (each reconnecting when answered ``Connection: close``) until a round
    passes in which no worker asked one to: how many connections each worker then holds. (A worker closes one a
    tick, 0.1 s: the rounds are spaced so that each may.)"""
    clients = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(n)]
    try:
        for _ in range(rounds):
            time.sleep(0.12)
            closed = 0
            for client in clients:
                client.request("GET", "/api/health")
                answer = client.getresponse()
                answer.read()
                closed += answer.getheader("connection", "").lower() == "close"
            if not closed:
                return held_connections(workers, port)
        raise AssertionError(f"still asking clients to reconnect after {rounds} rounds")
    finally:
        for client in clients:
            client.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts the workers in /proc")
def test_two_workers_serve_the_library_loaded_before_the_fork_and_follow_its_changes(root: Path,
                                                                                      tmp_path: Path) -> None:
    library = shutil.copytree(root / "lib", tmp_path / "lib")
    with background_server(library, "--workers", "2", "--map-points", "4", timeout=120) as server:
        assert _eventually(lambda: len(_children(server.pid)) == 2)  # the first may answer before the second starts
        workers = _children(server.pid)
        first = _get(f"{server.url}/api/map")
        assert first["count"] == 4 and first["total"] == 12 and not first["partial"]
        track = first["ids"][0]  # type: ignore[index]
        similar = [_get(f"{server.url}/api/tracks/{track}/similar?k=3") for _ in range(6)]
        assert all(len(s["results"]) == 3 for s in similar)  # type: ignore[arg-type]
        assert all(s["results"] == similar[0]["results"] for s in similar)
        assert not _all_renamed(server.url, 1)
        _retitle(library, "renamed")  # the map's answer is cached per catalogue generation in each worker
        assert _eventually(lambda: _all_renamed(server.url))
        # A lost worker is replaced by a fork of the parent, whose caches still hold the old titles: the parent
        # checks the catalogue before it forks, so the new worker does not serve them.
        os.kill(workers[0], signal.SIGKILL)
        assert _eventually(lambda: len(set(_children(server.pid)) - set(workers)) == 1)
        assert _all_renamed(server.url, 12)
        workers = _children(server.pid)
        port = int(server.url.rsplit(":", 1)[1])
        mine, theirs = (port_sockets(pid, port, listening=True) for pid in workers)
        assert mine and theirs and not mine & theirs  # a listening socket a worker, not one shared
        assert min(_spread(port, workers, 16)) > 0  # 16 connections at once reach both workers
        for _ in range(2):  # the kernel places 40 connections 20 / 20 one time in eight; the workers even them out
            held = _balanced(port, workers, 40)
            assert sum(held) == 40 and max(held) - min(held) <= 1, held
    time.sleep(0.5)
    for pid in workers:  # stopping the server stops its workers
        assert not os.path.exists(f"/proc/{pid}") or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
