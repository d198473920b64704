"""The event streams: SSE (``GET /events``) and WebSocket (``/ws``) carry the same messages.

A connection subscribes before it looks at the state, so nothing committed in between
can fall through: it gets a snapshot (no usable ``since``) or the events after ``since``,
then every new message. Messages are de-duplicated by seq, so a resumed viewer sees each
event exactly once. Each connection has its own sender; see fanout.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Coroutine
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from showcase.core.errors import ShowcaseError
from showcase.runtime.engine import Engine
from showcase.runtime.fanout import RESYNC, FrameWriter
from showcase.runtime.outputs import Outputs, reload_message

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 15.0
MAX_CLIENT_MESSAGE = 4096


class Keepalive:
    """Yielded by ``messages`` when nothing was sent for a while."""

    def __init__(self, seq: int) -> None:
        self.seq = seq


async def messages(engine: Engine, view: str, since: int | None,
                   keepalive: float = KEEPALIVE_SECONDS, writer: FrameWriter | None = None
                   ) -> AsyncGenerator[tuple[int | None, bytes] | Keepalive, None]:
    """The connection's messages, in order, each once.

    With a ``writer``, live messages that arrive while the consumer waits here are
    written by the hub straight to the connection and never pass through this generator
    (fanout.py); what it yields, the consumer sends before asking for more.
    """
    sub = engine.hub.subscribe(view, writer)
    try:
        at = engine.committed.seq
        backlog = None
        if since is not None and 0 <= since <= at:
            backlog = engine.events_between(since, at)
        if backlog is None:
            last = engine.committed.seq
            yield last, engine.snapshot(view)
        else:
            last = since if since is not None else 0
            for event in backlog:
                last = event.seq
                yield event.seq, event.wire(view)
        live = engine.live.full_frame()
        if live is not None:
            yield None, live
        while True:
            item = await sub.get(keepalive)
            last = max(last, sub.seq)  # what the hub wrote directly meanwhile
            if item is None:
                yield Keepalive(last)
                continue
            if item is RESYNC:
                sub.drop_backlog()
                last = engine.committed.seq
                yield last, engine.snapshot(view)
                live = engine.live.full_frame()
                if live is not None:
                    yield None, live
                continue
            seq = item[0]
            if seq is not None:
                if seq <= last:
                    continue
                last = seq
            yield item
    finally:
        engine.hub.unsubscribe(sub)


class EventStream(Response):
    """Server-sent events; ends the subscription as soon as the client goes away."""

    media_type = "text/event-stream"

    def __init__(self, engine: Engine, view: str, since: int | None) -> None:
        self.status_code = 200
        self.background = None
        self.raw_headers = [(b"content-type", b"text/event-stream; charset=utf-8"),
                            (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
        self.engine = engine
        self.view = view
        self.since = since

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})

        async def pump() -> None:
            stream = messages(self.engine, self.view, self.since)
            try:
                # A retry hint for EventSource, and a first byte so proxies flush headers.
                await send({"type": "http.response.body", "body": b"retry: 1000\n\n",
                            "more_body": True})
                async for item in stream:
                    if isinstance(item, Keepalive):
                        chunk = b": keepalive\n\n"
                    elif item[0] is None:
                        chunk = b"data: " + item[1] + b"\n\n"
                    else:
                        chunk = b"id: %d\ndata: %s\n\n" % (item[0], item[1])
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            finally:
                await stream.aclose()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        with contextlib.suppress(OSError):
            await _first_completed(pump(), watch())


async def _first_completed(*coros: Coroutine[Any, Any, None]) -> None:
    """Run coroutines until one of them ends, then cancel the others."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                if not isinstance(exc, (OSError, WebSocketDisconnect)):
                    raise exc  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _is_ping(text: str | None) -> bool:
    if text is None:
        return False
    if text.strip() == "ping":
        return True
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return isinstance(message, dict) and message.get("type") == "ping"


#: The ASGI scope extension through which a server offers a connection's transport as a
#: ``FrameWriter``: ``{"writer": FrameWriter}`` (frames.py is the one that does).
FRAMES_EXTENSION = "showcase.frames"


def _frame_writer(ws: WebSocket) -> FrameWriter | None:
    extension = ws.scope.get("extensions", {}).get(FRAMES_EXTENSION)
    return extension["writer"] if extension else None


async def websocket_stream(ws: WebSocket, engine: Engine, view: str, since: int | None,
                           outputs: Outputs | None = None) -> None:
    """A read-only WebSocket: clients may send small pings and, with ``outputs``, an
    overlay page's hello (runtime/outputs.py); anything else closes it."""
    await ws.accept()
    output = None
    if outputs is not None:
        build = outputs.build

        async def send_reload() -> None:
            # Sent from the operator's request, through the page's own connection (one
            # frame, as the hub's are): no task of its own waits per viewer for a reload
            # that rarely comes. The page then loads itself again and closes this one.
            with contextlib.suppress(Exception):
                await ws.send_text(reload_message(build))

        output = outputs.connect(ws.client.host if ws.client else "", send_reload)

    async def pump() -> None:
        # Snapshots, backlogs and messages queued for a slow viewer go through ASGI
        # sends; live messages for a caught-up viewer go straight out through the writer.
        stream = messages(engine, view, since, writer=_frame_writer(ws))
        try:
            async for item in stream:
                if isinstance(item, Keepalive):
                    text = orjson.dumps({"seq": None, "type": "keepalive",
                                         "data": {"last_seq": item.seq}}).decode()
                else:
                    text = item[1].decode()
                await ws.send_text(text)
        finally:
            await stream.aclose()

    async def listen() -> None:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            payload = message.get("text") or message.get("bytes") or ""
            if len(payload) > MAX_CLIENT_MESSAGE:
                await ws.close(code=1009, reason="message too big: this stream is read-only")
                return
            text = message.get("text")
            if _is_ping(text):
                continue
            if output is not None and outputs is not None and text is not None \
                    and '"hello"' in text:
                try:
                    outputs.hear(output, text)
                except ShowcaseError as exc:
                    await ws.close(code=1008, reason=exc.message[:120])
                    return
                continue
            await ws.close(code=1003, reason="this stream is read-only; send nothing, 'ping' "
                                             "or a page's hello")
            return

    try:
        await _first_completed(pump(), listen())
    finally:
        if output is not None and outputs is not None:
            outputs.disconnect(output)
        with contextlib.suppress(Exception):
            await ws.close()
