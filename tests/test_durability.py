"""kill -9 at any moment loses no acknowledged command."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import OPERATOR, Server


def hammer(srv: Server, acked: dict[int, dict[str, object]], stop: threading.Event,
           worker: int) -> None:
    teams = ["lg", "skt", "upstage", "naver", "ncai"]
    with httpx.Client(base_url=srv.url, timeout=5,
                      headers={"Authorization": f"Bearer {OPERATOR}"}) as client:
        i = 0
        while not stop.is_set():
            body = {"criterion": "benchmark", "team": teams[(worker + i) % 5],
                    "value": round(random.uniform(30, 90), 2), "reason": f"w{worker} #{i}"}
            try:
                response = client.post("/api/scores", json=body)
            except httpx.HTTPError:
                return  # the server is gone: this command was never acknowledged
            if response.status_code == 201:
                acked[response.json()["seq"]] = body
            i += 1


def test_kill_9_loses_no_acknowledged_command(tmp_path: Path, showfile: Path) -> None:
    srv = Server(showfile, tmp_path / "data").start()
    acked: dict[int, dict[str, object]] = {}
    try:
        for _round in range(2):
            stop = threading.Event()
            workers = [threading.Thread(target=hammer, args=(srv, acked, stop, w))
                       for w in range(8)]
            for w in workers:
                w.start()
            deadline = time.monotonic() + 10
            target = len(acked) + 100
            while len(acked) < target and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(random.uniform(0, 0.05))
            srv.kill9()  # mid-burst: commands are in flight
            stop.set()
            for w in workers:
                w.join()
            srv.start()
            assert len(acked) >= target
            with srv.client() as client:
                events = client.get("/api/log", params={"limit": 5000}).json()["events"]
            by_seq = {e["seq"]: e for e in events}
            assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # no gap
            for seq, body in acked.items():
                assert seq in by_seq, f"acknowledged seq {seq} lost"
                data = by_seq[seq]["data"]
                assert (data["team"], data["value"], data["reason"]) == (
                    body["team"], body["value"], body["reason"])
    finally:
        srv.stop()


async def test_a_failed_write_fails_the_batches_queued_behind_it(tmp_path: Path) -> None:
    """A batch that fails leaves a hole; one queued behind it must not be written past it
    (its command acknowledged, the log with a gap): both fail, and the log refuses more."""
    import asyncio
    import sqlite3

    import pytest

    from showcase.core.errors import Unavailable
    from showcase.core.events import Event
    from showcase.log.sqlite import SQLiteLog

    log = SQLiteLog(tmp_path).open()
    try:
        await log.append(Event(1, time.time(), "show_configured", "test", {}))
        other = sqlite3.connect(log.path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the writer waits for this lock (busy_timeout)
        first = log.append(Event(2, time.time(), "score_entered", "test", {"n": 2}))
        await asyncio.sleep(0.2)  # handed over: the writer is now waiting on the lock
        second = log.append(Event(3, time.time(), "score_entered", "test", {"n": 3}))
        await asyncio.sleep(0.2)  # handed over too, behind the first
        other.execute("INSERT INTO events VALUES (2, 0, 'x', 'other', x'7b7d', '')")
        other.execute("COMMIT")  # now seq 2 is taken: the writer's first batch fails
        other.close()
        results = await asyncio.gather(first, second, return_exceptions=True)
        assert all(isinstance(r, Unavailable) for r in results), results
        assert [e.seq for e in log.read()] == [1, 2]  # seq 3 was not written past the hole
        with pytest.raises(Unavailable):
            log.append(Event(3, time.time(), "score_entered", "test", {}))
    finally:
        log.close()
