"""The command table: every ``POST`` that is a check against the state and one durable
event, described once (path, roles, the words of a refusal, the core command it calls).

The Starlette app serves these routes, and the lean command path answers the same table
without the ASGI cycle (commandpath.py); both take their answers and refusals from here.
Each command declares its body's type (core/bodies.py): ``bind`` decodes the request into
it, so a malformed body is refused before the command sees the state, with the same words
on both paths, and /openapi.json publishes the same types (server/openapi.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from showcase.core import bodies, commands, findings, graphics, reveal
from showcase.core import events as ev
from showcase.core.checks import Command
from showcase.core.decode import Body, decode_body
from showcase.core.egress import EgressPolicy
from showcase.core.errors import InvalidRequest, NotPermitted, ShowcaseError
from showcase.runtime.engine import Engine
from showcase.server.auth import Caller, Tokens, require
from showcase.server.hosts import resolve_endpoint
from showcase.server.web import status_of

USER_RE = re.compile(r"^[\w .@-]{1,64}$")
KEY_RE = re.compile(rb"^[A-Za-z0-9_.:-]{1,64}$")

# (params, role, actor, body) -> the engine command and its arguments after the state
Bind = Callable[[dict[str, str], str, str, Any],
                tuple[Callable[..., Command], tuple[Any, ...]]]
# (arguments, seconds) -> the arguments with what the edge looked up for the core to check
Prepare = Callable[[tuple[Any, ...], float], Awaitable[tuple[Any, ...]]]


@dataclass(frozen=True, slots=True)
class EngineCommand:
    path: str  # a Starlette path: "/api/teams/{team}/disqualify"
    roles: tuple[str, ...]
    what: str  # "entering a score": the words of a refusal
    body: type[Body]  # the request body's declared type
    bind: Bind
    event: str  # the type of the event it appends
    # I/O the pure command needs done first (an endpoint's host looked up), within the
    # command's deadline; None for almost every command
    prepare: Prepare | None = None


def engine_commands(egress: EgressPolicy) -> list[EngineCommand]:
    """Every ``POST`` that is a check against the state and one event, nothing else;
    ``egress`` is the show file's rule for the endpoints and keys of teams added."""
    operator, stage = ("operator",), ("operator", "presenter")
    table = [
        EngineCommand("/api/scores", ("operator", "judge"), "entering a score",
                      bodies.ScoreBody,
                      # the actor: a judge's own token enters that judge's sheets only
                      lambda p, role, actor, body: (commands.enter_score, (actor, body)),
                      ev.SCORE_ENTERED),
        EngineCommand("/api/teams", operator, "adding a team", bodies.TeamBody,
                      lambda p, role, actor, body: (commands.add_team, (body, egress)),
                      ev.TEAM_ADDED, resolve_endpoint),
    ]
    for verb, doing, event_type in (("disqualify", "disqualifying", ev.TEAM_DISQUALIFIED),
                                    ("withdraw", "withdrawing", ev.TEAM_WITHDRAWN),
                                    ("reinstate", "reinstating", ev.TEAM_REINSTATED)):
        table.append(EngineCommand(f"/api/teams/{{team}}/{verb}", operator, f"{doing} a team",
                                   bodies.StatusBody, _team_status(event_type), event_type))
    for verb, what, body, fn, event_type in (
            ("start", "starting a round", bodies.RoundBody, commands.start_round,
             ev.ROUND_STARTED),
            ("jury", "recording a jury decision", bodies.JuryBody, commands.decide_jury,
             ev.JURY_DECIDED),
            ("publish", "publishing a round", bodies.RoundBody, commands.publish_round,
             ev.ROUND_PUBLISHED),
            ("freeze", "freezing a round", bodies.RoundBody, commands.freeze_round,
             ev.ROUND_FROZEN),
            ("unfreeze", "unfreezing a round", bodies.UnfreezeBody, commands.unfreeze_round,
             ev.ROUND_UNFROZEN)):
        table.append(EngineCommand(f"/api/rounds/{{round}}/{verb}", operator, what, body,
                                   _round_command(fn), event_type))
    table += [
        EngineCommand("/api/reveal/arm", stage, "the reveal's arm", bodies.ArmBody,
                      lambda p, role, actor, body: (reveal.arm, (role, body)),
                      ev.REVEAL_ARMED),
        EngineCommand("/api/reveal/speed", stage, "the reveal's speed", bodies.SpeedBody,
                      lambda p, role, actor, body: (reveal.speed, (role, body)),
                      ev.REVEAL_SPEED),
        EngineCommand("/api/reveal/lock", operator, "the reveal's lock", bodies.LockBody,
                      lambda p, role, actor, body: (reveal.lock, (body,)), ev.REVEAL_LOCKED),
    ]
    table.append(EngineCommand("/api/provenance/announce", operator,
                               "announcing a provenance finding", findings.AnnounceBody,
                               lambda p, role, actor, body: (findings.announce, (body,)),
                               ev.PROVENANCE_ANNOUNCED))
    for action in ("next", "back", "goto", "ff", "reset"):
        table.append(EngineCommand(f"/api/reveal/{action}", stage, f"the reveal's {action}",
                                   bodies.MoveBody, _reveal_move(action), ev.REVEAL_STEP))
    for verb, doing, on in (("take", "taking", True), ("clear", "clearing", False)):
        table.append(EngineCommand(f"/api/graphics/{{graphic}}/{verb}", operator,
                                   f"{doing} a graphic", bodies.GraphicBody,
                                   _graphic(on), ev.GRAPHIC_SET))
    return table


