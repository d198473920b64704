"""Fan-out: every subscriber has its own bounded queue and its own sender.

Publishing never awaits a socket: it appends the same bytes (serialised once per view)
to each subscriber's queue and wakes its sender. A subscriber that falls behind past its
bound is not allowed to hold memory or delay others: its queue is dropped and its sender
is told to start over from a fresh snapshot.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from showcase.events import VIEWS

Message = tuple[int | None, bytes]  # (seq, or None for volatile frames; wire bytes)
RESYNC: Message = (None, b"resync")  # queued alone after an overflow: "start over"


class Subscriber:
    __slots__ = ("_queue", "_wake", "limit", "view")

    def __init__(self, view: str, limit: int) -> None:
        self.view = view
        self.limit = limit
        self._queue: deque[Message] = deque()
        self._wake = asyncio.Event()

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
        """The next message, RESYNC after an overflow, or None when ``timeout`` passes."""
        while not self._queue:
            self._wake.clear()
            try:
                # asyncio.timeout, not wait_for: wait_for wraps the wait in a task of its
                # own, once per message per connection (measured: docs/performance.md).
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                return None
        return self._queue.popleft()


class Hub:
    def __init__(self, queue_limit: int = 1024) -> None:
        self.queue_limit = queue_limit
        self.subscribers: dict[str, set[Subscriber]] = {view: set() for view in VIEWS}
        self.published = 0
        self.resyncs = 0  # subscribers that fell behind and were sent a fresh snapshot

    def subscribe(self, view: str) -> Subscriber:
        sub = Subscriber(view, self.queue_limit)
        self.subscribers[view].add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers[sub.view].discard(sub)

    def publish(self, seq: int | None, wire: Callable[[str], bytes]) -> None:
        """Send one message to every subscriber; ``wire(view)`` gives its bytes per view."""
        for view, subs in self.subscribers.items():
            if subs:
                message = (seq, wire(view))
                for sub in subs:
                    if not sub.push(message):
                        self.resyncs += 1
        self.published += 1

    def longest_backlog(self) -> int:
        """Messages queued for the slowest connection: at most ``queue_limit``."""
        return max((len(sub) for subs in self.subscribers.values() for sub in subs), default=0)

    def count(self) -> dict[str, int]:
        return {view: len(subs) for view, subs in self.subscribers.items()}
