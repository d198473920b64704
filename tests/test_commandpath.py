"""The command front (showcase/server/commandpath.py) against the app's own routes.

``showcase serve`` answers the show's commands with a plain ASGI app in front of Starlette.
These tests hold it to the app's answers, byte for byte in the JSON, and, through the
server as users run it, to HTTP/1.1 as clients speak it: keep-alive, pipelining,
``Expect: 100-continue``, bodies in pieces and chunked, oversized bodies and clients that
leave before the answer.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import JUDGE, OPERATOR, PRESENTER, Server

SCORE = b'{"criterion":"benchmark","team":"lg","value":71.2}'


def _requests() -> list[tuple[str, str, dict[str, Any], bytes]]:
    """Good and bad commands of every kind in the table, with the answers a user sees."""
    op = {"Authorization": f"Bearer {OPERATOR}"}
    post = "POST"

    def body(value: Any) -> bytes:
        return orjson.dumps(value)

    return [
        (post, "/api/scores", op, SCORE),
        (post, "/api/scores", {}, SCORE),  # no token: 401
        (post, "/api/scores", {"Authorization": f"Bearer {PRESENTER}"}, SCORE),  # 403
        (post, "/api/scores", {"Authorization": "Basic abc"}, SCORE),  # 401, the scheme
        (post, "/api/scores", {"Authorization": "Bearer wrong"}, SCORE),  # 401, the token
        (post, "/api/scores", op, b"{bad"),  # 400, names the JSON error
        (post, "/api/scores", op, b"[1]"),  # 400, not an object
        (post, "/api/scores", op, b""),  # 400, field missing
        (post, "/api/scores", op, body({"criterion": "benchmark", "team": "lg", "value": 1,
                                        "colour": "red"})),  # unknown field
        (post, "/api/scores", op, body({"criterion": "benchmark", "team": "lg",
                                        "value": 1000, "reason": "x"})),  # out of range
        (post, "/api/scores", op, body({"criterion": "benchmark", "team": "zzz",
                                        "value": 1})),  # unknown team: 404
        (post, "/api/scores", {**op, "X-Showcase-User": "김지원".encode()},
         body({"criterion": "benchmark", "team": "skt", "value": 61.6})),
        (post, "/api/scores", {**op, "X-Showcase-User": "<script>"}, SCORE),  # 400
        (post, "/api/scores", op, body({"criterion": "benchmark", "team": "lg", "value": 70,
                                        "reason": "typo", "expect_previous": 1})),  # 409
        (post, "/api/scores", op, body({"criterion": "benchmark", "team": "lg", "value": 70,
                                        "reason": "typo", "expect_previous": 71.2})),
        (post, "/api/scores", {"Authorization": f"Bearer {JUDGE}"},
         body({"criterion": "expert", "team": "lg", "judge": "kim", "value": 88})),
        (post, "/api/scores", op, b"x" * (64 * 1024 + 1)),  # 413
        (post, "/api/scores", {}, b"x" * (64 * 1024 + 1)),  # 401: the role comes first
        (post, "/api/teams/naver/disqualify", op, body({"reason": "weights match"})),
        (post, "/api/teams/naver/disqualify", op, body({})),  # reason missing
        (post, "/api/teams/nope/withdraw", op, body({"reason": "x"})),  # 404
        (post, "/api/teams//withdraw", op, body({"reason": "x"})),  # no such endpoint
        (post, "/api/teams/naver/reinstate", op, body({"reason": "appeal upheld"})),
        (post, "/api/teams", op, body({"id": "Bad Id", "name_ko": "x", "name_en": "x"})),
        (post, "/api/rounds/r9/start", op, b""),  # 404 naming the rounds
        (post, "/api/rounds/r1/freeze", op, b""),  # 409: scores missing
        (post, "/api/rounds/r1/publish", {"Authorization": f"Bearer {PRESENTER}"}, b""),
        (post, "/api/reveal/next", op, body({"to": 1})),  # nothing frozen
        (post, "/api/reveal/lock", {"Authorization": f"Bearer {PRESENTER}"}, b""),  # 403
        (post, "/api/reveal/speed", op, body({"speed": "warp"})),
        ("GET", "/api/scores", op, b""),  # 405, the app's answer on both
        (post, "/api/scores/", op, SCORE),  # not a command path: the app's answer
        (post, "/api/%73cores", op, SCORE),  # escaped: the app unescapes it, a command
    ]


def _answers(srv: Server) -> list[tuple[int, bytes]]:
    """Each answer's status and body, bytes as they came (a redirect: where to, no port)."""
    out = []
    with httpx.Client(base_url=srv.url, timeout=10) as client:
        for method, path, headers, content in _requests():
            response = client.request(method, path, headers=headers, content=content)
            body = (httpx.URL(response.headers["location"]).path.encode()
                    if response.is_redirect else response.content)
            out.append((response.status_code, body))
    return out


