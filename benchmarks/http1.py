"""A lean HTTP/1.1 keep-alive client for the load generators (``server.py``, ``scale.py``).

Written here rather than taken from httpx because the clients run on the server's own cores: httpx's async client
spent 1.1-1.3 ms of CPU a request at 1 M tracks (``benchmarks/results/scale-f3c22bf.json``,
``client_cpu_ms_per_request``), a quarter of the server's, so the measured latencies carried the load generator's
own queueing. This one does only what the benchmarks send: GET and JSON POST on one connection per client,
``Content-Length`` or chunked answers, reconnecting when the server answers ``Connection: close`` (the workers'
connection balancer does). It sends ``Accept-Encoding: gzip`` as httpx and browsers do, so the server compresses
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
    """One keep-alive connection to ``url``'s host, opened on first use and again after the server closes it."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self._base = f"Host: {parts.netloc}\r\nAccept-Encoding: gzip, deflate\r\n"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                      body: Any = None) -> Answer:
        """Send one request (``body``: sent as JSON) and read its whole answer."""
        lines = [f"{method} {path} HTTP/1.1\r\n", self._base]
        lines += [f"{k}: {v}\r\n" for k, v in (headers or {}).items()]
        data = b""
        if body is not None:
            data = json.dumps(body).encode()
            lines.append(f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n")
        head = ("".join(lines) + "\r\n").encode("latin-1")
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        self._writer.write(head + data)
        try:
            return await self._answer(self._reader)
        except BaseException:
            await self.close()
            raise

    async def _answer(self, reader: asyncio.StreamReader) -> Answer:
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, _, rest = head.decode("latin-1").partition("\r\n")
        status = int(status_line.split(" ", 2)[1])
        length, chunked, close = -1, False, False
        for line in rest.split("\r\n"):
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif name == "connection":
                close = value.strip().lower() == "close"
        if chunked:
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
