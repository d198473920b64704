"""What every event log keeps: the contract the engine relies on, and its errors.

SQLiteLog (``sqlite``) and RedisLog (``redis_streams``) both implement ``EventLog``;
tests/test_log_contract.py holds both to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Protocol

from showcase.core.errors import LogError
from showcase.core.events import Event

FORMAT = "1"  # the layout of a stored event; a log written in another is refused


class SeqTaken(LogError):
    """An append was refused: the log already holds that seq (another node wrote first)."""

    def __init__(self, seq: int, last: int) -> None:
        super().__init__(f"seq {seq} is taken: the log already ends at {last}",
                         "the command was not recorded; it is checked again and retried")
        self.seq = seq
        self.last = last


class EventLog(Protocol):
    """What the engine needs of a log: SQLiteLog in sqlite.py, RedisLog in redis_streams.py.

    ``shared`` logs have other writers: the engine tails them (``follow``) and retries
    an append refused with ``SeqTaken``. tests/test_log_contract.py holds both to one
    contract.
    """

    shared: bool
    last_seq: int
    failed: BaseException | None
    down: str | None
    refusing: bool
    batches: int
    appended: int
    commit_seconds: float

    def open(self) -> EventLog: ...
    def close(self) -> None: ...
    @property
    def is_open(self) -> bool: ...
    def read(self, since: int = 0, limit: int | None = None) -> Iterator[Event]: ...
    def append(self, event: Event) -> asyncio.Future[None]: ...
    def append_now(self, events: list[Event]) -> None: ...
    def follow(self, since: int, stop: asyncio.Event | None = None
               ) -> AsyncIterator[list[Event]]: ...
    async def drained(self) -> None: ...
    def resume(self, seq: int) -> None: ...
