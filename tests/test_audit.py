"""The audit re-runs each event's command: a genuine log passes, a forged or altered one is
refused with its seq and the reason, as `showcase verify` and `showcase import` report it."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from showcase.core import commands, reveal
from showcase.core import events as ev
from showcase.core.audit import ROLES, AuditError, audit
from showcase.core.showfile import load_show, sample_show_path
from showcase.core.state import State
from tests.test_scoring import hand_round


def genuine_log() -> list[ev.Event]:
    """The hand-scored round, the jury, a freeze and the whole reveal, then round 2 opens."""
    s = hand_round()
    s.run(commands.decide_jury, "r1", {"order": ["c", "d"], "reason": "jury"})
    s.run(commands.freeze_round, "r1", {})
    script = s.state.rounds["r1"].frozen["script"]  # type: ignore[index]
    for step in script:
        if step["confirm"]:
            s.emit(*reveal.arm(s.state, "presenter", {"to": step["n"]}), actor="presenter")
        s.emit(*reveal.move(s.state, "next", "presenter", {"to": step["n"]},
                            now=s.state.ts + 5), actor="presenter:remote")
    s.run(commands.start_round, "r2", {})
    events = [dataclasses.replace(s.events[0], actor="showfile"), *s.events[1:]]
    return [roundtrip(e) for e in events]


def roundtrip(event: ev.Event) -> ev.Event:
    """As an export stores it and `showcase import` reads it back."""
    return ev.event_from_json(orjson.loads(orjson.dumps(event.to_json())))


def with_data(event: ev.Event, **changes: Any) -> ev.Event:
    return dataclasses.replace(event, data={**event.data, **changes})


def renumber(events: list[ev.Event]) -> list[ev.Event]:
    return [dataclasses.replace(e, seq=i) for i, e in enumerate(events, start=1)]


def first(events: list[ev.Event], event_type: str, **match: Any) -> int:
    return next(i for i, e in enumerate(events) if e.type == event_type
                and all(e.data.get(k) == v for k, v in match.items()))


def test_audit_passes_a_genuine_log_to_the_same_standings() -> None:
    events = genuine_log()
    state = audit(events)
    assert state.seq == len(events) and state.rounds["r1"].phase == "published"
    assert state.current_round == "r2"


def test_audit_refuses_a_score_entered_after_publication() -> None:
    events = genuine_log()
    forged = ev.Event(len(events) + 1, events[-1].ts + 1, ev.SCORE_ENTERED, "operator",
                      {"round": "r1", "criterion": "benchmark", "team": "c", "value": 90})
    with pytest.raises(AuditError, match=rf"seq {len(events) + 1}: .*r1.* is published"):
        audit([*events, forged])


def test_audit_refuses_a_value_outside_the_scale() -> None:
    events = genuine_log()
    i = first(events, ev.SCORE_ENTERED, team="a", criterion="benchmark")
    events[i] = with_data(events[i], value=1e9)
    with pytest.raises(AuditError, match=rf"seq {i + 1}: .*out of range"):
        audit(events)


def test_audit_refuses_a_silently_changed_value() -> None:
    events = genuine_log()
    i = first(events, ev.SCORE_ENTERED, team="b", criterion="benchmark", value=62.5)
    events[i] = with_data(events[i], previous=50)
    with pytest.raises(AuditError, match=rf"seq {i + 1}: .*'previous' is 50, the command "
                                         r"gives 55"):
        audit(events)


def test_audit_refuses_an_unknown_extra_field() -> None:
    events = genuine_log()
    i = first(events, ev.TEAM_DISQUALIFIED)
    events[i] = with_data(events[i], note="quietly")
    with pytest.raises(AuditError, match=rf"seq {i + 1}: .*'note' is not one the command"):
        audit(events)


def test_audit_refuses_a_published_ranking_that_the_scores_do_not_give() -> None:
    events = genuine_log()
    i = first(events, ev.ROUND_FROZEN)
    publication = orjson.loads(orjson.dumps(events[i].data["publication"]))
    publication["eliminated"] = ["a"]
    events[i] = with_data(events[i], publication=publication)
    with pytest.raises(AuditError, match=rf"seq {i + 1}: round_frozen differs .*publication"):
        audit(events)


def test_audit_names_a_duplicate_seq_a_gap_and_a_swap() -> None:
    events = genuine_log()
    with pytest.raises(AuditError, match="seq 5: duplicate seq"):
        audit([*events[:5], events[4], *events[5:]])
    with pytest.raises(AuditError, match="seq 7: seq 6 to 6 are missing"):
        audit([*events[:5], *events[6:]])
    # Swapped and renumbered: the reveal's steps out of order no command could take.
    i = first(events, ev.REVEAL_STEP)
    swapped = renumber([*events[:i], events[i + 1], events[i], *events[i + 2:]])
    with pytest.raises(AuditError, match=rf"seq {i + 1}: "):
        audit(swapped)


def test_audit_refuses_an_event_from_a_role_that_cannot_record_it() -> None:
    events = genuine_log()
    i = first(events, ev.ROUND_FROZEN)
    events[i] = dataclasses.replace(events[i], actor="presenter:remote")
    with pytest.raises(AuditError, match=rf"seq {i + 1}: round_frozen is recorded by operator,"
                                         r" not by 'presenter:remote'"):
        audit(events)
    configured = dataclasses.replace(events[0], actor="operator")
    with pytest.raises(AuditError, match="seq 1: the show file is configured by the server"):
        audit([configured])


def test_audit_roles_match_the_servers_command_table() -> None:
    from showcase.server.table import engine_commands

    by_type = {"/api/scores": ev.SCORE_ENTERED, "/api/teams": ev.TEAM_ADDED,
               "/api/teams/{team}/disqualify": ev.TEAM_DISQUALIFIED,
               "/api/rounds/{round}/freeze": ev.ROUND_FROZEN,
               "/api/rounds/{round}/publish": ev.ROUND_PUBLISHED,
               "/api/reveal/next": ev.REVEAL_STEP, "/api/reveal/arm": ev.REVEAL_ARMED,
               "/api/reveal/lock": ev.REVEAL_LOCKED, "/api/reveal/speed": ev.REVEAL_SPEED}
    table = {c.path: c.roles for c in engine_commands(load_show(sample_show_path()).egress())}
    for path, event_type in by_type.items():
        assert set(table[path]) == set(ROLES[event_type]), path


def test_audit_of_an_empty_state_needs_the_first_event() -> None:
    with pytest.raises(AuditError, match="seq 2: seq 1 to 1 are missing"):
        audit(genuine_log()[1:2], State())


def test_audit_refuses_a_judge_entering_another_judges_sheet() -> None:
    events = genuine_log()
    i = first(events, ev.SCORE_ENTERED, criterion="expert", judge="j2")
    # Recorded as entered by judge j2 with their own token: it passes.
    events[i] = dataclasses.replace(events[i], actor="judge:j2")
    assert audit(events).seq == len(events)
    # The same sheet recorded as entered by judge j1: no command lets j1 write j2's sheet.
    events[i] = dataclasses.replace(events[i], actor="judge:j1")
    with pytest.raises(AuditError, match=rf"seq {i + 1}: .*judge 'j1' may enter only their "
                                         r"own sheets, not judge 'j2'"):
        audit(events)
