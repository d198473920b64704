"""The running mock team: connections in, answers out, with the faults it was told to show."""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import math
import random
import socket
import time
from collections.abc import Mapping
from typing import Any

import orjson

from showcase.models.mock.answers import (
    DONE,
    MALFORMED,
    EventWriter,
    Plan,
    Wire,
    awkward_cuts,
    delays,
    plan_answer,
    tokenize,
)
from showcase.models.mock.config import MAX_BODY, SPLIT_PAUSE_S, MockConfig, MockConfigError
from showcase.models.mock.connection import (
    ClientGone,
    Connection,
    HttpError,
    Request,
    error_body,
    parse_head,
    response_head,
)

log = logging.getLogger(__name__)

_DONE_OK, _DONE_GONE, _DONE_RESET = "completed", "disconnected", "reset"


class MockServer:
    """A running mock team. ``url`` is its OpenAI base URL (``http://host:port/v1``);
    ``stats`` counts chat completion ``requests``, answers in progress (``active_streams``,
    streamed or not), answers sent to their end (``completed``), answers whose client went
    away first (``disconnected``), ``open_connections`` and ``connections`` ever accepted."""

    def __init__(self, config: MockConfig, host: str = "127.0.0.1",
                 answers: Mapping[str, tuple[str, str]] | None = None) -> None:
        self.config = config
        self.host = host
        self.answers = answers  # benchmark prompt -> (a right answer, a wrong one)
        self.port = 0
        self.stats: dict[str, int] = dict.fromkeys(
            ("requests", "active_streams", "completed", "disconnected", "open_connections",
             "connections"), 0)
        self._server: asyncio.Server | None = None
        self._connections: dict[Connection, asyncio.Task[Any]] = {}
        self._rng = random.Random(config.seed)
        self._started = int(time.time())

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    async def start(self, port: int = 0) -> None:
        # backlog as showcase serve's: a burst of connections must not wait for SYN retries
        self._server = await asyncio.start_server(self._connection, self.host, port,
                                                  backlog=2048)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is None:
            return
        self._server.close()
        for conn in list(self._connections):
            conn.drop()  # its handler then ends on its own: see _connection
        if self._connections:
            _, stuck = await asyncio.wait(list(self._connections.values()), timeout=1.0)
            for task in stuck:
                task.cancel()
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> MockServer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        conn = Connection(reader, writer)
        self._connections[conn] = task
        self.stats["open_connections"] += 1
        self.stats["connections"] += 1
        clean = False
        try:
            sock = writer.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while await self._request(conn):
                pass
            clean = not conn.gone
        except (OSError, ClientGone):
            pass  # the client went away: nothing to tell anyone
        except asyncio.CancelledError:
            # Ends the handler quietly: Python 3.11's start_server logs a cancelled
            # handler as "Exception in callback", and nothing awaits this task's result.
            pass
        except Exception:
            log.exception("mock team %s: unexpected error", self.config.model)
        finally:
            self.stats["open_connections"] -= 1
            del self._connections[conn]
            if clean:
                writer.close()
            else:
                writer.transport.abort()

    async def _request(self, conn: Connection) -> bool:
        """Serve one request; True to keep the connection for the next."""
        try:
            head = await conn.read_head()
            if head is None:
                return False
            request = parse_head(head)
            if "transfer-encoding" in request.headers:
                raise HttpError(411, "chunked request bodies are not accepted; "
                                      "send a Content-Length")
            length = request.headers.get("content-length", "0")
            if not (length.isascii() and length.isdigit()):
                raise HttpError(400, "Content-Length must be a number")
            if int(length) > MAX_BODY:
                raise HttpError(413, "the request body is over 1 MiB")
            if request.headers.get("expect", "").lower() == "100-continue":
                await conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.body = await conn.read_body(int(length))
        except HttpError as exc:  # the rest of the request cannot be trusted: close after
            await self._json(conn, exc.status, error_body(exc.status, exc.message), False)
            return False
        keep_alive = await self._route(conn, request)
        return keep_alive and request.keep_alive and not conn.gone

    async def _json(self, conn: Connection, status: int, body: bytes, keep_alive: bool) -> bool:
        await conn.send(response_head(status, "application/json", keep_alive, len(body)) + body)
        return keep_alive

    async def _route(self, conn: Connection, request: Request) -> bool:
        route = (request.method, request.path)
        keep = request.keep_alive
        if route == ("GET", "/mock/stats"):
            return await self._json(conn, 200, orjson.dumps(self.stats), keep)
        config = self.config
        routes = [("GET", "/v1/models"), ("POST", "/v1/chat/completions")]
        if config.dialect != "plain":  # vLLM and llama.cpp serve a tokenizer
            routes.append(("POST", "/tokenize"))
        if route not in routes:
            return await self._json(conn, 404, error_body(
                404, f"no route {request.method} {request.path} on this mock team"), keep)
        if route[1] == "/v1/chat/completions":
            self.stats["requests"] += 1
        if config.api_key is not None and not authorized(request, config.api_key):
            return await self._json(conn, 401, error_body(
                401, "a valid API key is needed: Authorization: Bearer KEY"), keep)
        if route[1] == "/tokenize":
            try:
                body = tokenize(config.dialect, orjson.loads(request.body))
            except orjson.JSONDecodeError:
                body = error_body(400, "the body is not valid JSON")
                return await self._json(conn, 400, body, keep)
            except HttpError as exc:
                return await self._json(conn, exc.status, error_body(exc.status, exc.message),
                                        keep)
            return await self._json(conn, 200, body, keep)
        if route[1] == "/v1/models":
            owner = {"vllm": "vllm", "llamacpp": "llamacpp"}.get(config.dialect, "mockteam")
            return await self._json(conn, 200, orjson.dumps({"object": "list", "data": [
                {"id": config.model, "object": "model", "created": self._started,
                 "owned_by": owner}]}), keep)
        return await self._chat(conn, request, config)

    async def _chat(self, conn: Connection, request: Request, config: MockConfig) -> bool:
        t0 = conn.loop.time()  # the schedule starts once the request is read
        keep = request.keep_alive
        number = self.stats["requests"]
        try:
            body = orjson.loads(request.body)
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                raise HttpError(400, "the body must be a JSON object with a 'messages' list")
            if "mock" in body:
                config = config.with_overrides(body["mock"])
            plan = plan_answer(config, body, number, self.config.seed, self.answers)
        except orjson.JSONDecodeError:
            return await self._json(conn, 400, error_body(400, "the body is not valid JSON"), keep)
        except MockConfigError as exc:
            return await self._json(conn, 400, error_body(400, exc.message), keep)
        except HttpError as exc:
            return await self._json(conn, exc.status, error_body(exc.status, exc.message), keep)
        if config.error_rate and self._rng.random() < config.error_rate:
            return await self._json(conn, 500, error_body(
                500, "mock team: the model server failed (error_rate)"), keep)
        if config.fault == "http_error":
            return await self._json(conn, config.status, error_body(
                config.status, f"mock team: injected HTTP {config.status}"), keep)
        self.stats["active_streams"] += 1
        watcher = conn.loop.create_task(conn.watch())
        try:
            if plan.stream:
                await conn.send(response_head(200, "text/event-stream; charset=utf-8", keep))
                outcome = await self._stream(conn, config, plan, t0)
            else:
                outcome = await self._answer(conn, config, plan, t0, keep)
        except (OSError, ClientGone):
            outcome = _DONE_GONE
        finally:
            self.stats["active_streams"] -= 1
            watcher.cancel()
            await asyncio.wait([watcher])
        if outcome == _DONE_RESET:
            return False
        self.stats[outcome] += 1
        if outcome == _DONE_GONE:
            conn.gone = True
            return False
        if plan.stream:
            await conn.send(b"0\r\n\r\n")
        return keep

    async def _stream(self, conn: Connection, config: MockConfig, plan: Plan,
                      t0: float) -> str:
        wire, out = Wire(config, plan), EventWriter(conn, config.fault == "split")
        gaps, itl = delays(config, plan.rng), config.itl_ms / 1e3
        fault = config.fault
        point = config.fault_after if plan.total is None else min(config.fault_after, plan.total)
        stall_at = min(config.stall_after if config.stall_after is not None else math.inf,
                       point if fault == "stall" else math.inf)
        ends_in_fault = fault in ("error_in_stream", "reset")
        malformed_due = fault == "malformed"
        when = t0 + next(gaps)
        first_at = when
        chunks = iter(plan.chunks)
        chunk = next(chunks, None)
        sent = 0
        events = wire.role()
        while True:
            if sent >= stall_at:
                await conn.pause_until(None)  # until the client goes away
                return _DONE_GONE
            if ends_in_fault and sent >= point:
                if not await conn.pause_until(when):
                    return _DONE_GONE
                if fault == "reset":
                    conn.reset()
                    return _DONE_RESET
                await out.send([wire.error(), DONE])
                return _DONE_OK
            if not await conn.pause_until(when):
                return _DONE_GONE
            if malformed_due and sent >= point:
                events.append(MALFORMED)
                malformed_due = False
            if chunk is not None:
                field, text, count = chunk
                events.append(wire.delta(field, text))
                sent += count
                chunk = next(chunks, None)
                if malformed_due and sent >= point:
                    events.append(MALFORMED)
                    malformed_due = False
            if chunk is None and not ends_in_fault and sent < stall_at:
                now = conn.loop.time()
                timings = wire.timings(sent, first_at - t0, now - first_at + itl if sent else 0)
                await out.send(events + wire.tail(sent, timings, fault != "no_done"))
                return _DONE_OK
            await out.send(events)
            events = []
            when += next(gaps)

    async def _answer(self, conn: Connection, config: MockConfig, plan: Plan,
                      t0: float, keep_alive: bool) -> str:
        """A non-streamed answer, sent whole when its last token would have been."""
        if config.fault in ("huge", "stall") or (
                config.stall_after is not None and plan.total is not None
                and config.stall_after < plan.total):
            await conn.pause_until(None)
            return _DONE_GONE
        chunks = list(plan.chunks)
        itl = config.itl_ms / 1e3
        when = t0 + sum(itertools.islice(delays(config, plan.rng), max(1, len(chunks))))
        if not await conn.pause_until(when):
            return _DONE_GONE
        if config.fault == "reset":
            conn.reset()
            return _DONE_RESET
        if config.fault == "error_in_stream":
            await self._json(conn, 500, error_body(
                500, "mock team: the model failed mid-answer"), keep_alive)
            return _DONE_OK
        wire = Wire(config, plan)
        text: dict[str, str] = {}
        for field, piece, _count in chunks:
            text[field] = text.get(field, "") + piece
        sent = plan.total or 0
        body = wire.completion(text, sent, wire.timings(
            sent, config.ttft_ms / 1e3, when - t0 - config.ttft_ms / 1e3 + itl if sent else 0))
        if config.fault == "malformed":
            body = b'{"choices": [{"message": {"content": "broken'
        head = response_head(200, "application/json", keep_alive, len(body))
        if config.fault != "split":
            await conn.send(head + body)
            return _DONE_OK
        await conn.send(head)
        start = 0
        for cut in [*awkward_cuts(body), len(body)]:
            await conn.send(body[start:cut])
            start = cut
            if not await conn.pause_until(conn.loop.time() + SPLIT_PAUSE_S):
                return _DONE_GONE
        return _DONE_OK


def authorized(request: Request, key: str) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(),
                                                              key.encode())


async def serve_mock(config: MockConfig, host: str = "127.0.0.1", port: int = 0,
                     answers: Mapping[str, tuple[str, str]] | None = None) -> MockServer:
    """Start a mock team on ``host:port`` (0: a free port) in the running event loop."""
    config.validate()
    server = MockServer(config, host, answers)
    await server.start(port)
    return server
