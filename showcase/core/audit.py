"""The audit: could the commands have produced this log, event by event?

A log that folds is not yet a log that was earned: a score entered after its round was
published, a value outside its criterion's scale, a changed "previous" value or an extra
field all fold without complaint. ``check_event`` re-runs, against the state just before an
event, the very command that records events of its type, with the request that command
would have needed, and requires it to produce exactly that event: same type, same data. A
forged or altered event fails with its seq and the command's own refusal, or with the
field that differs.

What only the server records (health checks, measured requests, demo answers) is checked
by the same functions the server uses to record it. Benchmark events are checked by the
fold alone: the score a run enters is a ``score_entered`` event, audited like any score.
``show_configured`` comes from the show file at start, never from a request.

Pure: ``showcase verify`` and ``showcase import`` run it on an export; nothing here reads
a file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from showcase.core import ballots, commands, disclosure, graphics, reveal
from showcase.core import events as ev
from showcase.core.checks import Command
from showcase.core.errors import LogError, ShowcaseError
from showcase.core.state import State

#: Who may record each kind of event. The server's command table (server/table.py) grants
#: the same roles; tests/test_audit.py holds the two together.
ROLES: dict[str, tuple[str, ...]] = {
    ev.SCORE_ENTERED: ("operator", "judge"),
    ev.TEAM_ADDED: ("operator",),
    ev.TEAM_DISQUALIFIED: ("operator",),
    ev.TEAM_WITHDRAWN: ("operator",),
    ev.TEAM_REINSTATED: ("operator",),
    ev.ROUND_STARTED: ("operator",),
    ev.JURY_DECIDED: ("operator",),
    ev.ROUND_PUBLISHED: ("operator",),
    ev.ROUND_FROZEN: ("operator",),
    ev.ROUND_UNFROZEN: ("operator",),
    ev.REVEAL_STEP: ("operator", "presenter"),
    ev.REVEAL_ARMED: ("operator", "presenter"),
    ev.REVEAL_SPEED: ("operator", "presenter"),
    ev.REVEAL_LOCKED: ("operator",),
    ev.DEMO_STARTED: ("operator",),
    ev.DEMO_CANCELLED: ("operator",),
    ev.VOTING_OPENED: ("operator",),
    ev.VOTING_CLOSED: ("operator",),
    ev.SHOW_CONFIGURED: ("showfile",),  # the engine, from the show file at start
    ev.DEMO_RESULT: ("server",),
    ev.REQUEST_MEASURED: ("server",),
    ev.TEAM_HEALTH: ("server",),
    ev.LOG_PUBLISHED: ("operator",),
    ev.GRAPHIC_SET: ("operator",),
}
FOLD_ONLY = frozenset({ev.BENCH_STARTED, ev.BENCH_ITEM, ev.BENCH_TEAM_FAILED, ev.BENCH_PAUSED,
                       ev.BENCH_RESUMED, ev.BENCH_CANCELLED, ev.BENCH_FINISHED,
                       ev.BENCH_IMPORTED})


class AuditError(LogError):
    """An event that no command could have produced at that point of the log."""

    def __init__(self, seq: int, problem: str) -> None:
        super().__init__(f"seq {seq}: {problem}")
        self.seq = seq
        self.problem = problem


def _pick(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: data[k] for k in keys if k in data}


def _score(state: State, actor: str, d: dict[str, Any], _: float) -> Command:
    body = _pick(d, "criterion", "team", "value", "judge", "round", "reason")
    return commands.enter_score(state, actor, body)  # the actor: whose sheets are whose


def _status(event_type: str) -> Callable[[State, str, dict[str, Any], float], Command]:
    def redo(state: State, role: str, d: dict[str, Any], _: float) -> Command:
        return commands.change_status(state, event_type, d.get("team", ""),
                                      _pick(d, "reason", "announce"))
    return redo


def _team_added(state: State, role: str, d: dict[str, Any], _: float) -> Command:
    team = d.get("team")
    body = {**(team if isinstance(team, dict) else {}), **_pick(d, "round", "reason")}
    return commands.add_team(state, body)


def _round(fn: commands.RoundCommand, *keys: str
           ) -> Callable[[State, str, dict[str, Any], float], Command]:
    def redo(state: State, role: str, d: dict[str, Any], _: float) -> Command:
        return fn(state, d.get("round", ""), _pick(d, *keys))
    return redo


def _reveal_step(state: State, role: str, d: dict[str, Any], ts: float) -> Command:
    body = {"round": d.get("round"), "to": d.get("step")}
    return reveal.move(state, d.get("action", ""), role, body, now=ts)


def _demo_started(state: State, role: str, d: dict[str, Any], _: float) -> Command:
    body = _pick(d, "prompt", "teams", "max_tokens", "temperature")
    if d.get("system"):
        body["system"] = d["system"]
    return commands.start_demo(state, body)


def _rest(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in keys}


REDO: dict[str, Callable[[State, str, dict[str, Any], float], Command]] = {
    ev.SCORE_ENTERED: _score,
    ev.TEAM_ADDED: _team_added,
    ev.TEAM_DISQUALIFIED: _status(ev.TEAM_DISQUALIFIED),
    ev.TEAM_WITHDRAWN: _status(ev.TEAM_WITHDRAWN),
    ev.TEAM_REINSTATED: _status(ev.TEAM_REINSTATED),
    ev.ROUND_STARTED: _round(commands.start_round),
    ev.JURY_DECIDED: _round(commands.decide_jury, "order", "reason"),
    ev.ROUND_PUBLISHED: _round(commands.publish_round),
    ev.ROUND_FROZEN: _round(commands.freeze_round),
    ev.ROUND_UNFROZEN: _round(commands.unfreeze_round, "reason"),
    ev.REVEAL_STEP: _reveal_step,
    ev.REVEAL_ARMED: lambda s, role, d, _: reveal.arm(s, role, {"round": d.get("round"),
                                                                "to": d.get("step")}),
    ev.REVEAL_LOCKED: lambda s, role, d, _: reveal.lock(s, _pick(d, "round", "locked",
                                                                 "reason")),
    ev.REVEAL_SPEED: lambda s, role, d, _: reveal.speed(s, role, _pick(d, "round", "speed")),
    ev.DEMO_STARTED: _demo_started,
    ev.DEMO_CANCELLED: lambda s, role, d, _: commands.cancel_demo(s, _pick(d, "demo",
                                                                           "reason")),
    ev.DEMO_RESULT: lambda s, role, d, _: commands.demo_result(
        s, d.get("demo", 0), d.get("team", ""), _rest(d, "demo", "team")),
    ev.REQUEST_MEASURED: lambda s, role, d, _: commands.request_measured(
        s, d.get("team", ""), _rest(d, "team")),
    ev.TEAM_HEALTH: lambda s, role, d, _: commands.team_health(s, d.get("team", ""),
                                                               _rest(d, "team")),
    ev.VOTING_OPENED: lambda s, role, d, _: ballots.open_voting(
        s, d.get("round", ""), {**_rest(d, "round", "teams", "rules"), **d.get("rules", {})}),
    # The tally itself is checked against the published vote log (votes.ndjson and its
    # hash), not here: the core has no votes. Here: the points enter the criterion as
    # the rule says, with the reason a kept voter needs.
    ev.VOTING_CLOSED: lambda s, role, d, _: ballots.close_voting(
        s, d.get("round", ""), {"keep_voters": d.get("kept", []), "reason": d.get("reason", "")},
        _pick(d, "votes", "log_hash", "tally", "excluded")),
    ev.LOG_PUBLISHED: _round(disclosure.publish_log),
    ev.GRAPHIC_SET: lambda s, role, d, _: graphics.set_graphic(s, d.get("graphic", ""),
                                                               d.get("on") is True, {}),
}


def role_of(actor: str) -> str:
    """``operator:desk-1`` -> ``operator``; ``server:bench`` -> ``server``."""
    return actor.partition(":")[0]


def check_event(state: State, event: ev.Event) -> None:
    """Raise AuditError unless a command could have produced ``event`` on ``state``."""
    if event.seq != state.seq + 1:
        problem = ("duplicate seq: the log already holds it" if event.seq <= state.seq
                   else f"seq {state.seq + 1} to {event.seq - 1} are missing: the log has a gap")
        raise AuditError(event.seq, problem)
    if event.type in FOLD_ONLY:
        return
    if event.type == ev.SHOW_CONFIGURED:
        if event.actor not in ROLES[ev.SHOW_CONFIGURED]:
            raise AuditError(event.seq, "the show file is configured by the server at start "
                             f"(actor 'showfile'), not by {event.actor!r}")
        return
    redo = REDO.get(event.type)
    if redo is None:
        raise AuditError(event.seq, f"unknown event type {event.type!r}")
    role = role_of(event.actor)
    allowed = ROLES[event.type]
    if role not in allowed:
        raise AuditError(event.seq, f"{event.type} is recorded by {' or '.join(allowed)}, "
                         f"not by {event.actor!r}")
    try:
        # A score is re-checked with its actor (a judge enters only their own sheets).
        who = event.actor if event.type == ev.SCORE_ENTERED else role
        event_type, data = redo(state, who, event.data, event.ts)
    except ShowcaseError as exc:
        detail = f" ({exc.detail})" if exc.detail else ""
        raise AuditError(event.seq, f"no command could record this {event.type} here: "
                         f"{exc.message}{detail}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise AuditError(event.seq, f"{event.type} is malformed: {exc!r}") from None
    if event_type != event.type:
        raise AuditError(event.seq, f"the command records {event_type}, not {event.type}")
    data = orjson.loads(orjson.dumps(data))  # as the log stores it: tuples are lists
    if data != event.data:
        raise AuditError(event.seq, f"{event.type} differs from what its command records: "
                         f"{_difference(data, event.data)}")


def _difference(want: dict[str, Any], got: dict[str, Any]) -> str:
    for key in sorted(set(want) | set(got)):
        if key not in got:
            return f"field {key!r} is missing"
        if key not in want:
            return f"field {key!r} is not one the command records"
        if want[key] != got[key]:
            return f"field {key!r} is {_short(got[key])}, the command gives {_short(want[key])}"
    return "the fields are ordered or typed differently"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def audit(events: Iterable[ev.Event], state: State | None = None) -> State:
    """Check and fold every event in order; the state after the last. Raises AuditError."""
    state = state if state is not None else State()
    for event in events:
        check_event(state, event)
        try:
            state.apply(event)
        except ShowcaseError as exc:
            raise AuditError(event.seq, exc.message) from None
    return state
