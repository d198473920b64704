"""Viewers that misbehave cost the others nothing: a stuck socket, huge or garbage input.

A real server and real sockets: the stuck viewer completes the WebSocket handshake and
then never reads, with a tiny receive buffer, as a frozen browser tab on a bad link would.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import threading
from pathlib import Path

import httpx
from websockets.sync.client import connect

from tests.conftest import OPERATOR, Server
from tests.streams import Viewer

REASON = "심사위원 요청에 따른 정정 " * 32  # 480 characters: big operator messages


def stuck_viewer(url: str) -> socket.socket:
    """A WebSocket client that reads nothing after the handshake."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: no autotuning
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws?token={OPERATOR} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    assert sock.recv(12) == b"HTTP/1.1 101"
    return sock


def metric(srv: Server, name: str) -> float:
    text = httpx.get(f"{srv.url}/metrics").text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert found, name
    return float(found.group(1))


def rss_kib(srv: Server) -> int:
    assert srv.proc is not None
    status = Path(f"/proc/{srv.proc.pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    assert found
    return int(found.group(1))


def test_stuck_viewer_delays_no_one_and_its_backlog_stays_bounded(server: Server) -> None:
    healthy = Viewer(server.url, "token=" + OPERATOR)
    stuck = stuck_viewer(server.url)
    acked: list[int] = []
    lock = threading.Lock()
    backlogs: list[float] = []
    errors: list[str] = []
    try:
        healthy.wait_for(lambda ms: bool(ms))
        rss_before = rss_kib(server)

        def send(worker: int) -> None:
            with httpx.Client(base_url=server.url, timeout=10,
                              headers={"Authorization": f"Bearer {OPERATOR}"}) as client:
                i = 0
                while metric(server, "showcase_subscriber_resyncs_total") < 1 and i < 1500:
                    for _ in range(50):
                        response = client.post("/api/scores", json={
                            "criterion": "benchmark", "team": "lg", "value": i % 90,
                            "reason": f"{worker}:{i} {REASON}"})
                        if response.status_code != 201:
                            errors.append(response.text)
                            return
                        with lock:
                            acked.append(response.json()["seq"])
                        i += 1
                    backlogs.append(metric(server, "showcase_subscriber_backlog_max"))

        workers = [threading.Thread(target=send, args=(w,)) for w in range(6)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert not errors
        # The stuck viewer fell behind past its bound: its backlog was dropped for a
        # snapshot to come, while the healthy one got every event, in order.
        assert metric(server, "showcase_subscriber_resyncs_total") >= 1
        assert max(backlogs) <= 1024
        received = healthy.wait_seq(max(acked))
        got = [m["seq"] for m in received if m["type"] == "score_entered"]
        assert got == sorted(acked)
        # Bounded: its queue, the socket's buffers, one snapshot; not the whole stream.
        assert rss_kib(server) - rss_before < 64 * 1024, (rss_kib(server), rss_before)
    finally:
        stuck.close()
        healthy.close()


def test_viewer_sending_huge_or_garbage_is_closed_and_others_go_on(server: Server) -> None:
    ws_url = server.url.replace("http://", "ws://") + "/ws"
    watcher = Viewer(server.url)
    try:
        watcher.wait_for(lambda ms: bool(ms))
        for payload, code in ((b"\xff\x00garbage" * 1000, 1009),  # over the 4 KiB bound
                              ("x" * 200_000, 1009),  # over the server's frame limit
                              ("{not json", 1003),
                              ('{"type": "subscribe", "view": "operator"}', 1003)):
            with connect(ws_url, max_size=None) as bad:
                bad.recv(5)  # its snapshot
                bad.send(payload)
                try:
                    while True:
                        bad.recv(5)
                except Exception:
                    pass
                assert bad.close_code == code, (payload[:20], bad.close_code)
        with connect(ws_url) as pinger:
            pinger.recv(5)
            pinger.send("ping")  # the one thing a viewer may send
            seq = server.post("/api/scores", {"criterion": "benchmark", "team": "lg",
                                              "value": 5}).json()["seq"]
            assert any(b'"seq":%d' % seq in pinger.recv(5).encode() for _ in range(3))
        watcher.wait_seq(seq)
        assert not watcher.closed.is_set()
        assert httpx.get(f"{server.url}/healthz").json()["ok"] is True
    finally:
        watcher.close()
