"""The show's state: a pure fold of the event log.

``State.apply(event)`` does no I/O and depends on nothing but the state and the event,
so replaying the same log always gives the same state. It updates the state in place
(a copy per event would make a long log slow to replay); ``fold(events)`` starts from
an empty state. Standings are derived lazily and cached until an input changes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from showcase.core import events as ev
from showcase.core.errors import LogError
from showcase.core.scoring import (
    ACTIVE,
    DISQUALIFIED,
    ELIMINATED,
    WITHDRAWN,
    Standings,
    compute_standings,
)
from showcase.core.showfile import Show, Team, parse_show, parse_team

#: The graphics the desk takes and clears, named as their pages are (overlays/NAME.html).
GRAPHICS = ("lower-third", "bench", "demo", "ticker")

PENDING = "pending"
OPEN = "open"
PUBLISHED = "published"

STATUS_BY_EVENT = {
    ev.TEAM_DISQUALIFIED: DISQUALIFIED,
    ev.TEAM_WITHDRAWN: WITHDRAWN,
    ev.TEAM_REINSTATED: ACTIVE,
}


@dataclass(slots=True)
class TeamState:
    team: Team
    status: str = ACTIVE
    reason: str = ""
    public_status: str = ACTIVE
    public_reason: str = ""
    joined_round: str = ""


@dataclass(slots=True)
class RoundState:
    id: str
    phase: str = PENDING
    roster: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, float]] = field(default_factory=dict)
    sheets: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    jury_order: list[str] | None = None
    published: dict[str, Any] | None = None
    started_seq: int = 0
    published_seq: int = 0
    frozen: dict[str, Any] | None = None  # {"script": [...], "publication": {...}}
    step: int = 0  # reveal steps shown
    step_ts: float = 0.0
    armed: int | None = None
    locked: bool = False
    lock_reason: str = ""
    speed: float = 1.0
    voting: dict[str, Any] | None = None  # the audience's voting (core/ballots.py)
    log_size: int = 0  # its log's first events, published whole (0: not published)
    _standings: Standings | None = None


RECENT = 50  # requests per team that the rolling latency figures cover
DEMOS_KEPT = 10  # finished demos kept in the state (all of them stay in the log)
FAILED = ("error", "timeout")  # results that count against a team's error rate


@dataclass(slots=True)
class Telemetry:
    """A team's measured service: rolling figures over its recent answers, and health."""

    requests: int = 0
    errors: int = 0
    recent: deque[tuple[float | None, float | None, bool]] = field(
        default_factory=lambda: deque(maxlen=RECENT))  # (ttft_ms, decode_tps, ok)
    health: dict[str, Any] | None = None

    def record(self, status: str, metrics: dict[str, Any]) -> None:
        ok = status == "ok"
        if status not in FAILED and not ok:
            return  # cancelled, skipped or interrupted: says nothing about the team
        self.requests += 1
        self.errors += not ok
        self.recent.append((metrics.get("ttft_ms"), metrics.get("decode_tps"), ok))


@dataclass(slots=True)
class State:
    seq: int = 0
    ts: float = 0.0
    show: Show | None = None
    teams: dict[str, TeamState] = field(default_factory=dict)
    rounds: dict[str, RoundState] = field(default_factory=dict)
    current_round: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    telemetry: dict[str, Telemetry] = field(default_factory=dict)
    demos: dict[int, dict[str, Any]] = field(default_factory=dict)
    demo_running: int | None = None
    benches: dict[int, dict[str, Any]] = field(default_factory=dict)
    bench_running: int | None = None  # a run that is running or paused
    bench_imports: dict[str, dict[str, Any]] = field(default_factory=dict)  # team -> latest
    # Which graphics the desk has on air (core/graphics.py): every one until cleared.
    graphics: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(GRAPHICS, True))

    # -- reading ---------------------------------------------------------------

    def require_show(self) -> Show:
        if self.show is None:
            raise LogError("the log has no show_configured event yet")
        return self.show

    def standings(self, round_id: str) -> Standings:
        """Live standings of a round, from everything entered (the operator's view)."""
        rnd = self.rounds[round_id]
        if rnd._standings is None:
            show = self.require_show()
            cfg = show.round(round_id)
            assert cfg is not None
            rnd._standings = compute_standings(
                show, cfg, rnd.roster, rnd.values, rnd.sheets, rnd.jury_order
            )
        return rnd._standings

    # -- folding ---------------------------------------------------------------

    def apply(self, event: ev.Event) -> None:
        """Fold one event into the state. Raises LogError for an event that cannot apply."""
        if event.seq != self.seq + 1:
            raise LogError(f"event seq {event.seq} follows seq {self.seq}: the log has a gap")
        handler = _HANDLERS.get(event.type)
        if handler is None:
            raise LogError(f"seq {event.seq}: unknown event type {event.type!r}")
        try:
            handler(self, event)
        except (KeyError, TypeError, ValueError) as exc:
            raise LogError(f"seq {event.seq} ({event.type}) cannot apply: {exc!r}") from exc
        self.seq = event.seq
        self.ts = event.ts
        self.counts[event.type] = self.counts.get(event.type, 0) + 1

    def _round(self, round_id: str) -> RoundState:
        rnd = self.rounds.get(round_id)
        if rnd is None:
            raise KeyError(f"round {round_id!r}")
        return rnd

    def _team(self, team_id: str) -> TeamState:
        team = self.teams.get(team_id)
        if team is None:
            raise KeyError(f"team {team_id!r}")
        return team


