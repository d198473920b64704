"""The checks every command shares: a request body against its fields, the seq the caller
expected, a reason, a known round or team. Pure, like the commands that use them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from showcase.core.errors import BadRequest, Conflict, NotFound
from showcase.core.state import State

Command = tuple[str, dict[str, Any]]
NUMBER = (int, float)
MAX_REASON = 500
TYPE_NAMES = {str: "a string", int: "a number", float: "a number", bool: "true or false",
              list: "an array", dict: "an object", type(None): "null"}


Spec = Mapping[str, tuple[tuple[type, ...], bool]]


def check_body(body: Any, spec: Spec) -> dict[str, Any]:
    """Check a JSON body against ``{field: (types, required)}``; unknown fields are refused."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object", f"got {type_name(body)}")
    for name in body:
        if name not in spec:
            raise BadRequest(f"unknown field {name!r}", f"allowed fields: {', '.join(spec)}")
    for name, (kinds, required) in spec.items():
        if name not in body:
            if required:
                raise BadRequest(f"field {name!r} is missing", f"allowed fields: {', '.join(spec)}")
            continue
        value = body[name]
        wrong_bool = isinstance(value, bool) and bool not in kinds
        if wrong_bool or not isinstance(value, kinds):
            expected = ("a whole number" if kinds == (int,) else
                        " or ".join(dict.fromkeys(TYPE_NAMES.get(k, k.__name__) for k in kinds)))
            got = (f"{value!r}" if isinstance(value, float) and kinds == (int,)
                   else type_name(value))  # 53.0 says more than "a number"
            raise BadRequest(f"field {name!r} must be {expected}, not {got}")
    return body


def type_name(value: Any) -> str:
    return TYPE_NAMES.get(type(value), type(value).__name__)


def check_expected_seq(state: State, body: dict[str, Any]) -> None:
    """A command that says which seq it expected is refused when the log has moved on."""
    expected = body.get("expect_seq")
    if expected is not None and expected != state.seq:
        raise Conflict(
            f"the show has moved on: you expected seq {expected}, it is at seq {state.seq}",
            "reload the state and send the command again if it still applies",
            seq=state.seq,
        )


def reason_of(body: dict[str, Any], required: bool, what: str | Callable[[], str]) -> str:
    """``what``: the words for a missing reason, or a function that makes them (once needed)."""
    reason = str(body.get("reason") or "").strip()
    if required and not reason:
        what = what() if callable(what) else what
        raise BadRequest(f"{what} needs a reason", "give 'reason': who asked for it and why")
    if len(reason) > MAX_REASON:
        raise BadRequest(f"reason is too long ({len(reason)} characters, at most {MAX_REASON})")
    return reason


def known_round(state: State, round_id: str | None) -> str:
    """The round's id, or 404 naming the rounds there are; the current round by default."""
    round_id = round_id or state.current_round
    if round_id not in state.rounds:
        raise NotFound(f"unknown round {round_id!r}", f"rounds: {', '.join(state.rounds)}")
    return round_id


def known_team(state: State, team_id: str) -> str:
    """The team's id, or 404 naming the teams there are."""
    if team_id not in state.teams:
        raise NotFound(f"unknown team {team_id!r}", f"teams: {', '.join(state.teams)}")
    return team_id
