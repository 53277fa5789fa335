"""The load generators' lean HTTP/1.1 client (benchmarks/http1.py) against a small real server on loopback."""

from __future__ import annotations

import asyncio
import json

import pytest
from http1 import Connection


async def _serve(answers: list[bytes], seen: list[bytes], opened: list[int]) -> asyncio.AbstractServer:
    """A server that reads whole requests and sends ``answers`` in turn, closing after any that says close."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        opened.append(1)
        while answers:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")]
            seen.append(head + (await reader.readexactly(length[0]) if length else b""))
            answer = answers.pop(0)
            writer.write(answer)
            await writer.drain()
            if b"Connection: close" in answer:
                break
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def test_lengths_chunks_posts_and_a_closed_connection_reopened() -> None:
    answers = [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
               b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\nT: 1\r\n\r\n",
               b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope",
               b"HTTP/1.1 206 Partial Content\r\ncontent-length: 2\r\n\r\nok"]
    seen: list[bytes] = []
    opened: list[int] = []

    async def run() -> list[tuple[int, bytes]]:
        server = await _serve(answers, seen, opened)
        port = server.sockets[0].getsockname()[1]
        connection = Connection(f"http://127.0.0.1:{port}")
        got = []
        for method, body in (("GET", None), ("GET", None), ("POST", {"k": 10}), ("GET", None)):
            answer = await connection.request(method, "/api/x?q=1", {"Range": "bytes=0-1"}, body)
            got.append((answer.status_code, answer.content))
        await connection.close()
        server.close()
        await server.wait_closed()
        return got

    got = asyncio.run(run())
    assert got == [(200, b"hello"), (200, b"abcde"), (404, b"nope"), (206, b"ok")]
    assert len(opened) == 2  # the server's "Connection: close" made the client open a second connection
    assert seen[0].startswith(b"GET /api/x?q=1 HTTP/1.1\r\nHost: 127.0.0.1:") and b"Range: bytes=0-1\r\n" in seen[0]
    post = seen[2]
    assert post.startswith(b"POST ") and b"Content-Type: application/json" in post
    assert json.loads(post.split(b"\r\n\r\n", 1)[1]) == {"k": 10}


def test_bodiless_answers_header_case_idle_closes_eof_bodies_and_timeouts() -> None:
    answers = [b"HTTP/1.1 204 No Content\r\n\r\n",  # no length, keep-alive: no body, no wait
               b"HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
               b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, Close\r\n\r\nok",
               b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none",  # then the server drops the idle connection
               b"HTTP/1.0 200 OK\r\n\r\nto the end"]  # no length: read to the end of the connection
    seen: list[bytes] = []
    opened: list[int] = []

    async def run() -> list[tuple[int, bytes]]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            opened.append(1)
            while answers:
                try:
                    seen.append(await reader.readuntil(b"\r\n\r\n"))
                except asyncio.IncompleteReadError:
                    break
                answer = answers.pop(0)
                writer.write(answer)
                await writer.drain()
                if b"close" in answer.lower() or b"one" in answer or answer.startswith(b"HTTP/1.0"):
                    break
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        connection = Connection(f"http://127.0.0.1:{port}/base/")
        got = []
        for _ in range(5):
            answer = await connection.request("GET", "/x")
            got.append((answer.status_code, answer.content))
            await asyncio.sleep(0.05)  # the server's close reaches the client before its next request
        server.close()
        await server.wait_closed()
        return got

    got = asyncio.run(run())
    assert got == [(204, b""), (200, b"hi"), (200, b"ok"), (200, b"one"), (200, b"to the end")]
    assert len(opened) == 3 and all(h.startswith(b"GET /base/x HTTP/1.1\r\n") for h in seen)

    async def silent() -> None:  # a server that never answers: the request fails after its timeout
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(5)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        connection = Connection(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", timeout=0.2)
        try:
            with pytest.raises(TimeoutError):
                await connection.request("GET", "/")
            assert connection._writer is None  # closed: the next request opens a new connection
        finally:
            server.close()

    asyncio.run(silent())
    with pytest.raises(ValueError, match="only http://"):
        Connection("https://example.org")
