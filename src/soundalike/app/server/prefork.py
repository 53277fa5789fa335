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
from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import FastAPI
from gunicorn.app.base import BaseApplication
from uvicorn_worker import UvicornWorker

from .balance import Balancer, ConnectionTable

log = logging.getLogger(__name__)


class _TickingServer(uvicorn.Server):
    """uvicorn's server, calling ``on_tick`` on each of its ticks (every 0.1 s)."""

    def __init__(self, config: uvicorn.Config, on_tick: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._on_tick = on_tick

    async def on_tick(self, counter: int) -> bool:
        """The balancer's count published, then uvicorn's own tick."""
        if self._on_tick is not None:
            self._on_tick()
        return await super().on_tick(counter)


class Worker(UvicornWorker):
    """A gunicorn worker running uvicorn with the settings of a single-process ``soundalike serve``; with a
    :class:`~.balance.Balancer` as its app, it tells it the worker's slot and connections."""

    CONFIG_KWARGS: dict[str, Any] = {"loop": "auto", "http": "auto", "server_header": False, "proxy_headers": False,
                                     "timeout_graceful_shutdown": 5}
    balance_slot: int | None = None  # set by serve_forked's pre_fork, in the parent

    async def _serve(self) -> None:
        """uvicorn_worker's ``_serve``, and the balancer attached to the uvicorn server's live connections."""
        from gunicorn.arbiter import Arbiter

        self.config.app = self.wsgi
        slot = self.balance_slot
        balancer = self.wsgi if isinstance(self.wsgi, Balancer) and slot is not None else None
        server = _TickingServer(config=self.config, on_tick=balancer.publish if balancer else None)
        if balancer is not None and slot is not None:
            balancer.attach(slot, server.server_state.connections)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)


class _Prefork(BaseApplication):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn's embedding interface: the settings given, the app object already made."""

    def __init__(self, app: Any, settings: dict[str, Any]) -> None:
        self.app, self.settings = app, settings
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.settings.items():
            if key in self.cfg.settings:  # control_socket_disable exists from gunicorn 24 on
                self.cfg.set(key, value)

    def load(self) -> Any:
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

        table = ConnectionTable(2 * workers)  # room for replacements while a lost worker's slot is released
        balanced = Balancer(app, table, workers)

        def pre_fork(arbiter: Any, worker: Any) -> None:  # in this process, before each worker (also a replacement
            state.generation(force=True)  # of a lost one, maybe hours later): what it inherits is marked if outdated
            worker.balance_slot = table.claim({w.balance_slot for w in arbiter.WORKERS.values()
                                               if getattr(w, "balance_slot", None) is not None})

        def child_exit(arbiter: Any, worker: Any) -> None:  # in this process, when a worker is gone
            if getattr(worker, "balance_slot", None) is not None:
                table.release(worker.balance_slot)

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
        _run_gunicorn(balanced, bind, workers, {"pre_fork": pre_fork, "post_fork": post_fork,
                                                 "child_exit": child_exit}, log_level)


def _run_gunicorn(app: Any, bind: str, workers: int, hooks: dict[str, Any], log_level: str) -> None:
    """gunicorn's arbiter running ``workers`` :class:`Worker` processes of ``app`` (an ASGI app) on ``bind`` until
    interrupted, with gunicorn's server ``hooks``."""
    _Prefork(app, {
        "bind": [bind], "workers": workers, "worker_class": f"{__name__}.Worker", "preload_app": True,
        **hooks, "timeout": 120, "graceful_timeout": 5, "keepalive": 5,
        "loglevel": log_level, "proc_name": "soundalike", "accesslog": "-" if log_level == "debug" else None,
        "control_socket_disable": True,
    }).run()
