"""Run the server under uvicorn with the bind rules of :mod:`soundalike.server.security`."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable, Sequence

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
          log_level: str = "info", on_ready: Callable[[str], None] | None = None) -> None:
    """Serve ``library`` until interrupted; raises :class:`soundalike.server.security.BindError` for a non-loopback
    ``host`` without ``token`` (unless ``insecure``)."""
    check_bind(host, token, insecure)
    check_port_free(host, port)
    import uvicorn

    from .app import create_app

    app = create_app(library, token=token, loopback_only=token is None and is_loopback(host),
                     cors_origins=cors_origins, max_upload_bytes=max_upload_bytes)
    if on_ready is not None:
        on_ready(page_url(host, port, token))
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=log_level == "debug",
                server_header=False, proxy_headers=False, timeout_graceful_shutdown=5)
