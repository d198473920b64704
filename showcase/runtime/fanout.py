"""Fan-out: every subscriber has its own bounded queue and its own sender.

Publishing never awaits a socket. Each message is serialised once per view and, for
WebSocket viewers, framed once per view. A subscriber whose connection offers a
``FrameWriter`` and that has caught up (nothing queued, its sender idle) gets the frame
written straight to its transport, as ``websockets.broadcast()`` does: no task wakes up
and nothing is encoded again for it. Otherwise (SSE, a connection still sending its
snapshot, or a transport past its write-buffer high-water mark) the message goes to the
subscriber's bounded queue and its sender is woken. A subscriber that falls behind past
its bound is not allowed to hold memory or delay others: its queue is dropped and its
sender is told to start over from a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import struct
from collections import deque
from collections.abc import Callable
from typing import Protocol

from showcase.core.events import VIEWS

Message = tuple[int | None, bytes]  # (seq, or None for volatile frames; wire bytes)
RESYNC: Message = (None, b"resync")  # queued alone after an overflow: "start over"


def text_frame(payload: bytes) -> bytes:
    """``payload`` as one unmasked, unfragmented WebSocket text frame (RFC 6455, 5.2).

    What a server sends; no extension bit is set, so a connection that negotiated
    permessage-deflate receives it uncompressed, which RFC 7692 allows per message.
    """
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


class FrameWriter(Protocol):
    """A connection's transport, for frames prepared once and shared by all viewers."""

    def write_frame(self, frame: bytes) -> bool:
        """Write ``frame`` now if the transport takes it without buffering past its
        high-water mark; False (nothing written) when it is paused or closing."""


class Subscriber:
    __slots__ = ("_queue", "_wake", "direct", "limit", "seq", "view", "writer", "written")

    def __init__(self, view: str, limit: int, writer: FrameWriter | None = None) -> None:
        self.view = view
        self.limit = limit
        self._queue: deque[Message] = deque()
        self._wake = asyncio.Event()
        self.writer = writer
        # The writer while the sender waits with nothing queued: only then may a frame
        # overtake the queue without breaking the order.
        self.direct: FrameWriter | None = None
        self.seq = 0  # the last seq written directly
        self.written = 0  # frames written directly, so that the sender knows it was not idle

    def offer(self, message: Message, frame: bytes) -> bool:
        """Write the frame directly when caught up, else queue the message (see ``push``)."""
        direct = self.direct
        if direct is not None and not self._queue and direct.write_frame(frame):
            if message[0] is not None:
                self.seq = message[0]
            self.written += 1
            return True
        return self.push(message)

    def push(self, message: Message) -> bool:
        """Queue a message; False when the queue was full and was replaced by RESYNC."""
        if self._queue and self._queue[0] is RESYNC:
            # A snapshot is coming, built from the committed state when the sender gets to
            # it: it already holds this message, so nothing more is kept.
            return True
        if len(self._queue) >= self.limit:
            self._queue.clear()
            self._queue.append(RESYNC)
            self._wake.set()
            return False
        self._queue.append(message)
        self._wake.set()
        return True

    def __len__(self) -> int:
        return len(self._queue)

    def drop_backlog(self) -> None:
        self._queue.clear()

    async def get(self, timeout: float | None = None) -> Message | None:
        """The next message, RESYNC after an overflow, or None when ``timeout`` passes
        with nothing queued and nothing written directly.

        The caller has sent everything it was given before, so while this waits the
        publisher may write to the connection directly.
        """
        while not self._queue:
            self._wake.clear()
            written = self.written
            self.direct = self.writer
            try:
                # asyncio.timeout, not wait_for: wait_for wraps the wait in a task of its
                # own, once per message per connection (measured: docs/performance.md).
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                if self.written == written:
                    self.direct = None
                    return None
        self.direct = None  # the sender is busy: later messages queue behind this one
        return self._queue.popleft()


class Hub:
    def __init__(self, queue_limit: int = 1024) -> None:
        self.queue_limit = queue_limit
        self.subscribers: dict[str, set[Subscriber]] = {view: set() for view in VIEWS}
        self.published = 0
        self.resyncs = 0  # subscribers that fell behind and were sent a fresh snapshot

    def subscribe(self, view: str, writer: FrameWriter | None = None) -> Subscriber:
        sub = Subscriber(view, self.queue_limit, writer)
        self.subscribers[view].add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers[sub.view].discard(sub)

    def publish(self, seq: int | None, wire: Callable[[str], bytes]) -> None:
        """Send one message to every subscriber; ``wire(view)`` gives its bytes per view."""
        for view, subs in self.subscribers.items():
            if subs:
                payload = wire(view)
                message = (seq, payload)
                frame = text_frame(payload)
                for sub in subs:
                    if not sub.offer(message, frame):
                        self.resyncs += 1
        self.published += 1

    def longest_backlog(self) -> int:
        """Messages queued for the slowest connection: at most ``queue_limit``."""
        return max((len(sub) for subs in self.subscribers.values() for sub in subs), default=0)

    def count(self) -> dict[str, int]:
        return {view: len(subs) for view, subs in self.subscribers.items()}