def fold(events: Iterable[ev.Event], state: State | None = None) -> State:
    state = state if state is not None else State()
    for event in events:
        state.apply(event)
    return state


def _show_configured(state: State, event: ev.Event) -> None:
    show = parse_show(event.data["config"], f"log seq {event.seq}")
    first = state.show is None
    state.show = show
    for team in show.teams:
        known = state.teams.get(team.id)
        if known is None:
            state.teams[team.id] = TeamState(team)
        else:
            known.team = team
    for cfg in show.rounds:
        state.rounds.setdefault(cfg.id, RoundState(cfg.id))
    if first:
        opening = state.rounds[show.rounds[0].id]
        _start_round(state, opening, event.seq)
    current = state.rounds.get(state.current_round)
    if current is not None and current.phase == OPEN:
        # Teams new to the show file join the round under way.
        for team in show.teams:
            if state.teams[team.id].status == ACTIVE and team.id not in current.roster:
                current.roster[team.id] = ACTIVE
                state.teams[team.id].joined_round = current.id
        current._standings = None
    for rnd in state.rounds.values():
        rnd._standings = None


def _start_round(state: State, rnd: RoundState, seq: int) -> None:
    rnd.phase = OPEN
    rnd.started_seq = seq
    rnd.roster = {t: ACTIVE for t, ts in state.teams.items() if _eligible(state, ts, rnd.id)}
    for team in rnd.roster:
        state.teams[team].joined_round = state.teams[team].joined_round or rnd.id
    rnd._standings = None
    state.current_round = rnd.id


def _eligible(state: State, team: TeamState, round_id: str) -> bool:
    """Active, and not a replacement team waiting for a later round."""
    joined = team.joined_round
    return team.status == ACTIVE and (
        not joined or joined == round_id or state.rounds[joined].phase != PENDING
    )


def _team_added(state: State, event: ev.Event) -> None:
    team = parse_team(f"log seq {event.seq}", "team", event.data["team"])
    if team.id in state.teams:
        raise ValueError(f"team {team.id!r} exists already")
    state.teams[team.id] = TeamState(team, joined_round=event.data["round"])
    state._round(event.data["round"])


def _round_started(state: State, event: ev.Event) -> None:
    _start_round(state, state._round(event.data["round"]), event.seq)


def _score_entered(state: State, event: ev.Event) -> None:
    d = event.data
    rnd = state._round(d["round"])
    value = d["value"]
    if d.get("judge"):
        cells = rnd.sheets.setdefault(d["criterion"], {}).setdefault(d["team"], {})
        key = d["judge"]
    else:
        cells = rnd.values.setdefault(d["criterion"], {})
        key = d["team"]
    if value is None:
        cells.pop(key, None)
    else:
        cells[key] = float(value)
    rnd._standings = None


def _team_status(state: State, event: ev.Event) -> None:
    d = event.data
    team = state._team(d["team"])
    status = STATUS_BY_EVENT[event.type]
    team.status = status
    team.reason = d["reason"]
    if d.get("announce"):
        team.public_status = status
        team.public_reason = d["reason"]
    rnd = state._round(d["round"])
    if rnd.phase == PUBLISHED:
        return  # what was announced stays as announced
    if d["team"] in rnd.roster or (rnd.phase == OPEN and _eligible(state, team, rnd.id)):
        rnd.roster[d["team"]] = status
        rnd._standings = None


def _jury_decided(state: State, event: ev.Event) -> None:
    rnd = state._round(event.data["round"])
    rnd.jury_order = list(event.data["order"])
    rnd._standings = None


def _round_published(state: State, event: ev.Event) -> None:
    _publish(state, event.data, event.seq)


def _publish(state: State, d: dict[str, Any], seq: int) -> None:
    rnd = state._round(d["round"])
    rnd.phase = PUBLISHED
    rnd.published = d
    rnd.published_seq = seq
    for row in d["standings"]["rows"]:
        team = state._team(row["team"])
        status = row["status"]
        if status == ELIMINATED:
            team.status = ELIMINATED
            team.reason = f"eliminated in {rnd.id}"
            rnd.roster[row["team"]] = ELIMINATED
        team.public_status = status
        team.public_reason = row.get("reason", "")
    rnd._standings = None


