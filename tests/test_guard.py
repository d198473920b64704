"""Slow clients cut off (issue 15, finding 5), against a real ``showcase serve``: heads sent
a line at a time are closed after the header timeout while other clients are served, and
one address cannot hold more connections than its limit."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import OPERATOR, Server


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (a read gives the end of the stream or a reset)."""
    sock.settimeout(0.05)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def connect(srv: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", srv.port), timeout=5)


@pytest.fixture
def guarded(tmp_path: Path, showfile: Path, request: pytest.FixtureRequest
            ) -> Iterator[Server]:
    srv = Server(showfile, tmp_path / "data", list(request.param)).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.parametrize("guarded", [("--header-timeout", "1",
                                      "--max-connections-per-address", "0")], indirect=True)
def test_slow_heads_are_closed_while_others_are_served(guarded: Server) -> None:
    slow = [connect(guarded) for _ in range(30)]
    for sock in slow:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: showcase\r\n")
    # An SSE stream whose head came at once stays open past the timeout.
    stream = connect(guarded)
    stream.sendall(b"GET /events HTTP/1.1\r\nHost: showcase\r\n\r\n")
    served: list[int] = []
    stop = threading.Event()

    def keep_asking() -> None:
        with httpx.Client(base_url=guarded.url, timeout=10) as client:
            while not stop.is_set():
                served.append(client.get("/healthz").status_code)
                time.sleep(0.05)

    asker = threading.Thread(target=keep_asking)
    asker.start()
    started = time.monotonic()
    open_ = list(slow)
    try:
        while open_ and time.monotonic() - started < 20:  # 1 s, and slack for a busy machine
            for sock in list(open_):
                if closed_by_server(sock):
                    open_.remove(sock)
                else:
                    sock.sendall(b"X-Slow: 1\r\n")  # one header line at a time, never done
            time.sleep(0.2)
        stream_open = not closed_by_server(stream)
    finally:
        stop.set()
        asker.join()
        for sock in [*slow, stream]:
            sock.close()
    assert open_ == [], f"{len(open_)} slow connections still open after 20 s"
    assert stream_open
    assert len(served) >= 3 and set(served) == {200}
    guarded.stop()
    assert "from 127.0.0.1: no complete request head within 1 s" in "".join(guarded.output)


@pytest.mark.parametrize("guarded", [("--max-connections-per-address", "3")], indirect=True)
def test_one_address_holds_at_most_its_limit_of_connections(guarded: Server) -> None:
    held = [connect(guarded) for _ in range(3)]
    for sock in held:  # each a kept-alive connection that has asked once
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: showcase\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    extra = connect(guarded)
    deadline = time.monotonic() + 10
    while not closed_by_server(extra) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert time.monotonic() < deadline, "the fourth connection was not closed"
    held.pop().close()  # one leaves: another may come
    time.sleep(0.3)
    assert httpx.get(f"{guarded.url}/healthz", timeout=10).status_code == 200
    for sock in [*held, extra]:
        sock.close()
    guarded.stop()
    assert "from 127.0.0.1: more than 3 connections open from one address" in "".join(
        guarded.output)


def test_the_limits_are_checked_on_the_command_line(tmp_path: Path, showfile: Path) -> None:
    with pytest.raises(RuntimeError, match="--header-timeout must be from 0 to 3600"):
        Server(showfile, tmp_path / "data", ["--header-timeout", "-1"]).start()


@pytest.mark.parametrize("guarded", [("--header-timeout", "1",
                                      "--max-connections-per-address", "0")], indirect=True)
def test_a_later_requests_slow_head_on_a_kept_alive_connection_is_closed(
        guarded: Server) -> None:
    # Each connection asks once at once (a command with a body, and a plain read), then
    # sends the next request's head a line at a time, never finishing it.
    kept = [connect(guarded) for _ in range(10)]
    teams = ["lg", "skt", "upstage", "naver", "ncai"]
    for i, sock in enumerate(kept):
        if i % 2:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: showcase\r\n\r\n")
        else:
            body = b'{"criterion": "benchmark", "team": "%s", "value": 70}' % (
                teams[i // 2].encode())
            sock.sendall(b"POST /api/scores HTTP/1.1\r\nHost: showcase\r\n"
                         b"Authorization: Bearer " + OPERATOR.encode() + b"\r\n"
                         b"Content-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body)
    for sock in kept:
        assert sock.recv(4096).split(b" ")[1] in (b"200", b"201")
    for sock in kept:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
    # A connection that keeps asking whole requests is served all along.
    good = httpx.Client(base_url=guarded.url, timeout=10)
    started = time.monotonic()
    open_ = list(kept)
    served = []
    try:
        while open_ and time.monotonic() - started < 20:  # 1 s, and slack for a busy machine
            served.append(good.get("/healthz").status_code)
            for sock in list(open_):
                if closed_by_server(sock):
                    open_.remove(sock)
                else:
                    sock.sendall(b"X-Slow: 1\r\n")  # within uvicorn's keep-alive time
            time.sleep(0.2)
        took = time.monotonic() - started
    finally:
        good.close()
        for sock in kept:
            sock.close()
    assert open_ == [], f"{len(open_)} slow second heads still open after 20 s"
    assert took < 8, took  # the header timeout (1 s), not uvicorn's keep-alive or never
    assert len(served) >= 3 and set(served) == {200}
    guarded.stop()
    assert "from 127.0.0.1: no complete request head within 1 s" in "".join(guarded.output)
