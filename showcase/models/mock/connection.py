"""The mock's HTTP/1.1 on asyncio streams: byte-exact writes, keep-alive, a real reset."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass
from http import HTTPStatus

import orjson

from showcase.models.mock.config import KEEPALIVE_IDLE_S, MAX_BODY, MAX_HEAD


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ClientGone(Exception):
    """The client closed its side of the connection while an answer was under way."""


@dataclass(slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    keep_alive: bool
    body: bytes = b""


def parse_head(head: bytes) -> Request:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError(400, "malformed request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise HttpError(400, f"malformed header line {line[:80]!r}")
        key, value = name.lower(), value.strip()
        if key in headers and key == "content-length" and headers[key] != value:
            raise HttpError(400, "conflicting Content-Length headers")
        headers[key] = f"{headers[key]}, {value}" if key in headers and key != "content-length" \
            else value
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    keep_alive = "close" not in tokens if parts[2] == "HTTP/1.1" else "keep-alive" in tokens
    return Request(parts[0], parts[1].split("?", 1)[0], headers, keep_alive)


def status_line(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return f"HTTP/1.1 {status} {phrase}\r\n"


def response_head(status: int, content_type: str, keep_alive: bool,
                  length: int | None = None) -> bytes:
    framing = "transfer-encoding: chunked" if length is None else f"content-length: {length}"
    closing = "" if keep_alive else "connection: close\r\n"
    return (f"{status_line(status)}content-type: {content_type}\r\n{framing}\r\n"
            f"server: mockteam\r\n{closing}\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def error_type(status: int) -> str:
    return {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
            404: "not_found_error", 429: "rate_limit_error"}.get(
        status, "server_error" if status >= 500 else "invalid_request_error")


def error_body(status: int, message: str) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": error_type(status),
                                   "code": status}})


def wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Connection:
    """One client connection: buffered reads, and a watch for the client leaving."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.loop = asyncio.get_running_loop()
        self.buf = bytearray()
        self.eof = False
        self.gone = False
        self._waiter: asyncio.Future[None] | None = None

    async def _fill(self) -> None:
        try:
            data = await self.reader.read(65536)
        except OSError:  # a reset from the client is an end like any other
            data = b""
        if data:
            self.buf += data
        else:
            self.eof = True

    async def read_head(self) -> bytes | None:
        """The next request's head, or None when the client is done (or idle too long)."""
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end > MAX_HEAD or (end < 0 and len(self.buf) > MAX_HEAD):
                raise HttpError(431, "the request head is over 16 KiB")
            if end >= 0:
                head = bytes(self.buf[:end])
                del self.buf[:end + 4]
                return head
            if self.eof:
                if self.buf.strip():
                    raise HttpError(400, "the request ended inside its head")
                return None
            if self.buf:
                await self._fill()
                continue
            try:
                async with asyncio.timeout(KEEPALIVE_IDLE_S):
                    await self._fill()
            except TimeoutError:
                return None

    async def read_body(self, length: int) -> bytes:
        while len(self.buf) < length:
            if self.eof:
                raise ClientGone
            await self._fill()
        body = bytes(self.buf[:length])
        del self.buf[:length]
        return body

    async def watch(self) -> None:
        """Read ahead while an answer is sent, to notice at once when the client leaves."""
        while not self.eof and len(self.buf) <= MAX_HEAD + MAX_BODY:
            await self._fill()
        if self.eof:
            self.gone = True
            if self._waiter is not None:
                wake(self._waiter)

    async def pause_until(self, when: float | None) -> bool:
        """Sleep until ``when`` on the loop clock (None: forever); False if the client left."""
        if self.gone:
            return False
        if when is None or when > self.loop.time():
            waiter: asyncio.Future[None] = self.loop.create_future()
            self._waiter = waiter
            timer = None if when is None else self.loop.call_at(when, wake, waiter)
            try:
                await waiter
            finally:
                if timer is not None:
                    timer.cancel()
                self._waiter = None
        return not self.gone

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def drop(self) -> None:
        """End the connection now (the server is closing): every wait in it returns."""
        self.gone = True
        if self._waiter is not None:
            wake(self._waiter)
        self.writer.transport.abort()

    def reset(self) -> None:
        """Drop the connection with a TCP RST, as a crashed server or a middlebox does."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()
        self.gone = True
