"""Events: every fact of the show, with its seq, and how each one looks to each role.

An event is never edited or deleted; a correction or an undo is a new event. What a
connection of a given view receives for an event is decided here, from the event alone,
so replaying history to a reconnecting viewer needs no state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

SHOW_CONFIGURED = "show_configured"
TEAM_ADDED = "team_added"
ROUND_STARTED = "round_started"
SCORE_ENTERED = "score_entered"
TEAM_DISQUALIFIED = "team_disqualified"
TEAM_WITHDRAWN = "team_withdrawn"
TEAM_REINSTATED = "team_reinstated"
JURY_DECIDED = "jury_decided"
ROUND_PUBLISHED = "round_published"
# Live demos and measurement (the proxy): public as soon as they happen.
DEMO_STARTED = "demo_started"
DEMO_RESULT = "demo_result"
DEMO_CANCELLED = "demo_cancelled"
REQUEST_MEASURED = "request_measured"
TEAM_HEALTH = "team_health"
# The reveal (reveal.py).
ROUND_FROZEN = "round_frozen"
ROUND_UNFROZEN = "round_unfrozen"
REVEAL_STEP = "reveal_step"
REVEAL_ARMED = "reveal_armed"
REVEAL_LOCKED = "reveal_locked"
REVEAL_SPEED = "reveal_speed"
# Benchmark runs (bench/runs.py, bench/commands.py).
BENCH_STARTED = "bench_started"
BENCH_ITEM = "bench_item"
BENCH_TEAM_FAILED = "bench_team_failed"
BENCH_PAUSED = "bench_paused"
BENCH_RESUMED = "bench_resumed"
BENCH_CANCELLED = "bench_cancelled"
BENCH_FINISHED = "bench_finished"
BENCH_IMPORTED = "bench_imported"

EVENT_TYPES = frozenset({
    SHOW_CONFIGURED, TEAM_ADDED, ROUND_STARTED, SCORE_ENTERED, TEAM_DISQUALIFIED,
    TEAM_WITHDRAWN, TEAM_REINSTATED, JURY_DECIDED, ROUND_PUBLISHED,
    DEMO_STARTED, DEMO_RESULT, DEMO_CANCELLED, REQUEST_MEASURED, TEAM_HEALTH,
    ROUND_FROZEN, ROUND_UNFROZEN, REVEAL_STEP, REVEAL_ARMED, REVEAL_LOCKED, REVEAL_SPEED,
    BENCH_STARTED, BENCH_ITEM, BENCH_TEAM_FAILED, BENCH_PAUSED, BENCH_RESUMED,
    BENCH_CANCELLED, BENCH_FINISHED, BENCH_IMPORTED,
})

# Views, from least to most privileged. Each role reads one of these.
PUBLIC = "public"
JUDGE = "judge"
PRESENTER = "presenter"
OPERATOR = "operator"
VIEWS = (PUBLIC, JUDGE, PRESENTER, OPERATOR)

SEALED = "sealed"


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    ts: float
    type: str
    actor: str
    data: dict[str, Any]
    # Wire bytes per view, filled once on first use and shared by every connection.
    _wire: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts": self.ts, "type": self.type, "actor": self.actor,
                "data": self.data}

    def wire(self, view: str) -> bytes:
        """The message for a connection of ``view``: serialised once, then reused."""
        cached = self._wire.get(view)
        if cached is None:
            cached = orjson.dumps(self.message(view))
            self._wire[view] = cached
        return cached

    def message(self, view: str) -> dict[str, Any]:
        if view == OPERATOR:
            return self.to_json()
        data = presenter_data(self) if view == PRESENTER else public_data(self)
        if data is None:
            return {"seq": self.seq, "ts": self.ts, "type": SEALED, "data": {}}
        return {"seq": self.seq, "ts": self.ts, "type": self.type, "data": data}


def public_data(event: Event) -> dict[str, Any] | None:
    """What anyone may know of an event, or None when it is sealed."""
    data = event.data
    if event.type == SHOW_CONFIGURED:
        cfg = data["config"]
        return {
            "show": cfg["show"],
            "teams": [_public_team(t) for t in cfg["teams"]],
            "criteria": [_public_criterion(c) for c in cfg["criteria"]],
            "rounds": [{k: r[k] for k in ("id", "name_ko", "name_en")} for r in cfg["rounds"]],
        }
    if event.type == TEAM_ADDED:
        return {"team": _public_team(data["team"]), "round": data["round"]}
    if event.type == ROUND_STARTED:
        return {"round": data["round"]}
    if event.type in (TEAM_DISQUALIFIED, TEAM_WITHDRAWN, TEAM_REINSTATED):
        if not data.get("announce"):
            return None
        return {k: data[k] for k in ("team", "round", "reason")}
    if event.type == ROUND_PUBLISHED:
        return data
    if event.type in (DEMO_STARTED, DEMO_RESULT, DEMO_CANCELLED):
        return data  # what happens on stage is public as it happens
    if event.type == REQUEST_MEASURED:
        return {k: v for k, v in data.items() if k != "actor"}  # who asked is not public
    if event.type in (ROUND_FROZEN, ROUND_UNFROZEN):
        return {"round": data["round"]}  # the script and the results stay sealed
    if event.type == REVEAL_STEP:
        # Only the step shown now: never the total, the next step or the script.
        return {k: data[k] for k in ("round", "step", "from", "action", "reveal",
                                     "publication") if k in data}
    if event.type == REVEAL_SPEED:
        return data
    if event.type == BENCH_STARTED:
        return {k: v for k, v in data.items() if k != "actor"}
    if event.type == BENCH_ITEM:
        # Progress is public; whether an answer was right is sealed when the run feeds a
        # round's scores (``public`` false), like any score before its reveal.
        if data.get("public"):
            return data
        return {k: data[k] for k in ("run", "team", "suite", "item", "status", "error")}
    if event.type == BENCH_FINISHED:
        return data if data.get("public") else {"run": data["run"], "public": False}
    if event.type in (BENCH_TEAM_FAILED, BENCH_PAUSED, BENCH_RESUMED, BENCH_CANCELLED):
        return data
    if event.type == TEAM_HEALTH:
        # Up or down is public; the reason may name hosts and ports, which is not.
        return {k: v for k, v in data.items() if k != "error"}
    # Scores, sheets and jury decisions stay sealed until a publication reveals them.
    return None


def presenter_data(event: Event) -> dict[str, Any] | None:
    """The presenter reads ahead: the next step of the reveal, arming and locking."""
    if event.type == REVEAL_STEP:
        public = public_data(event)
        assert public is not None
        return {**public, "next": event.data["next"], "total": event.data["total"]}
    if event.type in (REVEAL_ARMED, REVEAL_LOCKED):
        return event.data
    return public_data(event)


def _public_team(team: dict[str, Any]) -> dict[str, Any]:
    return {k: team[k] for k in ("id", "name_ko", "name_en", "org", "colour") if k in team}


def _public_criterion(crit: dict[str, Any]) -> dict[str, Any]:
    return {k: crit[k] for k in ("id", "name_ko", "name_en", "points")}


def event_from_json(obj: Any, where: str = "") -> Event:
    """Check and build an event read from an export or another log."""
    from showcase.core.errors import LogError

    prefix = f"{where}: " if where else ""
    if not isinstance(obj, dict):
        raise LogError(f"{prefix}an event must be a JSON object")
    missing = [k for k in ("seq", "ts", "type", "actor", "data") if k not in obj]
    if missing:
        raise LogError(f"{prefix}event lacks {', '.join(missing)}")
    if not isinstance(obj["seq"], int) or isinstance(obj["seq"], bool) or obj["seq"] < 1:
        raise LogError(f"{prefix}seq must be a positive integer")
    if obj["type"] not in EVENT_TYPES:
        raise LogError(f"{prefix}unknown event type {obj['type']!r}")
    if not isinstance(obj["data"], dict):
        raise LogError(f"{prefix}data must be a JSON object")
    if not isinstance(obj["ts"], (int, float)) or not isinstance(obj["actor"], str):
        raise LogError(f"{prefix}ts must be a number and actor a string")
    return Event(obj["seq"], float(obj["ts"]), obj["type"], obj["actor"], obj["data"])
