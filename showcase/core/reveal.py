"""The reveal: a round's results announced one step at a time, at the presenter's pace.

Like the ICPC Resolver, the whole reveal is computed before anything is shown: freezing a
round fixes its results and turns them into a script, a list of steps from the title card
to the survivors. Each step carries what it reveals and the public scoreboard as it
stands once it is shown, so the public view at step k is exactly step k's board: nothing
of a later step exists anywhere a viewer can reach. Moving through the script is a
``reveal_step`` event naming the step it goes to; going back is a new event too.

Default order: title; each disqualified or withdrawn team; then criterion by criterion,
team by team from the bottom of the final standings up (rows re-order by running total,
ties in show order, so the order never hints at what is still sealed); the cut line; each
elimination, worst first, each one armed and then confirmed; the survivors. The last
step publishes the round.
"""

from __future__ import annotations

import math
from typing import Any

from showcase.core import events as ev
from showcase.core.bodies import ArmBody, LockBody, MoveBody, SpeedBody
from showcase.core.checks import Command, known_round
from showcase.core.decode import decode_body, given
from showcase.core.errors import InvalidRequest, NotPermitted, StateConflict
from showcase.core.scoring import ACTIVE, ELIMINATED
from showcase.core.secrecy import next_of, public_step
from showcase.core.showfile import Show
from showcase.core.state import State

REINSTATED = "reinstated"  # the status a step gives a team reinstated under seal
STATUS_KO = {"disqualified": "실격", "withdrawn": "기권", "eliminated": "탈락"}
TITLE = "title"
STATUS = "status"
POINTS = "points"
CUT = "cut"
ELIMINATE = "eliminate"
SURVIVORS = "survivors"

DOUBLE_PRESS_SECONDS = 0.8  # a step press without "to" this soon after a step is a repeat


