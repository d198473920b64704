"""The audience's voting as commands: opening it on a round, and closing it with the tally.

Pure, like every command: the votes themselves are not events (they live in their own
store, log/votes.py) and the tally is computed at the edge from that store
(voting/booth.py), because the core loads no numeric library. What the core owns is what
makes the log trustworthy: voting opens only on a round whose results can still change,
with a battle pool of known teams and rules in range; it closes with one event that enters
the tally's points into the round's criterion (sealed like any score until its reveal) and
carries the hash of the anonymised vote log the tally was computed from.
"""

from __future__ import annotations

from typing import Any

from showcase.core import events as ev
from showcase.core.bodies import VotingCloseBody, VotingOpenBody
from showcase.core.checks import Command, check_expected_seq, known_round, reason_of
from showcase.core.commands import require_open_round
from showcase.core.decode import decode_body
from showcase.core.errors import InvalidRequest, StateConflict, Unknown
from showcase.core.scoring import ACTIVE
from showcase.core.showfile import Criterion
from showcase.core.state import State

NORMALISES = ("linear", "points")  # criteria whose raw value can carry a tally's points


def voting_of(state: State, round_id: str) -> dict[str, Any] | None:
    """The round's voting as the log recorded it: None before it opened."""
    return state.rounds[round_id].voting


def open_voting(state: State, round_id: str, body: Any) -> Command:
    """Open voting on the current round with a battle pool and its rules."""
    body = decode_body(body, VotingOpenBody)
    check_expected_seq(state, body.expect_seq)
    round_id = known_round(state, round_id)
    if round_id != state.current_round:
        raise StateConflict(f"votes go to the current round, {state.current_round!r}, not "
                            f"{round_id!r}", seq=state.seq)
    require_open_round(state, round_id)
    voting = voting_of(state, round_id)
    if voting is not None:
        how = "is open" if voting["open"] else "was closed and tallied"
        raise StateConflict(f"voting on round {round_id!r} {how} already", seq=state.seq)
    criterion = _tally_criterion(state, body.criterion)
    teams = [t for t, status in state.rounds[round_id].roster.items() if status == ACTIVE]
    if len(teams) < 2:
        raise StateConflict(f"round {round_id!r} has fewer than two active teams: there is "
                            "nothing to compare", seq=state.seq)
    prompts = _pool(body, teams)
    return ev.VOTING_OPENED, {
        "round": round_id, "criterion": criterion.id, "rule": body.rule, "teams": teams,
        "rules": {"min_seconds": body.min_seconds, "per_session": body.per_session,
                  "per_address_per_minute": body.per_address_per_minute,
                  "minutes": body.minutes},
        "prompts": prompts,
    }


def _tally_criterion(state: State, criterion_id: str) -> Criterion:
    show = state.require_show()
    crit = show.criterion(criterion_id)
    if crit is None:
        raise Unknown(f"unknown criterion {criterion_id!r}",
                      f"criteria: {', '.join(c.id for c in show.criteria)}")
    if crit.source == "judges" or crit.normalise not in NORMALISES:
        raise InvalidRequest(f"criterion {crit.id!r} cannot take a tally's points",
                             "give a criterion of one value per team whose normalise is "
                             f"{' or '.join(NORMALISES)}")
    return crit


def _pool(body: VotingOpenBody, teams: list[str]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    prompts = []
    for prompt in body.prompts:
        if prompt.id in seen:
            raise InvalidRequest(f"prompt {prompt.id!r} is in the pool twice",
                                 "give each prompt its own id")
        seen.add(prompt.id)
        strangers = sorted(set(prompt.answers) - set(teams))
        if strangers:
            raise InvalidRequest(f"prompt {prompt.id!r} has an answer from {strangers[0]!r}, "
                                 "which is not an active team of the round",
                                 f"active teams: {', '.join(teams)}")
        prompts.append({"id": prompt.id, "text": prompt.text, "answers": dict(prompt.answers)})
    if not any(set(p["answers"]) == set(teams) for p in prompts):
        raise InvalidRequest("no prompt of the pool has an answer from every active team",
                             f"active teams: {', '.join(teams)}; a battle needs every team's "
                             "answer to the same prompt")
    return prompts


def close_voting(state: State, round_id: str, body: Any, result: dict[str, Any]) -> Command:
    """Close voting and record the tally as the criterion's values, in one event.

    ``result`` is what the edge computed from the vote store: ``votes`` (how many were
    counted), ``log_hash`` (SHA-256 of the exported log), ``tally`` (``Tally.to_json()``)
    and ``excluded`` (the flagged voters left out)."""
    body = decode_body(body, VotingCloseBody)
    check_expected_seq(state, body.expect_seq)
    round_id = known_round(state, round_id)
    voting = voting_of(state, round_id)
    if voting is None or not voting["open"]:
        raise StateConflict(f"voting on round {round_id!r} is not open", seq=state.seq)
    require_open_round(state, round_id)
    reason = reason_of(body.reason, bool(body.keep_voters), "counting flagged voters")
    crit = _tally_criterion(state, voting["criterion"])
    tally = result["tally"]
    points = {r["team"]: r["points"] for r in tally["results"]}
    if sorted(points) != sorted(voting["teams"]):
        raise InvalidRequest("the tally does not rate the round's voting teams",
                             f"teams: {', '.join(voting['teams'])}")
    return ev.VOTING_CLOSED, {
        "round": round_id, "criterion": crit.id, "votes": result["votes"],
        "log_hash": result["log_hash"], "excluded": list(result["excluded"]),
        "kept": list(body.keep_voters), "reason": reason, "tally": tally,
        "values": {team: value_of(crit, p) for team, p in points.items()},
    }


def value_of(crit: Criterion, points: float) -> float:
    """The raw value that ``crit`` turns into ``points`` (the inverse of its normalise)."""
    if crit.normalise == "points":
        return round(points, 9)
    share = points / crit.points if crit.points else 0.0
    return round(crit.baseline + share * (crit.maximum - crit.baseline), 9)
