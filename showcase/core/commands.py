"""Commands: check a request against the state and turn it into the event it appends.

Pure: each command takes the state, the caller's role and the request body, and returns
``(event_type, data)`` or raises an error that names the problem. Nothing is written
unless every check passed, so a refused command leaves the log as it was.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from msgspec import UNSET, UnsetType
from msgspec import structs as ms

from showcase.core import events as ev
from showcase.core.bodies import (
    CancelDemoBody,
    DemoBody,
    JuryBody,
    RoundBody,
    ScoreBody,
    StatusBody,
    TeamBody,
    UnfreezeBody,
)
from showcase.core.checks import (
    Command,
    check_expected_seq,
    known_round,
    known_team,
    reason_of,
)
from showcase.core.decode import decode_body
from showcase.core.egress import EgressPolicy, Resolved
from showcase.core.errors import InvalidRequest, NotPermitted, ShowFileError, StateConflict, Unknown
from showcase.core.reveal import build_script
from showcase.core.scoring import ACTIVE, DISQUALIFIED, ELIMINATED, WITHDRAWN
from showcase.core.showfile import ID_RE, parse_team
from showcase.core.state import PENDING, PUBLISHED, State


def require_open_round(state: State, round_id: str) -> None:
    phase = state.rounds[round_id].phase
    if phase == PENDING:
        raise StateConflict(f"round {round_id!r} has not started", "start it first", seq=state.seq)
    if phase == PUBLISHED:
        raise StateConflict(f"round {round_id!r} is published; its results can no longer change",
                            seq=state.seq)
    if state.rounds[round_id].frozen is not None:
        raise StateConflict(
            f"round {round_id!r} is frozen for its reveal; its results cannot change",
            f"to correct them, unfreeze it first: POST /api/rounds/{round_id}/unfreeze"
            " (only before the reveal's first step)", seq=state.seq)


def enter_score(state: State, who: str, body: Any) -> Command:
    """A raw value for a team, or one judge's sheet; a change of an existing one is a correction.

    ``who`` is the actor (``operator:desk-1``, ``judge:kim``) or a bare role: a judge known
    by name (their own token, or the shared one with X-Showcase-User) enters only their
    own sheets, so the audit re-runs the same rule on an exported log."""
    role, _, user = who.partition(":")
    body = decode_body(body, ScoreBody)
    show = state.require_show()
    check_expected_seq(state, body.expect_seq)
    round_id = known_round(state, body.round)
    require_open_round(state, round_id)
    crit = show.criterion(body.criterion)
    if crit is None:
        raise Unknown(f"unknown criterion {body.criterion!r}",
                      f"criteria: {', '.join(c.id for c in show.criteria)}")
    team = known_team(state, body.team)
    rnd = state.rounds[round_id]
    if team not in rnd.roster:
        raise StateConflict(f"team {team!r} is not in round {round_id!r}", seq=state.seq)
    if rnd.roster[team] != ACTIVE:
        raise StateConflict(f"team {team!r} is {rnd.roster[team]} in round {round_id!r}; "
                            "its scores no longer count", seq=state.seq)
    judge = body.judge
    if crit.source == "judges":
        if not judge:
            raise InvalidRequest(f"criterion {crit.id!r} is scored by judges: give 'judge'",
                                 f"judges: {', '.join(j.id for j in show.judges)}")
        judges = {j.id for j in show.judges}
        if judge not in judges:
            raise Unknown(f"unknown judge {judge!r}",
                          f"judges: {', '.join(j.id for j in show.judges)}")
        if role == "judge" and user in judges and user != judge:
            raise NotPermitted(f"judge {user!r} may enter only their own sheets, "
                               f"not judge {judge!r}'s",
                               f"judge {judge!r} enters it with their own token, "
                               "or an operator does")
        previous = rnd.sheets.get(crit.id, {}).get(team, {}).get(judge)
    else:
        if judge:
            raise InvalidRequest(
                f"criterion {crit.id!r} takes one value per team, not judges' sheets",
                "leave out 'judge'")
        if role == "judge":
            raise NotPermitted(
                f"judges enter judges' sheets; {crit.id!r} is entered by an operator")
        previous = rnd.values.get(crit.id, {}).get(team)
    if body.expect_previous is not UNSET and body.expect_previous != previous:
        # A per-cell guard: another desk changed this value after the screen showed it.
        now = "empty" if previous is None else f"{previous:g}"
        shown = "empty" if body.expect_previous is None else f"{body.expect_previous:g}"
        raise StateConflict(f"{crit.id!r} of team {team!r}{f' (judge {judge})' if judge else ''} "
                            f"is {now} now, not {shown}: it changed after you read it",
                            "check the new value, then send the correction again",
                            seq=state.seq, previous=previous)
    value = body.value
    if value is None:
        if previous is None:
            raise StateConflict(f"there is no value to clear for {team!r} in {crit.id!r}",
                                seq=state.seq)
    else:
        lo, hi = crit.scale
        if not math.isfinite(value) or not lo <= value <= hi:
            raise InvalidRequest(f"value {value} for {crit.id!r} is out of range",
                                 f"{crit.id!r} takes values from {lo:g} to {hi:g}")
    correcting = previous is not None
    reason = reason_of(body.reason, correcting,
                     lambda: f"changing {crit.id!r} of team {team!r} (now {previous:g})")
    data: dict[str, Any] = {"round": round_id, "criterion": crit.id, "team": team,
                            "value": value}
    if judge:
        data["judge"] = judge
    if correcting:
        data["previous"] = previous
    if reason:
        data["reason"] = reason
    return ev.SCORE_ENTERED, data


def change_status(state: State, event_type: str, team_id: str, body: Any) -> Command:
    """Disqualify, withdraw or reinstate a team, whatever its score, with a reason."""
    body = decode_body(body, StatusBody)
    check_expected_seq(state, body.expect_seq)
    team = state.teams[known_team(state, team_id)]
    what = {ev.TEAM_DISQUALIFIED: "a disqualification", ev.TEAM_WITHDRAWN: "a withdrawal",
            ev.TEAM_REINSTATED: "a reinstatement"}[event_type]
    reason = reason_of(body.reason, True, what)
    if team.status == ELIMINATED:
        raise StateConflict(f"team {team_id!r} was eliminated on points", seq=state.seq)
    if event_type == ev.TEAM_REINSTATED:
        if team.status not in (DISQUALIFIED, WITHDRAWN):
            raise StateConflict(f"team {team_id!r} is {team.status}; only a disqualified or "
                                "withdrawn team can be reinstated", seq=state.seq)
    elif team.status != ACTIVE:
        raise StateConflict(f"team {team_id!r} is already {team.status}", seq=state.seq)
    round_id = state.current_round
    if state.rounds[round_id].phase == PUBLISHED:
        # Between rounds the change counts from the next round on.
        pending = [r for r, rs in state.rounds.items() if rs.phase == PENDING]
        round_id = pending[0] if pending else round_id
    elif state.rounds[round_id].frozen is not None:
        raise StateConflict(f"round {round_id!r} is frozen for its reveal; a change of status "
                            "would change its results",
                            f"unfreeze it first: POST /api/rounds/{round_id}/unfreeze",
                            seq=state.seq)
    return event_type, {"team": team_id, "round": round_id, "reason": reason,
                        "announce": body.announce}


def add_team(state: State, body: Any, egress: EgressPolicy | None = None,
             resolved: Resolved | None = None) -> Command:
    """A replacement team, joining from a round that has not started yet. ``egress``: the
    server's rules for endpoints and key variables (the show file's, core/egress.py);
    None where they are not known, as in the audit of an exported log. ``resolved``: the
    endpoint's host as the server looked it up just before (server/hosts.py)."""
    body = decode_body(body, TeamBody)
    check_expected_seq(state, body.expect_seq)
    pending = [r for r, rs in state.rounds.items() if rs.phase == PENDING]
    round_id = body.round or (pending[0] if pending else "")
    if not round_id:
        raise StateConflict("every round has started; a team can only join a round not yet started",
                            seq=state.seq)
    known_round(state, round_id)
    if state.rounds[round_id].phase != PENDING:
        raise StateConflict(
            f"round {round_id!r} has started; a replacement team joins between rounds",
            seq=state.seq)
    # The team's own fields, those sent: a field left out takes the show file's default.
    fields = {k: v for k, v in ms.asdict(body).items()
              if v is not UNSET and k not in ("round", "reason", "expect_seq")}
    if not ID_RE.match(fields["id"]):
        raise InvalidRequest(f"{fields['id']!r} is not a valid team id",
                             "lower-case letters, digits, '-' or '_', at most 32")
    if fields["id"] in state.teams:
        raise StateConflict(f"team {fields['id']!r} exists already", seq=state.seq)
    try:
        team = parse_team("request", "team", fields)
    except ShowFileError as exc:
        raise InvalidRequest(f"field {exc.key.removeprefix('team.')!r} {exc.problem}") from exc
    if egress is not None:
        egress.check_team(team.id, team.endpoint, team.api_key_env, resolved)
    return ev.TEAM_ADDED, {"team": team.config(), "round": round_id,
                           "reason": reason_of(body.reason, False, "")}


