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
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from showcase import commands, reveal
from showcase import events as ev
from showcase.auth import Tokens, require
from showcase.engine import Engine
from showcase.errors import BadRequest, PayloadTooLarge, ShowcaseError
from showcase.web import MAX_BODY, parse_json

log = logging.getLogger(__name__)

USER_RE = re.compile(r"^[\w .@-]{1,64}$")

# (params, role, body) -> the engine command and its arguments after the state
Bind = Callable[[dict[str, str], str, Any], tuple[Callable[..., commands.Command], tuple[Any, ...]]]


@dataclass(frozen=True, slots=True)
class EngineCommand:
    path: str  # a Starlette path: "/api/teams/{team}/disqualify"
    roles: tuple[str, ...]
    what: str  # "entering a score": the words of a refusal
    bind: Bind


def engine_commands() -> list[EngineCommand]:
    """Every ``POST`` that is a check against the state and one event, nothing else."""
    operator, stage = ("operator",), ("operator", "presenter")
    table = [
        EngineCommand("/api/scores", ("operator", "judge"), "entering a score",
                      lambda p, role, body: (commands.enter_score, (role, body))),
        EngineCommand("/api/teams", operator, "adding a team",
                      lambda p, role, body: (commands.add_team, (body,))),
    ]
    for verb, doing, event_type in (("disqualify", "disqualifying", ev.TEAM_DISQUALIFIED),
                                    ("withdraw", "withdrawing", ev.TEAM_WITHDRAWN),
                                    ("reinstate", "reinstating", ev.TEAM_REINSTATED)):
        table.append(EngineCommand(f"/api/teams/{{team}}/{verb}", operator, f"{doing} a team",
                                   _team_status(event_type)))
    for verb, what, fn in (("start", "starting a round", commands.start_round),
                           ("jury", "recording a jury decision", commands.decide_jury),
                           ("publish", "publishing a round", commands.publish_round),
                           ("freeze", "freezing a round", commands.freeze_round),
                           ("unfreeze", "unfreezing a round", commands.unfreeze_round)):
        table.append(EngineCommand(f"/api/rounds/{{round}}/{verb}", operator, what,
                                   _round_command(fn)))
    table += [
        EngineCommand("/api/reveal/arm", stage, "the reveal's arm",
                      lambda p, role, body: (reveal.arm, (role, body))),
        EngineCommand("/api/reveal/speed", stage, "the reveal's speed",
                      lambda p, role, body: (reveal.speed, (role, body))),
        EngineCommand("/api/reveal/lock", operator, "the reveal's lock",
                      lambda p, role, body: (reveal.lock, (body,))),
    ]
    for action in ("next", "back", "goto", "ff", "reset"):
        table.append(EngineCommand(f"/api/reveal/{action}", stage, f"the reveal's {action}",
                                   _reveal_move(action)))
    return table


def _team_status(event_type: str) -> Bind:
    return lambda p, role, body: (commands.change_status, (event_type, p["team"], body))


def _round_command(fn: commands.RoundCommand) -> Bind:
    return lambda p, role, body: (fn, (p["round"], body))


def _reveal_move(action: str) -> Bind:
    return lambda p, role, body: (reveal.move, (action, role, body))


def actor_of(role: str, user: bytes | None) -> str:
    """``role:user`` from the X-Showcase-User header (raw bytes, UTF-8 such as 김지원)."""
    name = user.decode("utf-8", "replace").strip() if user else ""
    if name and not USER_RE.match(name):
        raise BadRequest("X-Showcase-User must be a short name (letters, digits, ' .@-')")
    return f"{role}:{name}" if name else role


class Commands:
    """The table with the engine and the tokens: what both paths call."""

    def __init__(self, engine: Engine, tokens: Tokens) -> None:
        self.engine = engine
        self.tokens = tokens
        self.table = engine_commands()
        self._static = {c.path: c for c in self.table if "{" not in c.path}
        self._templates = [(c.path.split("/"), c) for c in self.table if "{" in c.path]

    def match(self, path: str) -> tuple[EngineCommand, dict[str, str]] | None:
        found = self._static.get(path)
        if found is not None:
            return found, {}
        parts = path.split("/")
        for template, command in self._templates:
            if len(template) != len(parts):
                continue
            params: dict[str, str] = {}
            for want, got in zip(template, parts, strict=True):
                if want.startswith("{"):
                    if not got:
                        break
                    params[want[1:-1]] = got
                elif want != got:
                    break
            else:
                return command, params
        return None

    def role(self, command: EngineCommand, authorization: str | None) -> str:
        """The caller's role, if it may send ``command``; checked before the body is read."""
        role = self.tokens.role_of(authorization)
        require(role, command.roles, command.what)
        return role

    def bind(self, command: EngineCommand, params: dict[str, str], role: str,
             user: bytes | None, body: Any
             ) -> tuple[str, Callable[..., commands.Command], tuple[Any, ...]]:
        """The actor, the engine command and its arguments."""
        actor = actor_of(role, user)
        fn, args = command.bind(params, role, body)
        return actor, fn, args


def answer(seq: int, event_type: str) -> bytes:
    return orjson.dumps({"seq": seq, "type": event_type})


def refusal(exc: BaseException) -> tuple[int, bytes]:
    """The status and body the app's exception handlers give for ``exc``."""
    if isinstance(exc, ShowcaseError):
        return exc.status, orjson.dumps(exc.to_json())
    return 500, orjson.dumps({
        "error": "internal error; nothing was recorded unless a seq was returned",
        "detail": type(exc).__name__})


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
                              fn: Callable[..., commands.Command], args: tuple[Any, ...]
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
