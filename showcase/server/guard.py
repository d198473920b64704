"""Cutting off clients that hold connections open without using them.

uvicorn times out a connection idle between requests (``timeout_keep_alive``), but not
one that sends a request's head a byte at a time: 400 connections each sending a header
line every 5 s stayed open for good, each holding a socket and a protocol. So the server's
HTTP protocol is wrapped (an asyncio protocol around uvicorn's, seeing only the asyncio
protocol interface):

- a new connection must finish its first request's head (the blank line after the
  headers) within ``header_timeout`` seconds, and every later request on it its head
  within ``header_timeout`` seconds of its first byte, or it is closed;
- one address may hold at most ``per_address`` connections at once; a connection past
  that is closed as it opens.

Where each request's head starts and ends is read by a parser of the guard's own
(httptools, the parser uvicorn itself uses, through its public interface): only the
parser knows where a body ends and the next head begins, chunked bodies and pipelined
requests included. It costs a second parse of each head (docs/performance.md); uvicorn's
protocol is not looked into.

Each rule that triggers says so in the log, at most once per address every
``NOTICE_SECONDS`` (with how many it closed meanwhile), so an attack cannot flood the log.

Not covered: a body sent slowly (uvicorn bounds none); behind a reverse proxy every
client has the proxy's address, so there the proxy applies these limits
(docs/security.md) and ``per_address`` is raised or set to 0.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

import httptools

log = logging.getLogger(__name__)

NOTICE_SECONDS = 10.0
SWEEP_EVERY = 1024  # connections between two sweeps of addresses whose connections closed


@dataclass
class Guard:
    """One server's limits, and the connections open per address."""

    header_timeout: float = 10.0  # 0: no limit
    per_address: int = 200  # 0: no limit
    open: dict[str, set[asyncio.BaseTransport]] = field(default_factory=dict)
    closed: dict[tuple[str, str], int] = field(default_factory=dict)  # since the last notice
    noticed: dict[tuple[str, str], float] = field(default_factory=dict)
    accepted: int = 0

    def wrap(self, inner: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
        """A protocol class for uvicorn's ``http`` setting: ``inner`` under this guard."""
        return type("GuardedProtocol", (GuardedProtocol,), {"guard": self, "inner": inner})

    def admit(self, address: str, transport: asyncio.BaseTransport) -> bool:
        """Whether a connection from ``address`` may open; it is counted if so."""
        self.accepted += 1
        if self.accepted % SWEEP_EVERY == 0:
            self._sweep()
        mine = self.open.setdefault(address, set())
        if self.per_address and len(mine) >= self.per_address:
            # Connections closed since are still in the set: count only the live ones.
            mine.difference_update([t for t in mine if t.is_closing()])
            if len(mine) >= self.per_address:
                self.notice("too many", address, f"more than {self.per_address} connections "
                            "open from one address")
                return False
        mine.add(transport)
        return True

    def forget(self, address: str, transport: asyncio.BaseTransport) -> None:
        mine = self.open.get(address)
        if mine is not None:
            mine.discard(transport)
            if not mine:
                del self.open[address]

    def notice(self, kind: str, address: str, what: str) -> None:
        """Log a connection closed for ``what``, once per address and kind a while."""
        key = (kind, address)
        self.closed[key] = self.closed.get(key, 0) + 1
        now = time.monotonic()
        if now - self.noticed.get(key, -NOTICE_SECONDS) >= NOTICE_SECONDS:
            count = self.closed.pop(key)
            self.noticed[key] = now
            log.warning("closed %d connection%s from %s: %s", count, "" if count == 1 else "s",
                        address, what)

    def _sweep(self) -> None:
        # A protocol upgraded to WebSocket is replaced on its transport, so its end is not
        # seen here: such transports are dropped once closed.
        for address in list(self.open):
            mine = self.open[address]
            mine.difference_update([t for t in mine if t.is_closing()])
            if not mine:
                del self.open[address]


class GuardedProtocol(asyncio.Protocol):
    """uvicorn's HTTP protocol (``inner``) with the guard's limits around it."""

    guard: ClassVar[Guard]
    inner: ClassVar[type[asyncio.Protocol]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.protocol = self.inner(*args, **kwargs)  # as uvicorn would have made it
        self.transport: asyncio.Transport | None = None
        self.address = ""
        self.timer: asyncio.TimerHandle | None = None
        # Reads where each request's head begins and ends (on_message_begin and
        # on_headers_complete below); None once the connection is upgraded or not HTTP.
        self.parser: httptools.HttpRequestParser | None = (
            httptools.HttpRequestParser(self) if self.guard.header_timeout else None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have a Transport's methods without subclassing it
        transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.address = str(peer[0]) if isinstance(peer, tuple) and peer else "local"
        if not self.guard.admit(self.address, transport):
            transport.abort()
            return
        self.transport = transport
        self._start_clock()  # a connection that sends nothing is cut off like a slow one
        self.protocol.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return  # refused
        if self.parser is not None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                self.parser = None  # a WebSocket from here on: uvicorn hands it over
            except httptools.HttpParserError:
                self.parser = None  # uvicorn answers 400 and closes the connection
        self.protocol.data_received(data)

    # httptools calls these while it reads the bytes fed to it
    def on_message_begin(self) -> None:
        self._start_clock()

    def on_headers_complete(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _start_clock(self) -> None:
        if self.guard.header_timeout and self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(
                self.guard.header_timeout, self._too_slow)

    def eof_received(self) -> bool | None:
        return self.protocol.eof_received() if self.transport is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is None:
            return
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.guard.forget(self.address, self.transport)
        self.protocol.connection_lost(exc)

    def pause_writing(self) -> None:
        self.protocol.pause_writing()

    def resume_writing(self) -> None:
        self.protocol.resume_writing()

    def _too_slow(self) -> None:
        self.timer = None
        self.guard.notice("slow", self.address, "no complete request head within "
                          f"{self.guard.header_timeout:g} s")
        if self.transport is not None:
            self.transport.abort()
