"""Run the server under uvicorn with the bind rules of :mod:`soundalike.server.security`; or in a child process on
a free loopback port (:func:`background_server`, for tests and benchmarks)."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .security import BindError, check_bind, is_loopback


def page_url(host: str, port: int, token: str | None = None) -> str:
    """The address to open in a browser (with the token, which the page then keeps and hides from the URL)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def check_port_free(host: str, port: int) -> None:
    """Raise :class:`BindError` with a short message when ``host:port`` cannot be bound (in use, no such address)."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BindError(f"cannot bind {host}:{port}: {exc.strerror or exc}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind(address)
        except OSError as exc:
            what = "in use (another server runs there? try --port)" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise BindError(f"cannot bind {host}:{port}: {what}") from None


def serve(library: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 8000, token: str | None = None,
          insecure: bool = False, cors_origins: Sequence[str] = (), max_upload_bytes: int = 50 << 20,
          public_url: str | None = None, map_points: int = 4000, concurrency: int = 0, workers: int = 1,
          log_level: str = "info", on_ready: Callable[[str], None] | None = None) -> None:
    """Serve ``library`` until interrupted from ``workers`` processes (:mod:`.prefork` when more than one), each
    computing ``concurrency`` API requests at once (0: the CPUs shared out among the workers); raises
    :class:`soundalike.server.security.BindError` for a non-loopback ``host`` without ``token`` (unless
    ``insecure``)."""
    check_bind(host, token, insecure)
    check_port_free(host, port)
    if workers > 1 and sys.platform == "win32":
        raise BindError("--workers above 1 needs a POSIX system (it forks the server)")
    import uvicorn

    from .app import create_app
    from .middleware import default_concurrency

    if concurrency <= 0:
        concurrency = max(1, default_concurrency() // max(1, workers))
    app = create_app(library, token=token, loopback_only=token is None and is_loopback(host),
                     cors_origins=cors_origins, max_upload_bytes=max_upload_bytes, public_url=public_url,
                     map_points=map_points, concurrency=concurrency)
    if workers > 1:
        from .prefork import serve_forked

        if on_ready is not None:
            on_ready(page_url(host, port, token))
        serve_forked(app, host=host, port=port, workers=workers, log_level=log_level)
        return
    if on_ready is not None:
        on_ready(page_url(host, port, token))
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=log_level == "debug",
                server_header=False, proxy_headers=False, timeout_graceful_shutdown=5)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_sockets(pid: int, port: int, *, listening: bool = False) -> set[str]:
    """The inodes of the sockets process ``pid`` holds on local ``port``: established connections, or with
    ``listening`` the sockets it listens on (Linux ``/proc``; empty elsewhere)."""
    return _socket_inodes(pid) & _port_inodes(port, listening)


def held_connections(pids: Sequence[int], port: int) -> list[int]:
    """How many established connections to local ``port`` each of ``pids`` holds: which server worker accepted
    the clients' keep-alive connections (the kernel's table read once for all of them)."""
    on_port = _port_inodes(port, listening=False)
    return [len(_socket_inodes(pid) & on_port) for pid in pids]


def _port_inodes(port: int, listening: bool) -> set[str]:
    """Inodes of the TCP sockets on local ``port`` that listen, or else are established (``/proc/net/tcp*``)."""
    wanted = "0A" if listening else "01"  # TCP_LISTEN, TCP_ESTABLISHED
    on_port: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == wanted and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    on_port.add(fields[9])  # the socket's inode
    return on_port


def _socket_inodes(pid: int) -> set[str]:
    """Inodes of the sockets among process ``pid``'s open files (``/proc/PID/fd``)."""
    held = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    held.add(target[8:-1])
    return held


@dataclass(frozen=True)
class BackgroundServer:
    """A server started by :func:`background_server`: its base URL and process id."""

    url: str
    pid: int


@contextlib.contextmanager
def background_server(library: str | os.PathLike[str], *args: str, timeout: float = 90.0,
                      env: dict[str, str] | None = None) -> Iterator[BackgroundServer]:
    """``soundalike serve --library LIBRARY ARGS`` on a free loopback port in a child process (with ``env`` added to
    this process's environment), yielded once ``/api/health`` answers; the process is stopped afterwards."""
    port = free_port()
    cmd = [sys.executable, "-m", "soundalike", "serve", "--library", str(library), "--port", str(port), *args]
    url = f"http://127.0.0.1:{port}"
    # Output to a file, not a pipe: a pipe nobody reads would block a chatty server.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=None if env is None else {**os.environ, **env})
        try:
            deadline = time.monotonic() + timeout
            while not _healthy(url):
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"soundalike serve exited with {proc.returncode}:\n"
                                       f"{log.read().decode(errors='replace')}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"soundalike serve did not answer within {timeout:.0f} s")
                time.sleep(0.2)
            yield BackgroundServer(url, proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False