def _log(srv: Server) -> list[tuple[int, str, str, Any]]:
    with srv.client() as client:
        events = client.get("/api/log", params={"since": 0, "limit": 5000}).json()["events"]
    return [(e["seq"], e["type"], e["actor"], e["data"]) for e in events]


@pytest.fixture
def servers(tmp_path: Path, showfile: Path) -> Iterator[tuple[Server, Server]]:
    front = Server(showfile, tmp_path / "front").start()
    app = Server(showfile, tmp_path / "app", env={"SHOWCASE_LEAN_COMMANDS": "0"}).start()
    try:
        yield front, app
    finally:
        front.stop()
        app.stop()


def test_command_front_answers_and_records_exactly_as_the_app(
        servers: tuple[Server, Server]) -> None:
    front, app = servers
    got, expected = _answers(front), _answers(app)
    statuses = [status for status, _ in got]
    # the list covers what it says: successes and each kind of refusal
    assert {201, 400, 401, 403, 404, 405, 409, 413} <= set(statuses)
    for request, mine, theirs in zip(_requests(), got, expected, strict=True):
        assert mine == theirs, f"{request[0]} {request[1]} {request[3][:60]!r}"
    assert _log(front) == _log(app)
    assert any(actor == "operator:김지원" for _, _, actor, _ in _log(front))


# -- HTTP/1.1 as clients speak it, through the front -------------------------------------------

def _request(path: str, body: bytes = SCORE, *, extra: bytes = b"",
             token: str = OPERATOR) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n").encode() \
        + extra + b"\r\n" + body


def _correction(value: float) -> bytes:
    return orjson.dumps({"criterion": "benchmark", "team": "lg", "value": value,
                         "reason": "test"})


