"""The connection table and balancer of ``serve --workers N`` (the forked server is tested in test_prefork.py)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from soundalike.app.server.balance import CLOSE, Balancer, ConnectionTable


def test_a_worker_above_its_share_is_over() -> None:
    table = ConnectionTable(4)
    assert table.claim(set()) == 0 and table.claim({0}) == 1
    assert table.over_share(1, 2, workers=2)  # 2 against none: the share of 2 is 1
    assert not table.over_share(0, 2, workers=2) and not table.over_share(1, 2, workers=2)  # 2 and 2: even
    assert table.over_share(0, 6, workers=2)  # 6 against 2: the share of 8 is 4
    assert not table.over_share(1, 3, workers=2)  # 3 against 6
    assert table.over_share(0, 5, workers=2)  # 5 against 3: still above 4
    assert not table.over_share(0, 4, workers=2)  # 4 and 3 of 7: the share is 4
    table.release(1)  # a lost worker's connections went with it
    assert list(table.counts) == [4, 0, 0, 0]
    with pytest.raises(RuntimeError, match="all 4 connection slots"):
        table.claim({0, 1, 2, 3})


def test_the_table_is_shared_with_forked_workers() -> None:
    table = ConnectionTable(2)
    pid = os.fork()
    if pid == 0:  # the child publishes its count and leaves at once
        table.over_share(1, 7, workers=2)
        os._exit(0)
    os.waitpid(pid, 0)
    assert list(table.counts) == [0, 7]


def _answer(balancer: Balancer, kind: str = "http") -> list[Any]:
    sent: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(message: Any) -> None:
        sent.append(message)

    balancer.app = app
    asyncio.run(balancer({"type": kind}, lambda: None, send))  # type: ignore[arg-type, return-value]
    return list(sent[0]["headers"])


class _Transport:
    def __init__(self) -> None:
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing


class _Connection:
    def __init__(self) -> None:
        self.transport = _Transport()


def test_the_balancer_asks_for_a_reconnect_only_above_the_share_and_one_a_tick() -> None:
    table = ConnectionTable(2)
    balancer = Balancer(lambda *a: None, table, workers=2)  # type: ignore[arg-type, return-value]
    assert CLOSE not in _answer(balancer)  # not attached (one process, or before uvicorn starts): passes through
    held = [_Connection() for _ in range(4)]
    balancer.attach(0, held)
    table.counts[1] = 1
    assert CLOSE in _answer(balancer)  # 4 against 1
    assert list(table.counts) == [4, 1]
    held[0].transport.closing = True  # closed after that answer; its connection_lost has not run yet
    assert balancer.held() == 3
    assert CLOSE not in _answer(balancer)  # 3 against 1, but one was closed since the last tick
    balancer.publish()  # the server's tick
    assert table.counts[0] == 3
    assert CLOSE in _answer(balancer)
    held[1].transport.closing = True
    balancer.publish()
    assert _answer(balancer) == [(b"content-type", b"text/plain")]  # 2 and 1 of 3: within the share
    assert CLOSE not in _answer(balancer, "websocket")  # only HTTP answers: passed through