def _round_frozen(state: State, event: ev.Event) -> None:
    rnd = state._round(event.data["round"])
    rnd.frozen = {"script": event.data["script"], "publication": event.data["publication"],
                  "seq": event.seq}
    rnd.step, rnd.armed, rnd.locked, rnd.lock_reason, rnd.speed = 0, None, False, "", 1.0


def _round_unfrozen(state: State, event: ev.Event) -> None:
    rnd = state._round(event.data["round"])
    rnd.frozen = None
    rnd.step, rnd.armed = 0, None


def _reveal_step(state: State, event: ev.Event) -> None:
    d = event.data
    rnd = state._round(d["round"])
    if rnd.frozen is None:
        raise ValueError(f"round {d['round']!r} is not frozen")
    rnd.step = d["step"]
    rnd.step_ts = event.ts
    rnd.armed = None
    if "publication" in d:
        _publish(state, d["publication"], event.seq)


def _reveal_armed(state: State, event: ev.Event) -> None:
    state._round(event.data["round"]).armed = event.data["step"]


def _reveal_locked(state: State, event: ev.Event) -> None:
    rnd = state._round(event.data["round"])
    rnd.locked = event.data["locked"]
    rnd.lock_reason = event.data["reason"]


def _reveal_speed(state: State, event: ev.Event) -> None:
    state._round(event.data["round"]).speed = event.data["speed"]


def _telemetry(state: State, team_id: str) -> Telemetry:
    state._team(team_id)
    found = state.telemetry.get(team_id)
    if found is None:
        found = state.telemetry[team_id] = Telemetry()
    return found


def _demo_started(state: State, event: ev.Event) -> None:
    d = event.data
    if d["demo"] != event.seq:
        raise ValueError(f"demo id {d['demo']} is not its event's seq {event.seq}")
    for team in d["teams"]:
        state._team(team)
    state.demos[event.seq] = {"id": event.seq, **{k: v for k, v in d.items() if k != "demo"},
                              "ts": event.ts, "actor": event.actor, "results": {},
                              "cancelled": False, "phase": "running"}
    state.demo_running = event.seq
    while len(state.demos) > DEMOS_KEPT:
        del state.demos[min(state.demos)]


def _demo(state: State, demo_id: int) -> dict[str, Any]:
    return _kept(state.demos, demo_id, "demo")


def _kept(table: dict[int, dict[str, Any]], ident: int, what: str) -> dict[str, Any]:
    """A demo or a benchmark run the state keeps; KeyError (a log that cannot apply) if not."""
    found = table.get(ident)
    if found is None:
        raise KeyError(f"{what} {ident}")
    return found


def _demo_result(state: State, event: ev.Event) -> None:
    d = event.data
    demo = _demo(state, d["demo"])
    if d["team"] not in demo["teams"]:
        raise ValueError(f"team {d['team']!r} is not in demo {d['demo']}")
    demo["results"][d["team"]] = {k: v for k, v in d.items() if k not in ("demo", "team")}
    _telemetry(state, d["team"]).record(d["status"], d.get("metrics") or {})
    if len(demo["results"]) == len(demo["teams"]):
        demo["phase"] = "finished"
        if state.demo_running == d["demo"]:
            state.demo_running = None


def _demo_cancelled(state: State, event: ev.Event) -> None:
    _demo(state, event.data["demo"])["cancelled"] = True


def _request_measured(state: State, event: ev.Event) -> None:
    d = event.data
    _telemetry(state, d["team"]).record(d["status"], d.get("metrics") or {})


def _team_health(state: State, event: ev.Event) -> None:
    d = event.data
    _telemetry(state, d["team"]).health = {**d, "seq": event.seq, "ts": event.ts}


BENCHES_KEPT = 5  # runs kept in the state (all of them stay in the log)


def _bench_started(state: State, event: ev.Event) -> None:
    d = event.data
    if d["run"] != event.seq:
        raise ValueError(f"run id {d['run']} is not its event's seq {event.seq}")
    for team in d["teams"]:
        state._team(team)
    state.benches[event.seq] = {
        "id": event.seq, **{k: v for k, v in d.items() if k != "run"},
        "ts": event.ts, "actor": event.actor, "phase": "running", "reason": "",
        "failed": {}, "results": None,
        "during": state.current_round,  # the round the show was in: screens leave it after
        "progress": {t: {s["id"]: {"done": 0, "correct": 0, "errors": 0, "total": s["items"]}
                         for s in d["suites"]} for t in d["teams"]},
        "done": {t: set() for t in d["teams"]},  # (suite, item) scored, for a resume
    }
    state.bench_running = event.seq
    while len(state.benches) > BENCHES_KEPT:
        del state.benches[min(state.benches)]