class Reader:
    """Responses read off a raw socket, one at a time, by their Content-Length."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            assert self._fill(), f"closed before a response; got {self.buffer!r}"
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            assert self._fill(), "closed in the middle of a body"
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body

    def closed(self) -> bool:
        """True once the server has closed the connection (nothing more to read)."""
        self.sock.settimeout(5)
        try:
            return not self.buffer and not self._fill()
        except ConnectionResetError:  # closed with the unread body still in its buffer
            return True


def _connect(srv: Server) -> tuple[socket.socket, Reader]:
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    return sock, Reader(sock)


def test_keep_alive_and_pipelined_commands_are_answered_in_order(server: Server) -> None:
    sock, reader = _connect(server)
    with sock:
        sock.sendall(_request("/api/scores"))
        status, headers, body = reader.response()
        assert status == 201 and "connection" not in headers
        first = orjson.loads(body)["seq"]
        # three commands and a read of the app in one write: answered one after another
        sock.sendall(_request("/api/scores", _correction(70)) + _request("/api/scores", b"{")
                     + b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                     + _request("/api/scores", _correction(69)))
        answers = [reader.response() for _ in range(4)]
    assert [a[0] for a in answers] == [201, 400, 200, 201]
    assert orjson.loads(answers[0][2]) == {"seq": first + 1, "type": "score_entered"}
    assert orjson.loads(answers[2][2])["seq"] == first + 1
    assert orjson.loads(answers[3][2])["seq"] == first + 2
    values = [e[3]["value"] for e in _log(server) if e[1] == "score_entered"]
    assert values == [71.2, 70, 69]


def test_expect_100_continue_and_a_body_in_pieces(server: Server) -> None:
    sock, reader = _connect(server)
    with sock:
        head, _, body = _request("/api/scores", extra=b"Expect: 100-continue\r\n").partition(
            b"\r\n\r\n")
        sock.sendall(head + b"\r\n\r\n")
        status, _, _ = reader.response()
        assert status == 100  # the client may send its body now
        sock.sendall(body[:10])
        time.sleep(0.2)
        sock.sendall(body[10:])
        status, _, answer = reader.response()
    assert status == 201, answer
    assert orjson.loads(answer)["type"] == "score_entered"


def test_a_chunked_command_is_answered_and_the_connection_kept(server: Server) -> None:
    sock, reader = _connect(server)
    with sock:
        body = _correction(65)
        sock.sendall(b"POST /api/scores HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
                     + OPERATOR.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + b"%x\r\n%s\r\n" % (10, body[:10])
                     + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body) - 10, body[10:]))
        status, headers, answer = reader.response()
        assert status == 201 and "connection" not in headers, answer
        sock.sendall(_request("/api/scores", _correction(64)))
        assert reader.response()[0] == 201  # the same connection carries the next one
    assert [e[3]["value"] for e in _log(server) if e[1] == "score_entered"] == [65, 64]


def test_oversized_bodies_are_refused_and_the_connection_closed(server: Server) -> None:
    before = _log(server)
    sock, reader = _connect(server)
    with sock:  # declared too large: refused before any of it is read
        sock.sendall(_request("/api/scores", b"x" * 70_000))
        status, headers, body = reader.response()
        assert status == 413 and headers["connection"] == "close"
        assert "at most 65536 bytes" in orjson.loads(body)["error"]
        assert reader.closed()
    sock, reader = _connect(server)
    with sock:  # chunked, no length: refused once it grows past the limit
        sock.sendall(b"POST /api/scores HTTP/1.1\r\nHost: t\r\n"
                     b"Authorization: Bearer " + OPERATOR.encode() + b"\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        # 17 chunks of 4 KiB pass the 64 KiB limit; the server may answer and close as soon
        # as they do, so a client still sending finds the connection gone.
        for _ in range(17):
            try:
                sock.sendall(b"1000\r\n" + b" " * 0x1000 + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
        status, headers, _ = reader.response()
        assert status == 413 and headers["connection"] == "close"
        assert reader.closed()
    assert _log(server) == before  # nothing recorded
    assert server.post("/api/scores", orjson.loads(SCORE)).status_code == 201  # still serving


def test_connection_close_and_http_1_0_get_their_answer_then_the_close(server: Server) -> None:
    sock, reader = _connect(server)
    with sock:
        sock.sendall(_request("/api/scores", extra=b"Connection: close\r\n"))
        status, headers, _ = reader.response()
        assert status == 201 and headers["connection"] == "close"
        assert reader.closed()
    sock, reader = _connect(server)
    with sock:
        sock.sendall(_request("/api/scores", _correction(70)).replace(b"HTTP/1.1", b"HTTP/1.0"))
        status, _, _ = reader.response()
        assert status == 201
        assert reader.closed()


def test_a_client_gone_before_its_answer_still_has_its_command_recorded(
        server: Server) -> None:
    for _ in range(5):
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(_request("/api/scores", _correction(60 + _)))
        sock.close()
    deadline = time.monotonic() + 10
    while len([e for e in _log(server) if e[1] == "score_entered"]) < 5:
        assert time.monotonic() < deadline, _log(server)
        time.sleep(0.05)
    assert server.post("/api/scores", _correction(1.5).decode() and orjson.loads(
        _correction(1.5))).status_code == 201


def test_a_long_run_of_pipelined_refusals_is_answered_in_full(server: Server) -> None:
    """Commands refused at once, pipelined in the hundreds, each get their answer (they
    once answered one another recursively until Python's stack ran out)."""
    sock, reader = _connect(server)
    with sock:
        sock.sendall(_request("/api/scores") + _request("/api/scores", token="wrong") * 400
                     + b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        answers = [reader.response()[0] for _ in range(402)]
    assert answers == [201] + [401] * 400 + [200]


def test_an_oversized_command_pipelined_behind_another_waits_its_turn(server: Server) -> None:
    """The request ahead is answered first; then the oversized one is refused and the
    connection closed."""
    chunked = (b"POST /api/scores HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
               + OPERATOR.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
               + (b"1000\r\n" + b" " * 0x1000 + b"\r\n") * 20 + b"0\r\n\r\n")
    sock, reader = _connect(server)
    with sock:
        sock.sendall(_request("/api/scores") + chunked)
        first = reader.response()
        second = reader.response()
    assert first[0] == 201 and orjson.loads(first[2])["type"] == "score_entered"
    assert second[0] == 413 and second[1]["connection"] == "close"


def test_an_unauthorised_command_is_refused_before_its_body_is_asked_for(
        server: Server) -> None:
    sock, reader = _connect(server)
    with sock:
        head = _request("/api/scores", token="wrong",
                        extra=b"Expect: 100-continue\r\n").partition(b"\r\n\r\n")[0]
        sock.sendall(head + b"\r\n\r\n")
        status, _, body = reader.response()  # no 100 Continue: straight to the refusal
    assert status == 401 and orjson.loads(body)["error"] == "the token is not valid for this show"


def test_keep_alive_closes_idle_connections_and_keeps_busy_ones(server: Server) -> None:
    """The keep-alive timeout (uvicorn's, 5 s): a connection idle for 5 s is closed, one
    that sends a command every 1.5 s stays open."""
    idle, idle_reader = _connect(server)
    busy, busy_reader = _connect(server)
    with idle, busy:
        idle.sendall(_request("/api/scores"))
        assert idle_reader.response()[0] == 201
        started = time.monotonic()
        value = 60.0
        while time.monotonic() - started < 7.5:
            busy.sendall(_request("/api/scores", _correction(value)))
            assert busy_reader.response()[0] == 201  # still open, still answered
            value += 1
            time.sleep(1.5)
        assert idle_reader.closed()
        busy.sendall(_request("/api/scores", _correction(value)))
        assert busy_reader.response()[0] == 201
