"""A lean HTTP/1.1 keep-alive client for the load generators (``server.py``, ``scale.py``).

Written here rather than taken from httpx because the clients run on the server's own cores: httpx's async client
spent 1.1-1.3 ms of CPU a request at 1 M tracks (``benchmarks/results/scale-f3c22bf.json``,
``client_cpu_ms_per_request``), a quarter of the server's, so the measured latencies carried the load generator's
own queueing. This one does only what the benchmarks send: GET and JSON POST over ``http://`` on one connection
per client, ``Content-Length``, chunked and body-less (HEAD, 1xx, 204, 304) answers, reconnecting when the server
answers ``Connection: close`` (the workers' connection balancer does) or has closed an idle connection.
It sends ``Accept-Encoding: gzip`` as httpx and browsers do, so the server compresses
what it would compress for them, and does not decompress (the client's work, not the server's).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Answer:
    """An HTTP answer: status code and the body as sent (still compressed if the server compressed it)."""

    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        """The body as text (for error messages)."""
        return self.content.decode("utf-8", "replace")


class Connection:
    """One keep-alive connection to ``url``'s host (``http://`` only), opened on first use and again after the
    server closes it; a request that takes longer than ``timeout`` seconds fails (and closes the connection)."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise ValueError(f"{url}: only http:// URLs (loopback benchmarks)")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self._base = f"Host: {parts.netloc}\r\nAccept-Encoding: gzip, deflate\r\n"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                      body: Any = None) -> Answer:
        """Send one request (``body``: sent as JSON) and read its whole answer."""
        lines = [f"{method} {self.prefix}{path} HTTP/1.1\r\n", self._base]
        lines += [f"{k}: {v}\r\n" for k, v in (headers or {}).items()]
        data = b""
        if body is not None:
            data = json.dumps(body).encode()
            lines.append(f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n")
        head = ("".join(lines) + "\r\n").encode("latin-1")
        try:
            async with asyncio.timeout(self.timeout):
                if self._reader is not None and self._reader.at_eof():  # closed by the server while idle
                    await self.close()
                if self._writer is None:
                    self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
                assert self._reader is not None
                self._writer.write(head + data)
                return await self._answer(self._reader, method)
        except BaseException:
            await self.close()
            raise

    async def _answer(self, reader: asyncio.StreamReader, method: str) -> Answer:
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, _, rest = head.decode("latin-1").partition("\r\n")
        version, status_text = status_line.split(" ", 2)[:2]
        status = int(status_text)
        length, chunked, close = -1, False, version == "HTTP/1.0"
        for line in rest.split("\r\n"):
            name, _, value = line.partition(":")
            name, tokens = name.strip().lower(), [t.strip().lower() for t in value.split(",")]
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in tokens
            elif name == "connection":
                close = "close" in tokens or (close and "keep-alive" not in tokens)
        if method == "HEAD" or status < 200 or status in (204, 304):  # no body, whatever the headers say
            content = b""
        elif chunked:
            parts = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                parts.append((await reader.readexactly(size + 2))[:-2])
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, up to the empty line
                pass
            content = b"".join(parts)
        elif length >= 0:
            content = await reader.readexactly(length)
        else:  # no length: the body runs to the end of the connection
            content, close = await reader.read(), True
        if close:
            await self.close()
        return Answer(status, content)

    async def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