def _bench(state: State, run_id: int) -> dict[str, Any]:
    return _kept(state.benches, run_id, "benchmark run")


def _bench_item(state: State, event: ev.Event) -> None:
    d = event.data
    run = _bench(state, d["run"])
    key = (d["suite"], d["item"])
    if key in run["done"][d["team"]]:
        raise ValueError(f"item {d['suite']}/{d['item']} of {d['team']} is scored already")
    run["done"][d["team"]].add(key)
    counts = run["progress"][d["team"]][d["suite"]]
    counts["done"] += 1
    counts["errors"] += d["status"] != "ok"
    counts["correct"] += bool(d.get("correct"))


def _bench_phase(state: State, event: ev.Event) -> None:
    d = event.data
    run = _bench(state, d["run"])
    phase = {ev.BENCH_PAUSED: "paused", ev.BENCH_RESUMED: "running",
             ev.BENCH_CANCELLED: "cancelled", ev.BENCH_FINISHED: "finished"}[event.type]
    run["phase"] = phase
    run["reason"] = d.get("reason", "")
    if event.type == ev.BENCH_FINISHED:
        run["results"] = d.get("results")
    if phase in ("cancelled", "finished") and state.bench_running == d["run"]:
        state.bench_running = None


def _bench_team_failed(state: State, event: ev.Event) -> None:
    d = event.data
    _bench(state, d["run"])["failed"][d["team"]] = d["reason"]


def _bench_imported(state: State, event: ev.Event) -> None:
    d = event.data
    state._team(d["team"])
    state.bench_imports[d["team"]] = {**d, "seq": event.seq, "actor": event.actor}


def _voting_opened(state: State, event: ev.Event) -> None:
    rnd = state._round(event.data["round"])
    rnd.voting = {**event.data, "open": True, "opened_seq": event.seq, "opened_ts": event.ts}


def _voting_closed(state: State, event: ev.Event) -> None:
    d = event.data
    rnd = state._round(d["round"])
    assert rnd.voting is not None, "voting_closed before voting_opened"
    rnd.voting = {**rnd.voting, "open": False, "closed_seq": event.seq,
                  **{k: d[k] for k in ("votes", "log_hash", "excluded", "kept", "tally")}}
    cells = rnd.values.setdefault(d["criterion"], {})
    for team, value in d["values"].items():
        cells[team] = float(value)
    rnd._standings = None
def _graphic_set(state: State, event: ev.Event) -> None:
    graphic = event.data["graphic"]
    if graphic not in state.graphics:
        raise ValueError(f"unknown graphic {graphic!r}")
    state.graphics[graphic] = bool(event.data["on"])


def _log_published(state: State, event: ev.Event) -> None:
    state._round(event.data["round"]).log_size = event.data["size"]


_HANDLERS = {
    ev.SHOW_CONFIGURED: _show_configured,
    ev.TEAM_ADDED: _team_added,
    ev.ROUND_STARTED: _round_started,
    ev.SCORE_ENTERED: _score_entered,
    ev.TEAM_DISQUALIFIED: _team_status,
    ev.TEAM_WITHDRAWN: _team_status,
    ev.TEAM_REINSTATED: _team_status,
    ev.JURY_DECIDED: _jury_decided,
    ev.ROUND_PUBLISHED: _round_published,
    ev.DEMO_STARTED: _demo_started,
    ev.DEMO_RESULT: _demo_result,
    ev.DEMO_CANCELLED: _demo_cancelled,
    ev.REQUEST_MEASURED: _request_measured,
    ev.TEAM_HEALTH: _team_health,
    ev.ROUND_FROZEN: _round_frozen,
    ev.ROUND_UNFROZEN: _round_unfrozen,
    ev.REVEAL_STEP: _reveal_step,
    ev.REVEAL_ARMED: _reveal_armed,
    ev.REVEAL_LOCKED: _reveal_locked,
    ev.REVEAL_SPEED: _reveal_speed,
    ev.BENCH_STARTED: _bench_started,
    ev.BENCH_ITEM: _bench_item,
    ev.BENCH_TEAM_FAILED: _bench_team_failed,
    ev.BENCH_PAUSED: _bench_phase,
    ev.BENCH_RESUMED: _bench_phase,
    ev.BENCH_CANCELLED: _bench_phase,
    ev.BENCH_FINISHED: _bench_phase,
    ev.BENCH_IMPORTED: _bench_imported,
    ev.VOTING_OPENED: _voting_opened,
    ev.VOTING_CLOSED: _voting_closed,
    ev.LOG_PUBLISHED: _log_published,
    ev.GRAPHIC_SET: _graphic_set,
}