def _graphic(on: bool) -> Bind:
    return lambda p, role, actor, body: (graphics.set_graphic, (p["graphic"], on, body))


def _team_status(event_type: str) -> Bind:
    return lambda p, role, actor, body: (commands.change_status,
                                         (event_type, p["team"], body))


def _round_command(fn: commands.RoundCommand) -> Bind:
    return lambda p, role, actor, body: (fn, (p["round"], body))


def _reveal_move(action: str) -> Bind:
    # The press's time, read here at the edge: the core reads no clock.
    return lambda p, role, actor, body: (reveal.move, (action, role, body, time.time()))


def actor_of(caller: Caller | str, user: bytes | None) -> str:
    """Who the log says did it: ``judge:kim`` for a judge's own token, else ``role:user``
    from the X-Showcase-User header (raw bytes, UTF-8 such as 김지원), else the role."""
    if isinstance(caller, str):
        caller = Caller(caller)
    name = user.decode("utf-8", "replace").strip() if user else ""
    if name and not USER_RE.match(name):
        raise InvalidRequest("X-Showcase-User must be a short name (letters, digits, ' .@-')")
    if caller.judge is not None:
        if name and name != caller.judge:
            raise NotPermitted(f"this token is judge {caller.judge!r}'s, not {name!r}'s",
                               "leave out X-Showcase-User, or send this judge's own id")
        return f"{caller.role}:{caller.judge}"
    return f"{caller.role}:{name}" if name else caller.role


def key_of(header: bytes | None) -> str:
    """The request's Idempotency-Key ('' without one): a retry with the same key gets the
    first answer and records nothing more."""
    if not header:
        return ""
    if not KEY_RE.match(header):
        raise InvalidRequest("Idempotency-Key must be 1 to 64 letters, digits, '-', '_', "
                             "'.' or ':'", "a UUID, for example; the same one for each retry")
    return header.decode("ascii")


class Commands:
    """The table with the engine and the tokens: what both paths call."""

    def __init__(self, engine: Engine, tokens: Tokens) -> None:
        self.engine = engine
        self.tokens = tokens
        self.table = engine_commands(engine.show.egress())
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

    def caller(self, command: EngineCommand, authorization: str | None) -> Caller:
        """The caller, if its role may send ``command``; checked before the body is read."""
        caller = self.tokens.caller(authorization)
        require(caller.role, command.roles, command.what)
        return caller

    def bind(self, command: EngineCommand, params: dict[str, str], caller: Caller,
             user: bytes | None, body: Any
             ) -> tuple[str, Callable[..., Command], tuple[Any, ...]]:
        """The actor, the engine command and its arguments; ``body`` (parsed JSON) is
        decoded into the command's declared type, or refused with a 400 naming the field."""
        actor = actor_of(caller, user)
        fn, args = command.bind(params, caller.role, actor, decode_body(body, command.body))
        return actor, fn, args

    async def run(self, command: EngineCommand, actor: str, fn: Callable[..., Command],
                  args: tuple[Any, ...], key: str) -> ev.Event:
        """Run a bound command within the show's command deadline; with ``key``, a retry
        is answered with the first event."""
        deadline = self.engine.show.command_deadline
        if command.prepare is not None:
            started = time.monotonic()
            args = await command.prepare(args, deadline)
            deadline = max(deadline - (time.monotonic() - started), 0.001)
        event = await self.engine.run(actor, fn, *args, key=key, timeout=deadline)
        return same_command(event, command.event, key)


def same_command(event: ev.Event, expected: str, key: str) -> ev.Event:
    """``event``, the answer to a command that appends an ``expected`` event; refused
    when ``key`` found the event of another command (a key reused by mistake)."""
    if event.type != expected:
        raise InvalidRequest(f"Idempotency-Key {key!r} was used for another command "
                             f"(seq {event.seq}, {event.type})",
                             "use a new key for each command, the same for its retries")
    return event


def answer(seq: int, event_type: str) -> bytes:
    return orjson.dumps({"seq": seq, "type": event_type})


def refusal(exc: BaseException) -> tuple[int, bytes]:
    """The status and body the app's exception handlers give for ``exc``."""
    if isinstance(exc, ShowcaseError):
        return status_of(exc), orjson.dumps(exc.to_json())
    return 500, orjson.dumps({
        "error": "internal error; nothing was recorded unless a seq was returned",
        "detail": type(exc).__name__})