def start_round(state: State, round_id: str, body: Any) -> Command:
    body = decode_body(body, RoundBody)
    check_expected_seq(state, body.expect_seq)
    known_round(state, round_id)
    if state.rounds[round_id].phase != PENDING:
        raise StateConflict(f"round {round_id!r} has started already", seq=state.seq)
    current = state.rounds[state.current_round]
    if current.phase != PUBLISHED:
        raise StateConflict(f"round {state.current_round!r} is still open; publish it first",
                            seq=state.seq)
    order = list(state.rounds)
    following = order[order.index(state.current_round) + 1]
    if round_id != following:
        raise StateConflict(f"the next round is {following!r}, not {round_id!r}", seq=state.seq)
    return ev.ROUND_STARTED, {"round": round_id}


def decide_jury(state: State, round_id: str, body: Any) -> Command:
    """The jury's order for teams tied across the cut, best first."""
    body = decode_body(body, JuryBody)
    check_expected_seq(state, body.expect_seq)
    known_round(state, round_id)
    require_open_round(state, round_id)
    reason = reason_of(body.reason, True, "a jury decision")
    order = body.order
    standings = state.standings(round_id)
    _require_complete(state, round_id, "the jury decides once every score is in")
    tied = standings.tied_at_cut or standings.jury_applied
    if not tied:
        raise StateConflict(f"no teams are tied across the cut in round {round_id!r}",
                            seq=state.seq)
    if sorted(order) != sorted(tied) or len(set(order)) != len(order):
        raise InvalidRequest("'order' must list each tied team once, best first",
                             f"tied teams: {', '.join(tied)}")
    return ev.JURY_DECIDED, {"round": round_id, "order": list(order), "reason": reason}


