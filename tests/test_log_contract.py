"""One contract for every event log: SQLite (one node) and Redis Streams (several).

Each test runs on both. A "handle" is one open of the log, as one server process holds
it; two handles on one log stand for two nodes (SQLite allows that only to readers and
tools, Redis to any number of servers).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from showcase.core.errors import LogError
from showcase.core.events import SCORE_ENTERED, Event
from showcase.log.base import EventLog, SeqTaken
from showcase.log.redis_streams import RedisLog, durability_problem
from showcase.log.sqlite import SQLiteLog
from tests.redis_server import redis_stream  # noqa: F401 - a fixture

Opener = Callable[[], EventLog]


@pytest.fixture(params=["sqlite", "redis"])
def open_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens a new handle on one log, closed after the test."""
    handles: list[EventLog] = []
    if request.param == "sqlite":
        def make() -> EventLog:
            handle = SQLiteLog(tmp_path, exclusive=not handles)
            handles.append(handle)
            return handle.open()
    else:
        url, stream = request.getfixturevalue("redis_stream")

        def make() -> EventLog:
            # The workstation's Redis may not fsync every write; durability has its own test.
            handle = RedisLog(url, stream=stream, relaxed=True)
            handles.append(handle)
            return handle.open()
    try:
        yield make
    finally:
        for handle in handles:
            handle.close()


def event(seq: int, value: Any = 50, **data: Any) -> Event:
    return Event(seq, 1_700_000_000.0 + seq / 7, SCORE_ENTERED, "judge:김지원",
                 {"criterion": "benchmark", "team": "lg", "value": value, **data})


@contextlib.asynccontextmanager
async def writing(handle: EventLog) -> AsyncIterator[None]:
    """What the server holds open while it takes commands."""
    if handle.shared:
        async with handle.running():  # type: ignore[attr-defined]
            yield
    else:
        yield


def test_log_reads_back_what_was_appended_in_order(open_log: Opener) -> None:
    log = open_log()
    assert list(log.read()) == [] and log.last_seq == 0
    written = [event(1, 10.5), event(2, "김", note={"nested": [1, 2.25, None]}), event(3)]
    log.append_now(written[:1])
    log.append_now(written[1:])
    assert list(log.read()) == written
    assert log.last_seq == 3


def test_log_reads_a_window_with_since_and_limit(open_log: Opener) -> None:
    log = open_log()
    log.append_now([event(seq) for seq in range(1, 2501)])  # more than one page
    assert [e.seq for e in log.read(10, 5)] == [11, 12, 13, 14, 15]
    assert [e.seq for e in log.read(2498)] == [2499, 2500]
    assert len(list(log.read(0, 1500))) == 1500
    assert [e.seq for e in log.read(0)] == list(range(1, 2501))
    assert list(log.read(2500)) == []


def test_log_refuses_a_seq_it_already_holds(open_log: Opener) -> None:
    log = open_log()
    log.append_now([event(1), event(2, 60)])
    with pytest.raises(SeqTaken):
        log.append_now([event(2, 99)])
    with pytest.raises(LogError):
        log.append_now([event(5)])  # a gap is refused too
    assert [e.data["value"] for e in log.read()] == [50, 60]


def test_log_refuses_a_seq_another_handle_took_first(open_log: Opener) -> None:
    first, second = open_log(), open_log()
    first.append_now([event(1, 1)])
    second_next = second.last_seq + 1  # stale: it opened before the append above
    with pytest.raises(SeqTaken):
        second.append_now([event(second_next, 2)])
    assert [(e.seq, e.data["value"]) for e in second.read()] == [(1, 1)]


def test_log_reopened_replays_the_same_events(open_log: Opener) -> None:
    log = open_log()
    written = [event(seq, seq * 1.5) for seq in range(1, 51)]
    log.append_now(written)
    log.close()
    again = open_log()
    assert list(again.read()) == written
    assert again.last_seq == 50
    again.append_now([event(51)])
    assert [e.seq for e in again.read(49)] == [50, 51]


async def test_log_acknowledges_appends_in_order_once_durable(open_log: Opener) -> None:
    log = open_log()
    log.append_now([event(1)])
    async with writing(log):
        futures = [log.append(event(seq)) for seq in range(2, 202)]
        await asyncio.gather(*futures)
    log.close()
    assert [e.seq for e in open_log().read()] == list(range(1, 202))


async def test_shared_log_refuses_an_append_checked_against_a_stale_head(
        redis_stream: tuple[str, str]) -> None:  # noqa: F811
    url, stream = redis_stream
    node_a = RedisLog(url, stream=stream, relaxed=True).open()
    node_b = RedisLog(url, stream=stream, relaxed=True).open()
    try:
        node_a.append_now([event(1)])
        async with writing(node_b):
            with pytest.raises(SeqTaken):
                await node_b.append(event(1, 77))
            assert node_b.refusing  # nothing more goes out until its head is rebuilt
            with pytest.raises(SeqTaken):
                await node_b.append(event(2, 78))  # checked against that same stale head
            node_b.resume(1)
            await node_b.append(event(2, 79))
        assert [(e.seq, e.data["value"]) for e in node_a.read()] == [(1, 50), (2, 79)]
    finally:
        node_a.close()
        node_b.close()


async def test_shared_log_follow_sees_every_node_in_order(
        redis_stream: tuple[str, str]) -> None:  # noqa: F811
    url, stream = redis_stream
    writer = RedisLog(url, stream=stream, relaxed=True).open()
    reader = RedisLog(url, stream=stream, relaxed=True).open()
    try:
        writer.append_now([event(1)])
        seen: list[int] = []

        async def tail() -> None:
            async for events in reader.follow(0):
                seen.extend(e.seq for e in events)
                if seen[-1] >= 30:
                    return

        task = asyncio.ensure_future(tail())
        for seq in range(2, 31):
            writer.append_now([event(seq)])
        await asyncio.wait_for(task, 10)
        assert seen == list(range(1, 31))
    finally:
        writer.close()
        reader.close()


def test_redis_without_fsync_on_every_write_is_named_as_a_risk() -> None:
    assert durability_problem({"appendonly": "yes", "appendfsync": "always"}) is None
    assert "appendonly" in (durability_problem({"appendonly": "no"}) or "")
    assert "everysec" in (durability_problem({"appendonly": "yes",
                                              "appendfsync": "everysec"}) or "")


def test_redis_log_refuses_a_server_that_could_lose_events(tmp_path: Path) -> None:
    from tests.redis_server import RedisServer

    folder = tmp_path / "r"
    folder.mkdir()
    server = RedisServer(folder)
    server.start()
    try:
        client = redis.Redis(port=server.port)
        client.config_set("appendfsync", "everysec")
        with pytest.raises(LogError, match="appendfsync"):
            RedisLog(server.url).open()
        relaxed = RedisLog(server.url, relaxed=True).open()
        assert relaxed.durability == "relaxed"
        relaxed.close()
        client.config_set("appendfsync", "always")
        strict = RedisLog(server.url).open()
        assert strict.durability == "fsync-always"
        strict.close()
    finally:
        server.stop()


def test_redis_log_that_cannot_be_reached_says_where() -> None:
    from tests.redis_server import free_port

    with pytest.raises(LogError, match="cannot open the event log in Redis"):
        RedisLog(f"redis://127.0.0.1:{free_port()}/0").open()
