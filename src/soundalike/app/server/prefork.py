"""``soundalike serve --workers N``: one server process per CPU, forked after the library is loaded.

One Python process computes one request at a time (the GIL), so on a large catalogue a single server saturates one
core while the other waits. gunicorn runs N uvicorn workers; with the app created and warmed before it forks them
(:meth:`~.app.Server.prepare_to_fork`), the workers share the index, the labels and the map layout copy-on-write
instead of each loading its own (uvicorn's own ``--workers`` spawns fresh processes that would). Each worker
notices the others' catalogue writes through SQLite (:meth:`~.state.LibraryState.generation`).

On Linux each worker listens on a socket of its own (``SO_REUSEPORT``) and the kernel spreads new connections over
them by a hash of their addresses. On one shared socket, the worker that happens to be waiting accepts every
connection queued at that moment, and a keep-alive connection stays with its worker: measured at 1 M tracks, the 8
benchmark clients' connections sat 8 and 0 or 7 and 1 on two workers (docs/scaling.md), and such a round ran at
one worker's pace. gunicorn has no such mode, so its own listener is a unix socket nobody connects to, kept for
its process management, and this process holds the TCP port (bound, not listening) while workers come and go."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import socket
import sys
import tempfile
import time
from typing import Any

from fastapi import FastAPI
from gunicorn.app.base import BaseApplication
from uvicorn_worker import UvicornWorker

log = logging.getLogger(__name__)


class Worker(UvicornWorker):
    """A gunicorn worker running uvicorn with the settings of a single-process ``soundalike serve``."""

    CONFIG_KWARGS: dict[str, Any] = {"loop": "auto", "http": "auto", "server_header": False, "proxy_headers": False,
                                     "timeout_graceful_shutdown": 5}


class _Prefork(BaseApplication):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn's embedding interface: the settings given, the app object already made."""

    def __init__(self, app: FastAPI, settings: dict[str, Any]) -> None:
        self.app, self.settings = app, settings
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.settings.items():
            if key in self.cfg.settings:  # control_socket_disable exists from gunicorn 24 on
                self.cfg.set(key, value)

    def load(self) -> FastAPI:
        return self.app


def _release_freed_memory() -> None:
    """Give the heap's free pages back to the kernel (glibc's ``malloc_trim``, which no Python library exposes), so
    the loading's temporaries are not copied into each worker's picture of memory."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):  # not glibc
            ctypes.CDLL(None).malloc_trim(0)


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with ``SO_REUSEPORT`` but not listening: it keeps other programs off the port
    while workers open and close listeners of their own on it (connections only go to listening sockets). The
    address family is the resolver's first for ``host``, and an IPv6 socket keeps the system's dual-stack default,
    as uvicorn's own does."""
    family, _, _, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                  flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def own_listener(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening socket of one worker's own on ``host:port`` (``SO_REUSEPORT``: one of the group the kernel
    spreads new connections over)."""
    sock = reserve_port(host, port)
    sock.listen(backlog)
    return sock


def serve_forked(app: FastAPI, *, host: str, port: int, workers: int, log_level: str = "info") -> None:
    """Serve ``app`` from ``workers`` forked processes on ``host:port`` until interrupted (a lost worker is
    replaced); the app's server is warmed and its connections closed first (:meth:`~.app.Server.prepare_to_fork`)."""
    per_worker = sys.platform.startswith("linux")  # BSD and macOS do not spread connections over such sockets
    with contextlib.ExitStack() as cleanup:
        reserved = cleanup.enter_context(reserve_port(host, port)) if per_worker else None  # a port in use fails
        started = time.monotonic()  # before the loading
        app.state.server.prepare_to_fork()
        log.warning("library loaded in %.1f s; starting %d workers", time.monotonic() - started, workers)
        gc.collect()
        gc.freeze()  # the loaded objects leave the collector's lists, whose passes would copy their pages
        _release_freed_memory()
        state = app.state.server.state

        def pre_fork(arbiter: Any, worker: Any) -> None:  # in this process, before each worker (also a replacement
            state.generation(force=True)  # of a lost one, maybe hours later): what it inherits is marked if outdated

        def post_fork(arbiter: Any, worker: Any) -> None:  # in the worker
            if reserved is not None:
                listener = own_listener(host, reserved.getsockname()[1])
                for inherited in worker.sockets:  # gunicorn's unix socket (it unlinks the file in its parent only)
                    inherited.close()
                reserved.close()
                worker.sockets = [listener]
            state.after_fork()

        bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if reserved is not None:
            log.warning("listening on %s, a socket a worker (gunicorn's unix socket: its process management)", bind)
            bind = "unix:" + os.path.join(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="soundalike-")),
                                          "gunicorn.sock")
        _run_gunicorn(app, bind, workers, pre_fork, post_fork, log_level)


def _run_gunicorn(app: FastAPI, bind: str, workers: int, pre_fork: Any, post_fork: Any, log_level: str) -> None:
    """gunicorn's arbiter running ``workers`` :class:`Worker` processes of ``app`` on ``bind`` until interrupted."""
    _Prefork(app, {
        "bind": [bind], "workers": workers, "worker_class": f"{__name__}.Worker", "preload_app": True,
        "pre_fork": pre_fork, "post_fork": post_fork, "timeout": 120, "graceful_timeout": 5, "keepalive": 5,
        "loglevel": log_level, "proc_name": "soundalike", "accesslog": "-" if log_level == "debug" else None,
        "control_socket_disable": True,
    }).run()