def _require_complete(state: State, round_id: str, hint: str) -> None:
    missing = state.standings(round_id).missing
    if missing:
        cells = ", ".join(f"{m['team']}/{m['criterion']}" for m in missing[:8])
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        raise StateConflict(f"round {round_id!r} is not complete: missing {cells}{more}", hint,
                            seq=state.seq)


def publish_round(state: State, round_id: str, body: Any) -> Command:
    """Announce a round's results at once: every score, the cut and the eliminations."""
    body = decode_body(body, RoundBody)
    check_expected_seq(state, body.expect_seq)
    known_round(state, round_id)
    require_open_round(state, round_id)
    return ev.ROUND_PUBLISHED, publication(state, round_id)


def freeze_round(state: State, round_id: str, body: Any) -> Command:
    """Fix a round's results and compute its reveal script; nothing is shown yet."""
    body = decode_body(body, RoundBody)
    check_expected_seq(state, body.expect_seq)
    known_round(state, round_id)
    if state.rounds[round_id].frozen is not None and state.rounds[round_id].phase != PUBLISHED:
        raise StateConflict(f"round {round_id!r} is frozen already",
                            "step through its reveal, or unfreeze it to change its results",
                            seq=state.seq, step=state.rounds[round_id].step)
    require_open_round(state, round_id)
    data = publication(state, round_id)
    names = {t: ts.team.name_en for t, ts in state.teams.items()}
    announced = frozenset(t for t, ts in state.teams.items()
                          if ts.public_status == ts.status and ts.status != "active")
    # Reinstated under seal: the public still knows them as out, until the reveal says so.
    believed_out = {t: ts.public_status for t, ts in state.teams.items()
                    if ts.status == "active" and ts.public_status != "active"}
    names_ko = {t: ts.team.name_ko for t, ts in state.teams.items()}
    script = build_script(state.require_show(), round_id, data, names, announced, believed_out,
                          names_ko)
    return ev.ROUND_FROZEN, {"round": round_id, "publication": data, "script": script}


def unfreeze_round(state: State, round_id: str, body: Any) -> Command:
    """Let a frozen round change again (a late correction), only before its reveal starts."""
    body = decode_body(body, UnfreezeBody)
    check_expected_seq(state, body.expect_seq)
    known_round(state, round_id)
    rnd = state.rounds[round_id]
    if rnd.frozen is None:
        raise StateConflict(f"round {round_id!r} is not frozen", seq=state.seq)
    if rnd.phase == PUBLISHED:
        raise StateConflict(f"round {round_id!r} is published", seq=state.seq)
    if rnd.step:
        raise StateConflict(f"the reveal of round {round_id!r} is at step {rnd.step}; go back to "
                            "its start (reset) before unfreezing", seq=state.seq, step=rnd.step)
    return ev.ROUND_UNFROZEN, {"round": round_id,
                               "reason": reason_of(body.reason, True, "unfreezing")}


