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
