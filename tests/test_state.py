"""The fold: a replay gives the identical state; rounds, replacement teams, reinstatement."""

from __future__ import annotations

import orjson
import pytest

from showcase.core import commands
from showcase.core import events as ev
from showcase.core.errors import Conflict, LogError
from showcase.core.state import State, fold
from showcase.core.views import operator_state, public_state
from tests.test_scoring import Show, hand_round


def test_replaying_the_log_gives_byte_identical_state() -> None:
    s = hand_round()
    s.run(commands.decide_jury, "r1", {"order": ["c", "d"], "reason": "jury"})
    s.run(commands.publish_round, "r1", {})
    events = [ev.event_from_json(orjson.loads(orjson.dumps(e.to_json())))
              for e in s.events]
    replayed = fold(events)
    assert orjson.dumps(operator_state(replayed)) == orjson.dumps(operator_state(s.state))
    assert orjson.dumps(public_state(replayed)) == orjson.dumps(public_state(s.state))


def test_a_gap_in_the_log_is_refused() -> None:
    state = State()
    with pytest.raises(LogError, match="gap"):
        state.apply(ev.Event(2, 0.0, ev.ROUND_STARTED, "operator", {"round": "r1"}))


def test_replacement_team_joins_the_next_round_only() -> None:
    s = hand_round()
    with pytest.raises(Conflict, match="publish it first"):
        commands.start_round(s.state, "r2", {})
    s.run(commands.decide_jury, "r1", {"order": ["d", "c"], "reason": "jury"})
    s.run(commands.publish_round, "r1", {})
    s.run(commands.add_team, {"id": "kakao", "name_ko": "카카오", "name_en": "Kakao",
                              "colour": "#ffcd00"})
    assert "kakao" not in s.state.rounds["r1"].roster
    s.run(commands.start_round, "r2", {})
    # survivors of r1 and the replacement; eliminated and disqualified teams stay out
    assert list(s.state.rounds["r2"].roster) == ["a", "b", "d", "kakao"]
    assert s.state.current_round == "r2"


def test_a_team_cannot_join_a_round_under_way() -> None:
    s = Show()
    s.run(commands.add_team, {"id": "kt", "name_ko": "KT", "name_en": "KT"})  # for r2
    with pytest.raises(Conflict, match="has started"):
        commands.add_team(s.state, {"id": "konan", "name_ko": "코난", "name_en": "Konan",
                                    "round": "r1"})


def test_reinstated_team_counts_again() -> None:
    s = Show()
    s.run(commands.change_status, ev.TEAM_DISQUALIFIED, "a", {"reason": "suspected copying"})
    with pytest.raises(Conflict, match="disqualified"):
        s.score("benchmark", "a", 50)
    s.run(commands.change_status, ev.TEAM_REINSTATED, "a",
          {"reason": "cleared in the public verification session", "announce": True})
    s.score("benchmark", "a", 50)
    assert s.state.teams["a"].status == "active"
    assert s.state.teams["a"].public_reason == "cleared in the public verification session"


def test_unannounced_disqualification_stays_out_of_the_public_view() -> None:
    s = Show()
    s.run(commands.change_status, ev.TEAM_DISQUALIFIED, "b", {"reason": "weights match"})
    public = {t["id"]: t for t in public_state(s.state)["teams"]}
    assert public["b"]["status"] == "active"
    assert "weights match" not in orjson.dumps(public_state(s.state)).decode()
    assert s.state.teams["b"].status == "disqualified"


def test_reinstating_after_publication_leaves_the_announced_round_alone() -> None:
    s = hand_round()
    s.run(commands.decide_jury, "r1", {"order": ["d", "c"], "reason": "jury"})
    s.run(commands.publish_round, "r1", {})
    before = orjson.dumps(s.state.standings("r1").to_json())
    event = s.run(commands.change_status, ev.TEAM_REINSTATED, "e", {"reason": "cleared"})
    assert event.data["round"] == "r2"
    assert orjson.dumps(s.state.standings("r1").to_json()) == before
    s.run(commands.start_round, "r2", {})
    assert "e" in s.state.rounds["r2"].roster


def test_reinstating_a_replacement_team_does_not_pull_it_into_the_open_round() -> None:
    s = Show()
    s.run(commands.add_team, {"id": "kakao", "name_ko": "카카오", "name_en": "Kakao"})
    s.run(commands.change_status, ev.TEAM_WITHDRAWN, "kakao", {"reason": "changed its mind"})
    s.run(commands.change_status, ev.TEAM_REINSTATED, "kakao", {"reason": "back in"})
    assert "kakao" not in s.state.rounds["r1"].roster


def test_a_health_change_already_recorded_is_refused() -> None:
    """Every node checks every team: the one that records a change second finds it
    recorded when its command is checked (again, after losing the race) and is refused,
    so the log holds each change once."""
    s = hand_round()
    down = {"up": False, "latency_ms": None, "error": "connection refused"}
    s.run(commands.team_health, "a", down)
    with pytest.raises(Conflict, match="recorded as down already"):
        s.run(commands.team_health, "a", {**down, "error": "timed out"})
    up = s.run(commands.team_health, "a", {"up": True, "latency_ms": 12.0, "error": ""})
    assert up.data["up"] is True
    assert [e.data["up"] for e in s.events if e.type == ev.TEAM_HEALTH] == [False, True]
