"""``soundalike serve --workers N``: one server process per CPU, forked after the library is loaded.

One Python process computes one request at a time (the GIL), so on a large catalogue a single server saturates one
core while the other waits. gunicorn runs N uvicorn workers on one listening socket; with the app created and warmed
before it forks them (:meth:`~.app.Server.prepare_to_fork`), the workers share the index, the labels and the map
layout copy-on-write instead of each loading its own (uvicorn's own ``--workers`` spawns fresh processes that would).
Each worker notices the others' catalogue writes through SQLite (:meth:`~.state.LibraryState.generation`)."""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
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


def serve_forked(app: FastAPI, *, host: str, port: int, workers: int, log_level: str = "info") -> None:
    """Serve ``app`` from ``workers`` forked processes on ``host:port`` until interrupted (a lost worker is
    replaced); the app's server is warmed and its connections closed first (:meth:`~.app.Server.prepare_to_fork`)."""
    started = time.monotonic()
    app.state.server.prepare_to_fork()
    log.warning("library loaded in %.1f s; starting %d workers", time.monotonic() - started, workers)
    gc.collect()
    gc.freeze()  # the loaded objects leave the collector's lists: its passes would copy their pages into every worker
    _release_freed_memory()
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    state = app.state.server.state

    def pre_fork(arbiter: Any, worker: Any) -> None:  # in this process, before each worker (also a replacement
        state.generation(force=True)  # of a lost one, maybe hours later): what it inherits is marked if outdated

    def post_fork(arbiter: Any, worker: Any) -> None:  # in the worker
        state.after_fork()

    _Prefork(app, {
        "bind": [bind], "workers": workers, "worker_class": f"{__name__}.Worker", "preload_app": True,
        "pre_fork": pre_fork, "post_fork": post_fork, "timeout": 120, "graceful_timeout": 5, "keepalive": 5,
        "loglevel": log_level, "proc_name": "soundalike", "accesslog": "-" if log_level == "debug" else None,
        "control_socket_disable": True,
    }).run()
