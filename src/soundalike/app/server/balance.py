"""Even out keep-alive connections over the workers of ``soundalike serve --workers N``.

Each worker listens on a socket of its own and the kernel places each new connection on one of them by a hash of
its addresses (:mod:`.prefork`): a few long-lived keep-alive connections often land unevenly. Measured at 1 M
tracks with 8 clients on 2 workers, the rounds that drew 6 and 2 (about a third of them) ran at 193–296 requests
a second with ``health``'s p99 at 69–120 ms, the even ones at 290–336 and 49–65 ms (docs/scaling.md): the busy
worker's clients wait twice as long while the other core idles.

So each worker publishes how many connections it holds in a table in memory shared by the forked workers (one
slot a worker; written as it answers and on the server's tick, every 0.1 s), and a worker holding more than its
fair share — ``ceil(all connections / workers)`` — answers with ``Connection: close``: that client reconnects
and the kernel places it again, until the shares are even (no worker within its share closes anything). At most
one connection a tick is closed: a burst of new connections reaches every worker before the others' counts do,
and each would otherwise close most of its own. A reconnect on loopback costs a handshake; an even split saves a
queue.
"""

from __future__ import annotations

import math
import mmap
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CLOSE = (b"connection", b"close")


class ConnectionTable:
    """How many connections each worker holds: ``slots`` counters in an anonymous shared mapping made before the
    workers are forked, so every worker reads the others' counts without a message."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("a connection table needs at least one slot")
        self._map = mmap.mmap(-1, 8 * slots)  # MAP_SHARED | MAP_ANONYMOUS: shared with forked children
        self.counts = memoryview(self._map).cast("q")

    def __len__(self) -> int:
        return len(self.counts)

    def claim(self, taken: set[int]) -> int:
        """A slot none of ``taken`` holds, its count zeroed (in the parent, before a worker is forked)."""
        for slot in range(len(self.counts)):
            if slot not in taken:
                self.counts[slot] = 0
                return slot
        raise RuntimeError(f"all {len(self.counts)} connection slots are taken")

    def release(self, slot: int) -> None:
        """Zero a gone worker's slot (its connections went with it)."""
        self.counts[slot] = 0

    def over_share(self, slot: int, held: int, workers: int) -> bool:
        """Publish ``held`` as this slot's count; whether it exceeds the fair share of ``workers`` workers."""
        self.counts[slot] = held
        total = sum(self.counts)
        return held > math.ceil(total / max(1, workers))


class Balancer:
    """An ASGI wrapper that asks a client to reconnect (``Connection: close``) while its worker holds more than its
    share of the connections (see the module doc). Inert until :meth:`attach` gives it its worker's slot and
    connections (the single-process server never does)."""

    def __init__(self, app: ASGIApp, table: ConnectionTable, workers: int) -> None:
        self.app, self.table, self.workers = app, table, workers
        self.slot: int | None = None
        self.connections: Collection[Any] = ()
        self.allowance = 1  # connections it may still close before the next tick

    def attach(self, slot: int, connections: Collection[Any]) -> None:
        """Start balancing in a worker: its table ``slot`` and the live set of its connections (uvicorn's protocol
        objects, each with its ``transport``)."""
        self.slot, self.connections = slot, connections

    def held(self) -> int:
        """Connections this worker holds and keeps: those it was asked to close but has not yet dropped (a burst of
        answers runs before their ``connection_lost``) are not counted, or it would close them all."""
        return sum(1 for c in self.connections
                   if getattr(c, "transport", None) is None or not c.transport.is_closing())

    def publish(self) -> None:
        """Write this worker's count into the table and allow one more close (the server's tick, every 0.1 s:
        workers that answer nothing stay current)."""
        if self.slot is not None:
            self.table.counts[self.slot] = self.held()
        self.allowance = 1

    def should_close(self) -> bool:
        """Whether to close this answer's connection: this worker holds more than its share now and has not closed
        one since the last tick (``len`` first: it counts every connection, so at or under the share it settles
        the question without a pass over them)."""
        assert self.slot is not None
        if self.allowance <= 0 or not self.table.over_share(self.slot, len(self.connections), self.workers) or \
                not self.table.over_share(self.slot, self.held(), self.workers):
            return False
        self.allowance -= 1
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add ``Connection: close`` to the answer when this worker holds too many."""
        if scope["type"] != "http" or self.slot is None:
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and self.should_close():
                message["headers"] = [*message.get("headers", ()), CLOSE]
            await send(message)

        assert self.slot is not None
        self.table.counts[self.slot] = len(self.connections)  # as the request comes: the others see it sooner
        await self.app(scope, receive, sending)
