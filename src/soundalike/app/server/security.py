"""Who may talk to the server: loopback by default, a bearer token for anything wider.

- ``soundalike serve`` binds 127.0.0.1. Binding any other address needs ``--token`` (or an explicit
  ``--insecure``): :func:`check_bind`.
- With a token, every data endpoint wants ``Authorization: Bearer TOKEN``, ``?token=TOKEN`` (for ``<audio src>``
  and ``<img src>``, which cannot send headers) or, on the Subsonic endpoints, ``apiKey=TOKEN`` or any user name
  with the token as password (:mod:`.subsonic_protocol`). Tokens are compared in constant time.
- Without a token, the server answers only requests whose ``Host`` is a loopback name: a web page elsewhere
  cannot reach it through DNS rebinding (a hostile domain that resolves to 127.0.0.1).
"""

from __future__ import annotations

import hmac
import ipaddress

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


class BindError(ValueError):
    """A bind address and token combination we refuse."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is only reachable from this machine."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def check_bind(host: str, token: str | None, insecure: bool = False) -> None:
    """Refuse a non-loopback bind without a token unless ``insecure`` says the user means it."""
    if is_loopback(host) or token or insecure:
        return
    raise BindError(f"refusing to serve on {host} without a token: anyone who can reach this machine could read "
                    "your library. Pass --token TOKEN (or set SOUNDALIKE_TOKEN), or --insecure if you mean it")


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented token with the configured one."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape"))


def loopback_hosts(port: int | None = None) -> list[str]:
    """``Host`` header values a loopback-only server accepts (with and without the port)."""
    hosts = list(LOOPBACK_NAMES)
    if port is not None:
        hosts += [f"{h}:{port}" for h in ("localhost", "127.0.0.1", "[::1]")]
    return hosts