def build_script(show: Show, round_id: str, publication: dict[str, Any],
                 names: dict[str, str], announced: frozenset[str] = frozenset(),
                 believed_out: dict[str, str] | None = None,
                 names_ko: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every step of a round's reveal, from its publication (what publish would announce).

    ``announced`` names the disqualified or withdrawn teams whose status the public knows
    already. The others sit on the board as plain rows, like every team, until their
    ``status`` step: a row missing from the first board would give them away early.
    ``believed_out`` maps the teams reinstated under seal to the status the public still
    knows them by: they start out of the ranking, as the public last saw them, and come back
    at a ``status`` step of their own, so no screen ranks them before it is announced.
    Each step's ``text`` is in English and its ``text_ko`` in Korean (``names_ko``: the
    teams' Korean names), for the presenter's remote in either language.
    """
    believed_out = dict(believed_out or {})
    ko = names_ko or names
    rnd = show.round(round_id)
    assert rnd is not None
    rows = publication["standings"]["rows"]
    ranked = [r for r in rows if r["status"] in (ACTIVE, ELIMINATED)]
    others = [r for r in rows if r["status"] not in (ACTIVE, ELIMINATED)]
    order = [t.id for t in show.teams]  # the neutral order before anything is known
    hidden = {r["team"] for r in others if r["team"] not in announced}
    returning = [r for r in ranked if r["team"] in believed_out]
    plain = sorted([r["team"] for r in ranked if r["team"] not in believed_out] + list(hidden),
                   key=order.index)
    criteria = [c.id for c in show.criteria]
    crit_names = {c.id: c.name_en for c in show.criteria}
    crit_ko = {c.id: c.name_ko for c in show.criteria}
    board: dict[str, Any] = {
        "round": round_id,
        "rows": [{"team": t, "points": {c: None for c in criteria}, "total": 0.0,
                  "status": ACTIVE, "position": i + 1} for i, t in enumerate(plain)],
        "cut": None,
        "final": False,
    }
    board["rows"] += [{"team": r["team"], "points": {c: None for c in criteria},
                       "total": None, "status": r["status"], "position": None}
                      for r in others if r["team"] in announced]
    board["rows"] += [{"team": r["team"], "points": {c: None for c in criteria},
                       "total": None, "status": believed_out[r["team"]], "position": None}
                      for r in returning]

    def show_status(row: dict[str, Any]) -> None:
        """A hidden team's row takes its status and leaves the ranking."""
        if row["team"] in hidden:
            hidden.discard(row["team"])
            mine = next(r for r in board["rows"] if r["team"] == row["team"])
            board["rows"].remove(mine)
            board["rows"].append({**mine, "total": None, "status": row["status"],
                                  "position": None})
            _reorder(board, order)

    def bring_back(row: dict[str, Any]) -> None:
        """A team reinstated under seal takes its place in the ranking again."""
        if row["team"] in believed_out:
            del believed_out[row["team"]]
            mine = next(r for r in board["rows"] if r["team"] == row["team"])
            mine.update(status=ACTIVE, total=0.0, position=0)
            _reorder(board, order)
    ordered = [False]  # whether the board holds the final, published order yet
    steps: list[dict[str, Any]] = []

    def add(kind: str, text: str, pause: bool = False, confirm: bool = False,
            **what: Any) -> None:
        steps.append({"n": len(steps) + 1, "kind": kind, "text": text, "pause": pause,
                      "confirm": confirm, **what, "board": _copy(board)})

    bottom_up = [r["team"] for r in sorted(ranked, key=lambda r: r["position"], reverse=True)]
    by_team = {r["team"]: r for r in ranked}

    def title() -> None:
        add(TITLE, f"{rnd.name_en}: the results", pause=True, text_ko=f"{rnd.name_ko}: 결과 발표")

    def status() -> None:
        for row in others:
            show_status(row)
            reason = f" ({row['reason']})" if row.get("reason") else ""
            add(STATUS, f"{names[row['team']]} is {row['status']}{reason}", pause=True,
                team=row["team"], status=row["status"], reason=row.get("reason", ""),
                text_ko=f"{ko[row['team']]}: {STATUS_KO.get(row['status'], row['status'])}"
                        f"{reason}")
        for row in returning:
            bring_back(row)
            add(STATUS, f"{names[row['team']]} is reinstated", pause=True, team=row["team"],
                status=REINSTATED, reason="", text_ko=f"{ko[row['team']]} 복귀")

    def reveal_points(team: str, crits: list[str]) -> dict[str, float]:
        row = next(r for r in board["rows"] if r["team"] == team)
        for crit in crits:
            row["points"][crit] = by_team[team]["points"][crit]
        row["total"] = _sum(row["points"].values(), show.precision)
        return {c: by_team[team]["points"][c] for c in crits}

    def points() -> None:
        if rnd.reveal_points == "criterion":
            for crit in criteria:
                for team in bottom_up:
                    reveal_points(team, [crit])
                _reorder(board, order)
                add(POINTS, f"{crit_names[crit]}: every team's points", pause=True,
                    criterion=crit, points={t: by_team[t]["points"][crit] for t in bottom_up},
                    text_ko=f"{crit_ko[crit]}: 모든 팀의 점수")
        elif rnd.reveal_points == "total":
            for i, team in enumerate(bottom_up):
                shown = reveal_points(team, criteria)
                _reorder(board, order)
                add(POINTS, f"{names[team]}: {by_team[team]['total']:g} points in all",
                    pause=i == len(bottom_up) - 1, team=team, points=shown,
                    text_ko=f"{ko[team]}: 총 {by_team[team]['total']:g}점")
        else:
            for crit in criteria:
                for i, team in enumerate(bottom_up):
                    value = reveal_points(team, [crit])[crit]
                    _reorder(board, order)
                    add(POINTS, f"{crit_names[crit]}: {names[team]} {value:g} points",
                        pause=i == len(bottom_up) - 1, team=team, criterion=crit, points=value,
                        text_ko=f"{crit_ko[crit]}: {ko[team]} {value:g}점")

    def cut() -> None:
        rule = publication["standings"]["cut"]
        board["cut"] = {"survivors": rule["survivors"], "rule": rule["rule"]}
        add(CUT, f"The cut: {rule['survivors']} of {len(ranked)} teams go through "
            f"({rule['rule']})", pause=True,
            text_ko=f"컷: {len(ranked)}팀 중 {rule['survivors']}팀 진출")

    def eliminations() -> None:
        for team in [t for t in bottom_up if by_team[t]["status"] == ELIMINATED]:
            row = next(r for r in board["rows"] if r["team"] == team)
            row["status"] = ELIMINATED
            add(ELIMINATE, f"{names[team]} is eliminated", pause=True, confirm=True, team=team,
                text_ko=f"{ko[team]} 탈락")

    def survivors() -> None:
        teams = [r["team"] for r in ranked if r["status"] == ACTIVE]
        add(SURVIVORS, "Through to the next round: " + ", ".join(names[t] for t in teams),
            pause=True, teams=teams,
            text_ko="다음 라운드 진출: " + ", ".join(ko[t] for t in teams))

    sections = {"title": title, "status": status, "points": points, "cut": cut,
                "eliminations": eliminations, "survivors": survivors}
    def final_order() -> None:
        # The published order is the whole result: statuses left out of the reveal (or
        # still to come in it) are part of it.
        for row in others:
            show_status(row)
        for row in returning:
            bring_back(row)
        _final_order(board, by_team)
        ordered[0] = True

    for section in rnd.reveal_order:
        if section in ("cut", "eliminations", "survivors") and not ordered[0]:
            final_order()
        sections[section]()
    if not ordered[0]:
        final_order()
    board["final"] = True
    steps[-1]["board"] = _copy(board)
    return steps


def _fast_forward(script: list[dict[str, Any]], current: int) -> int:
    """The next step that pauses or confirms, or the last; never through an elimination."""
    total = len(script)
    to = next((s["n"] for s in script[current:] if s["pause"] or s["confirm"]), total)
    while to > current + 1 and script[to - 1]["confirm"]:
        to -= 1
    return int(to)


def _final_order(board: dict[str, Any], by_team: dict[str, dict[str, Any]]) -> None:
    """The order exactly as published (jury decisions and tie-breaks included)."""
    for row in board["rows"]:
        if row["team"] in by_team:
            final = by_team[row["team"]]
            row["points"] = dict(final["points"])
            row["position"], row["rank"], row["total"] = (final["position"], final["rank"],
                                                          final["total"])
    board["rows"].sort(key=lambda r: (r["position"] is None, r["position"] or 0))


def _sum(values: Any, precision: int) -> float:
    return round(math.fsum(v for v in values if v is not None), precision)


def _reorder(board: dict[str, Any], order: list[str]) -> None:
    ranked = [r for r in board["rows"] if r["position"] is not None]
    rest = [r for r in board["rows"] if r["position"] is None]
    ranked.sort(key=lambda r: (-r["total"], order.index(r["team"])))
    for i, row in enumerate(ranked):
        row["position"] = i + 1
    board["rows"] = ranked + rest


def _copy(board: dict[str, Any]) -> dict[str, Any]:
    return {**board, "rows": [{**r, "points": dict(r["points"])} for r in board["rows"]],
            "cut": dict(board["cut"]) if board["cut"] else None}


# -- commands --------------------------------------------------------------------------

def _revealing(state: State, round_id: str) -> tuple[str, Any]:
    round_id = known_round(state, round_id)
    rnd = state.rounds[round_id]
    if rnd.frozen is None:
        raise StateConflict(f"round {round_id!r} is not frozen: there is no reveal to step through",
                            f"freeze it first: POST /api/rounds/{round_id}/freeze", seq=state.seq)
    if rnd.phase == "published":
        raise StateConflict(f"the reveal of round {round_id!r} is complete; the round is published",
                            seq=state.seq, step=rnd.step)
    return round_id, rnd


def _unlocked(rnd: Any, role: str) -> None:
    """While the operator holds the lock, presenters' controls are refused; the operator's work."""
    if rnd.locked and role != "operator":
        raise NotPermitted("the operator has locked the reveal controls",
                           f"reason: {rnd.lock_reason}" if rnd.lock_reason else "ask the director")


def move(state: State, action: str, role: str, body: Any, now: float) -> Command:
    """Next, back, goto, fast-forward or reset; idempotent when the press names its step.

    ``now``: the time of the press (the caller's clock: the core reads none), for the
    double-press guard on a press that names no step."""
    body = decode_body(body, MoveBody)
    round_id, rnd = _revealing(state, body.round)
    _unlocked(rnd, role)
    script = rnd.frozen["script"]
    total = len(script)
    current = rnd.step
    to = given(body.to, None)
    if action == "goto" and to is None:
        raise InvalidRequest("goto needs 'to': the step to show (0 is before the first)")
    if to is None:
        confirming = action == "next" and rnd.armed == current + 1  # deliberate: armed first
        if (rnd.step_ts and now - rnd.step_ts < DOUBLE_PRESS_SECONDS
                and action in ("next", "back") and not confirming):
            raise StateConflict(f"pressed again within {DOUBLE_PRESS_SECONDS:g} s of the last "
                                "step; ignored as a double press", "send 'to' to move on purpose",
                                seq=state.seq, step=current)
    if action != "goto":
        expected = {"next": current + 1, "back": current - 1, "reset": 0,
                    "ff": _fast_forward(script, current)}[action]
        if to is not None and to != expected:
            raise StateConflict(f"stale press: the reveal is at step {current}, so {action} goes "
                                f"to step {expected}, not {to}", "reload the reveal state",
                                seq=state.seq, step=current)
        to = expected
    assert to is not None
    if to > total:
        raise StateConflict(f"step {current} is the last step of the reveal"
                            if current == total else f"the reveal has {total} steps, not {to}",
                            seq=state.seq, step=current)
    if to < 0:
        raise StateConflict("the reveal is at its start: there is no step before it",
                            seq=state.seq, step=current)
    if to == current:
        raise StateConflict(f"the reveal is at step {current} already", seq=state.seq, step=current)
    for step in script[current:to]:
        if step["confirm"] and not (rnd.armed == step["n"] and step["n"] == to):
            raise StateConflict(
                f"step {step['n']} eliminates a team: arm it, then confirm",
                f"POST /api/reveal/arm with {{\"to\": {step['n']}}}, then next",
                seq=state.seq, step=current)
    data = {"round": round_id, "step": to, "from": current, "action": action,
            "total": total, "reveal": public_step(script[to - 1] if to else None),
            "next": next_of(script, to)}
    if to == total:
        data["publication"] = rnd.frozen["publication"]
    return ev.REVEAL_STEP, data


def arm(state: State, role: str, body: Any) -> Command:
    """The first of the two actions an elimination needs."""
    body = decode_body(body, ArmBody)
    round_id, rnd = _revealing(state, body.round)
    _unlocked(rnd, role)
    script = rnd.frozen["script"]
    to = given(body.to, rnd.step + 1)
    if to != rnd.step + 1:
        raise StateConflict(f"only the next step can be armed: the reveal is at step {rnd.step}",
                            seq=state.seq, step=rnd.step)
    if to > len(script) or not script[to - 1]["confirm"]:
        raise StateConflict(f"step {to} needs no arming: it eliminates nobody", seq=state.seq,
                            step=rnd.step)
    if rnd.armed == to:
        raise StateConflict(f"step {to} is armed already: confirm it with next", seq=state.seq,
                            step=rnd.step)
    return ev.REVEAL_ARMED, {"round": round_id, "step": to, "team": script[to - 1]["team"]}


def lock(state: State, body: Any) -> Command:
    body = decode_body(body, LockBody)
    round_id, rnd = _revealing(state, body.round)
    if rnd.locked == body.locked:
        raise StateConflict(f"the controls are {'locked' if rnd.locked else 'unlocked'} already",
                            seq=state.seq)
    return ev.REVEAL_LOCKED, {"round": round_id, "locked": body.locked,
                              "reason": body.reason[:200]}


def speed(state: State, role: str, body: Any) -> Command:
    body = decode_body(body, SpeedBody)
    round_id, rnd = _revealing(state, body.round)
    _unlocked(rnd, role)
    return ev.REVEAL_SPEED, {"round": round_id, "speed": float(body.speed)}