def publication(state: State, round_id: str) -> dict[str, Any]:
    """What announcing a round says: every score, the cut and the eliminations."""
    standings = state.standings(round_id)
    _require_complete(state, round_id, "enter the missing scores first")
    if standings.tied_at_cut:
        raise StateConflict(
            f"teams {', '.join(standings.tied_at_cut)} are tied across the cut",
            f"the jury decides their order first: POST /api/rounds/{round_id}/jury",
            seq=state.seq,
        )
    rows = []
    for row in standings.rows:
        status = row.status if row.status != ACTIVE else (
            ACTIVE if row.advances else ELIMINATED)
        rows.append({
            "team": row.team, "status": status, "rank": row.rank, "position": row.position,
            "points": row.points, "total": row.total, "advances": bool(row.advances),
            "reason": state.teams[row.team].reason if row.status != ACTIVE else "",
        })
    return {
        "round": round_id,
        "standings": {"round": round_id, "rows": rows, "cut": {
            "rule": standings.cut_rule, "survivors": standings.survivors}},
        "eliminated": [r["team"] for r in rows if r["status"] == ELIMINATED],
    }


RoundCommand = Callable[[State, str, Any], Command]


# -- live demos and measurement ----------------------------------------------------


def start_demo(state: State, body: Any) -> Command:
    """One prompt to several teams at once; the demo's id is the seq of this event."""
    body = decode_body(body, DemoBody)
    check_expected_seq(state, body.expect_seq)
    prompt = body.prompt.strip()
    if not prompt:
        raise InvalidRequest("field 'prompt' is empty", "type what the teams should answer")
    system = body.system.strip()  # both checked as the body was decoded (core/text.py)
    if state.demo_running is not None:
        raise StateConflict(f"demo {state.demo_running} is still running",
                            "wait for it to finish or cancel it: POST /api/demo/cancel",
                            seq=state.seq, demo=state.demo_running)
    teams = chosen_teams(state, body.teams, "answer")
    return ev.DEMO_STARTED, {"demo": state.seq + 1, "prompt": prompt, "system": system,
                             "teams": list(teams), "max_tokens": body.max_tokens,
                             "temperature": body.temperature}


def cancel_demo(state: State, body: Any) -> Command:
    body = decode_body(body, CancelDemoBody)
    check_expected_seq(state, body.expect_seq)
    running = state.demo_running
    if running is None:
        raise StateConflict("no demo is running", seq=state.seq)
    if body.demo not in (UNSET, running):
        raise StateConflict(f"demo {body.demo} is not running (demo {running} is)",
                            seq=state.seq, demo=running)
    return ev.DEMO_CANCELLED, {"demo": running,
                               "reason": reason_of(body.reason, False, "cancelling")}


def demo_result(state: State, demo_id: int, team: str, result: dict[str, Any]) -> Command:
    """A team's answer to a demo (recorded by the server, not sent by a client)."""
    demo = state.demos.get(demo_id)
    if demo is None or team not in demo["teams"] or team in demo["results"]:
        raise StateConflict(f"demo {demo_id} has no open answer for team {team!r}", seq=state.seq)
    return ev.DEMO_RESULT, {"demo": demo_id, "team": team, **result}


def request_measured(state: State, team: str, result: dict[str, Any]) -> Command:
    """A request through the proxy, measured (recorded by the server)."""
    return ev.REQUEST_MEASURED, {"team": known_team(state, team), **result}


def team_health(state: State, team: str, check: dict[str, Any]) -> Command:
    """A change in a team's endpoint health (recorded by the server). Refused when the log
    already says so: with several nodes each checks every team, and the node that lost
    the race to record a change finds it recorded when its command is checked again."""
    recorded = state.telemetry.get(known_team(state, team))
    before = recorded.health if recorded is not None else None
    if before is not None and before["up"] == check["up"]:
        raise StateConflict(f"team {team!r} is recorded as {'up' if check['up'] else 'down'} "
                            "already", seq=state.seq)
    return ev.TEAM_HEALTH, {"team": team, **check}


def chosen_teams(state: State, teams: list[str] | UnsetType, purpose: str) -> list[str]:
    """The teams a demo or a benchmark run asks: those named in ``teams`` (each once, each
    with an endpoint), else every team whose **announced** status is active and that has an
    endpoint: the public list of teams must not give away a sealed withdrawal or
    disqualification."""
    if teams is UNSET:
        teams = [t for t, ts in state.teams.items()
                 if ts.public_status == ACTIVE and ts.team.endpoint]
        if not teams:
            raise StateConflict(f"no active team has an endpoint to {purpose}",
                                "name the teams in 'teams'", seq=state.seq)
        return teams
    if not teams:
        raise InvalidRequest("field 'teams' is empty", "leave it out to ask every active team")
    for team in teams:
        known_team(state, team)
        if not state.teams[team].team.endpoint:
            raise StateConflict(f"team {team!r} has no endpoint in the show file",
                                "add its endpoint to the show file and restart", seq=state.seq)
    if len(set(teams)) != len(teams):
        dup = next(t for t in teams if teams.count(t) > 1)
        raise InvalidRequest(f"team {dup!r} is listed twice in 'teams'")
    return list(teams)
