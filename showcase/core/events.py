"""Events: every fact of the show, with its seq.

An event is never edited or deleted; a correction or an undo is a new event. What each
view may know of an event is ``secrecy.py``'s to decide; the message each view receives
(the event as that view may see it, and the change it makes to that view's state) is
prepared once, when the event is committed (``patches.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
# Audience voting (core/ballots.py): the votes themselves live in their own store.
VOTING_OPENED = "voting_opened"
VOTING_CLOSED = "voting_closed"
# The full log of a published round, opened to the public (disclosure.py).
LOG_PUBLISHED = "log_published"
# A graphic taken to air or cleared from it by the desk (core/graphics.py).
GRAPHIC_SET = "graphic_set"

EVENT_TYPES = frozenset({
    SHOW_CONFIGURED, TEAM_ADDED, ROUND_STARTED, SCORE_ENTERED, TEAM_DISQUALIFIED,
    TEAM_WITHDRAWN, TEAM_REINSTATED, JURY_DECIDED, ROUND_PUBLISHED,
    DEMO_STARTED, DEMO_RESULT, DEMO_CANCELLED, REQUEST_MEASURED, TEAM_HEALTH,
    ROUND_FROZEN, ROUND_UNFROZEN, REVEAL_STEP, REVEAL_ARMED, REVEAL_LOCKED, REVEAL_SPEED,
    BENCH_STARTED, BENCH_ITEM, BENCH_TEAM_FAILED, BENCH_PAUSED, BENCH_RESUMED,
    BENCH_CANCELLED, BENCH_FINISHED, BENCH_IMPORTED, LOG_PUBLISHED, VOTING_OPENED,
    VOTING_CLOSED, GRAPHIC_SET,
})

# Views, from least to most privileged. Each role reads one of these.
PUBLIC = "public"
JUDGE = "judge"
PRESENTER = "presenter"
OPERATOR = "operator"
VIEWS = (PUBLIC, JUDGE, PRESENTER, OPERATOR)

SEALED = "sealed"  # the type of the placeholder sent for an event a view may not see


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    ts: float
    type: str
    actor: str
    data: dict[str, Any]
    # The caller's Idempotency-Key, kept in the event itself so that every node folding the
    # log knows it: a retry with the same key (and actor) is answered with this event.
    key: str = ""
    # Wire bytes per view, filled once on first use and shared by every connection.
    _wire: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        out = {"seq": self.seq, "ts": self.ts, "type": self.type, "actor": self.actor,
               "data": self.data}
        if self.key:
            out["key"] = self.key
        return out

    def wire(self, view: str) -> bytes:
        """The message a connection of ``view`` receives for this event, as the engine
        prepared it when the event was committed (``patches.Views``): serialised once,
        shared by every connection of that view. KeyError for an event not prepared."""
        return self._wire[view]

    def prepare(self, wires: dict[str, bytes]) -> None:
        """Keep the message of each view (the engine calls this once, at commit)."""
        self._wire.update(wires)

    @property
    def prepared(self) -> bool:
        """Whether the messages of this event were prepared (see ``wire``)."""
        return bool(self._wire)


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
    key = obj.get("key", "")
    if not isinstance(key, str):
        raise LogError(f"{prefix}key must be a string")
    return Event(obj["seq"], float(obj["ts"]), obj["type"], obj["actor"], obj["data"], key)
