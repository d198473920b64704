"""The show's commands over HTTP, and a lean path that answers them without ASGI.

Every command that is only a check against the state and one durable event (scores,
team status, rounds, the reveal) is described once, in ``engine_commands``. The Starlette
app serves them like any route. ``showcase serve`` also puts ``CommandProtocol`` in front
of uvicorn: an ``HttpToolsProtocol`` that hands every other request to the app as usual,
but answers ``POST`` to these paths itself. It reads the body, checks the token, folds the
command into the head state and queues its event on the log's writer in the callback that
parsed the request, and writes the answer from the callback that resolves the fsync: no
task, no ASGI cycle, no router, no middleware. The answers, errors included, are the
app's, byte for byte in the JSON (tests/test_commandpath.py holds the two paths to that).

Why: through uvicorn's ASGI cycle and Starlette a command cost ~250 us of CPU, most of it
outside showcase, which capped the server at ~4,000 acknowledged commands a second on
two cores against a goal of 20,000 (docs/performance.md, section 1).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any, cast

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from showcase.core import events as ev
from showcase.core.checks import Command
from showcase.core.errors import PayloadTooLarge, ShowcaseError
from showcase.server.table import Commands, EngineCommand, answer, refusal
from showcase.server.web import MAX_BODY, parse_json

log = logging.getLogger(__name__)


class CommandCycle:
    """One command on a connection: what uvicorn's ``RequestResponseCycle`` holds for a
    request, less the ASGI scope, the receive queue and the event it waits on."""

    __slots__ = ("body", "command", "disconnected", "headers", "http_version", "keep_alive",
                 "message_event", "more_body", "params", "path", "response_complete", "role",
                 "started", "too_large", "waiting_for_100_continue")

    def __init__(self, command: EngineCommand, params: dict[str, str], path: str,
                 headers: list[tuple[bytes, bytes]], http_version: str, keep_alive: bool,
                 expect_100_continue: bool) -> None:
        self.command = command
        self.params = params
        self.path = path
        self.headers = headers
        self.http_version = http_version
        self.keep_alive = keep_alive
        self.waiting_for_100_continue = expect_100_continue
        self.body = bytearray()
        self.more_body = True
        self.started = False  # False while pipelined behind a request not answered yet
        self.too_large = False  # its body grew past MAX_BODY before it started
        self.role = ""
        self.response_complete = False
        self.disconnected = False
        self.message_event = _NO_WAITER  # uvicorn sets it when the connection is lost


class _NoWaiter:
    def set(self) -> None:
        return None


_NO_WAITER = _NoWaiter()


def command_protocol(commands_: Commands) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol class, answering ``commands_`` itself."""

    class CommandProtocol(HttpToolsProtocol):
        cycle: Any  # RequestResponseCycle, or CommandCycle while a command is answered
        idle_since: float | None = None  # when the last answer went out; None: busy

        def on_message_begin(self) -> None:
            # uvicorn's, less the ASGI scope: made in _to_app for requests the app serves
            self.url = b""
            self.expect_100_continue = False
            self.headers = []

        def _to_app(self) -> None:
            url, headers, expect = self.url, self.headers, self.expect_100_continue
            super().on_message_begin()
            self.url, self.expect_100_continue = url, expect
            self.headers = self.scope["headers"] = headers
            super().on_headers_complete()

        def on_headers_complete(self) -> None:
            # A command: POST to a path of the table, spelt without %-escapes (anything
            # else, escaped paths included, goes to the app, which has the same routes).
            if self.parser.get_method() != b"POST" or self.parser.should_upgrade():
                self._to_app()
                return
            raw_path = httptools.parse_url(self.url).path
            found = None if b"%" in raw_path else commands_.match(raw_path.decode("ascii"))
            if found is None:
                self._to_app()
                return
            http_version = self.parser.get_http_version()
            cycle = CommandCycle(*found, raw_path.decode("ascii"), self.headers, http_version,
                                 http_version != "1.0" and self.parser.should_keep_alive(),
                                 self.expect_100_continue)
            existing, self.cycle = self.cycle, cycle
            if existing is None or existing.response_complete:
                self._start(cycle)
            else:  # pipelined behind a request not answered yet: uvicorn starts it then
                self.flow.pause_reading()
                self.pipeline.appendleft((cast(Any, cycle), self.app))

        # Keep-alive: uvicorn arms a timer after every answer and cancels it when the next
        # request arrives, a libuv timer made and dropped per request. Here one timer per
        # idle period checks, when it fires, whether the connection was idle all along.

        def _unset_keepalive_if_required(self) -> None:
            self.idle_since = None  # busy; an armed timer finds out when it fires

        def on_response_complete(self) -> None:
            self.server_state.total_requests += 1
            if self.transport.is_closing():
                return
            self.flow.resume_reading()
            if self.pipeline:
                cycle, app = self.pipeline.pop()
                self._start_asgi_task(cycle, app)
                return
            self.idle_since = self.loop.time()
            if self.timeout_keep_alive_task is None:
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler)

        def timeout_keep_alive_handler(self) -> None:
            self.timeout_keep_alive_task = None
            if self.idle_since is None:
                return  # busy: armed again when its answer goes out
            left = self.idle_since + self.timeout_keep_alive - self.loop.time()
            if left > 0:
                self.timeout_keep_alive_task = self.loop.call_later(
                    left, self.timeout_keep_alive_handler)
            elif not self.transport.is_closing():
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            super().connection_lost(exc)
            if self.timeout_keep_alive_task is not None:
                self.timeout_keep_alive_task.cancel()
                self.timeout_keep_alive_task = None

        def _start_asgi_task(self, cycle: Any, app: Any) -> None:
            # uvicorn calls this from on_response_complete for the next pipelined request:
            # for a command, on the next turn of the loop, so that a run of commands
            # refused at once does not answer each other in ever deeper recursion.
            if isinstance(cycle, CommandCycle):
                self.loop.call_soon(self._start, cycle)
            else:
                super()._start_asgi_task(cycle, app)

        def _start(self, cycle: CommandCycle) -> None:
            # The app's order: the caller's role, then the body's size, then the body.
            cycle.started = True
            try:
                authorization = _header(cycle.headers, b"authorization")
                cycle.role = commands_.role(
                    cycle.command, authorization.decode("latin-1") if authorization else None)
            except Exception as exc:
                self._refuse(cycle, exc)  # the body, if it comes, is read and dropped
                return
            length = _header(cycle.headers, b"content-length")
            if cycle.too_large or (
                    length is not None and (not length.isdigit() or int(length) > MAX_BODY)):
                cycle.keep_alive = False  # the body is not read: the connection cannot go on
                self._refuse(cycle, PayloadTooLarge(
                    f"the body is too large (at most {MAX_BODY} bytes)"))
            elif not cycle.more_body:
                self._run(cycle)
            elif cycle.waiting_for_100_continue:
                cycle.waiting_for_100_continue = False
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

        def on_body(self, body: bytes) -> None:
            cycle = self.cycle
            if not isinstance(cycle, CommandCycle):
                super().on_body(body)
                return
            if cycle.response_complete or cycle.too_large:
                return
            cycle.body += body
            if len(cycle.body) > MAX_BODY:
                cycle.too_large = True
                cycle.body = bytearray()
                if cycle.started:  # else refused in its turn, after the requests before it
                    cycle.keep_alive = False
                    self._refuse(cycle, PayloadTooLarge(
                        f"the body is too large (at most {MAX_BODY} bytes)"))

        def on_message_complete(self) -> None:
            cycle = self.cycle
            if not isinstance(cycle, CommandCycle):
                super().on_message_complete()
                return
            if cycle.response_complete:
                return
            cycle.more_body = False
            if cycle.started:
                self._run(cycle)

        def _run(self, cycle: CommandCycle) -> None:
            engine = commands_.engine
            try:
                actor, fn, args = commands_.bind(cycle.command, cycle.params, cycle.role,
                                                 _header(cycle.headers, b"x-showcase-user"),
                                                 parse_json(cycle.body))
                if engine.log.shared:  # a refused append is checked again: needs a task
                    task = self.loop.create_task(self._run_shared(cycle, actor, fn, args))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
                    return
                submitted = engine.submit(actor, fn, *args)
                assert submitted is not None, "only a shared log asks for a rebuild"
            except Exception as exc:  # every error is an answer, as in the app
                self._refuse(cycle, exc)
                return
            event, durable = submitted
            durable.add_done_callback(lambda f: self._durable(cycle, event, f))

        def _durable(self, cycle: CommandCycle, event: ev.Event,
                     durable: asyncio.Future[None]) -> None:
            if durable.cancelled():
                self._refuse(cycle, asyncio.CancelledError())
            elif (exc := durable.exception()) is not None:
                self._refuse(cycle, exc)
            else:
                self._write(cycle, 201, answer(event.seq, event.type))

        async def _run_shared(self, cycle: CommandCycle, actor: str,
                              fn: Callable[..., Command], args: tuple[Any, ...]
                              ) -> None:
            try:
                event = await commands_.engine.run(actor, fn, *args)
            except Exception as exc:
                self._refuse(cycle, exc)
                return
            self._write(cycle, 201, answer(event.seq, event.type))

        def _refuse(self, cycle: CommandCycle, exc: BaseException) -> None:
            if not isinstance(exc, ShowcaseError):
                log.error("unexpected error on POST %s", cycle.path, exc_info=exc)
            status, body = refusal(exc)
            self._write(cycle, status, body)

        def _write(self, cycle: CommandCycle, status: int, body: bytes) -> None:
            if cycle.response_complete:
                return
            cycle.response_complete = True
            if cycle.disconnected or self.transport.is_closing():
                return  # recorded all the same, as in the app: the answer has nowhere to go
            head = [STATUS_LINE[status]]
            for name, value in self.server_state.default_headers:
                head += [name, b": ", value, b"\r\n"]
            head.append(b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body))
            if not cycle.keep_alive:
                head.append(b"connection: close\r\n")
            head += [b"\r\n", body]
            self.transport.write(b"".join(head))
            if self.access_log:
                self.access_logger.info('%s:%s - "POST %s HTTP/%s" %d',
                                        *(self.client or ("-", 0)), cycle.path,
                                        cycle.http_version, status)
            if not cycle.keep_alive:
                self.transport.close()
            self.on_response_complete()

    return CommandProtocol


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None
