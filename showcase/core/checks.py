"""The checks every command shares: the seq the caller expected, a reason, a known round
or team. Pure, like the commands that use them. A body's own checks (its fields, their
types and limits) come from its declared type: core/decode.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from msgspec import UNSET, UnsetType

from showcase.core.errors import InvalidRequest, StateConflict, Unknown
from showcase.core.state import State

Command = tuple[str, dict[str, Any]]


def check_expected_seq(state: State, expected: int | UnsetType) -> None:
    """A command that says which seq it expected is refused when the log has moved on."""
    if expected is not UNSET and expected != state.seq:
        raise StateConflict(
            f"the show has moved on: you expected seq {expected}, it is at seq {state.seq}",
            "reload the state and send the command again if it still applies",
            seq=state.seq,
        )


def reason_of(reason: str, required: bool, what: str | Callable[[], str]) -> str:
    """``what``: the words for a missing reason, or a function that makes them (once needed).
    Its length and characters were checked as the body was decoded (core/text.py)."""
    reason = reason.strip()
    if required and not reason:
        what = what() if callable(what) else what
        raise InvalidRequest(f"{what} needs a reason", "give 'reason': who asked for it and why")
    return reason


def known_round(state: State, round_id: str | None) -> str:
    """The round's id, or 404 naming the rounds there are; the current round by default."""
    round_id = round_id or state.current_round
    if round_id not in state.rounds:
        raise Unknown(f"unknown round {round_id!r}", f"rounds: {', '.join(state.rounds)}")
    return round_id


def known_team(state: State, team_id: str) -> str:
    """The team's id, or 404 naming the teams there are."""
    if team_id not in state.teams:
        raise Unknown(f"unknown team {team_id!r}", f"teams: {', '.join(state.teams)}")
    return team_id
