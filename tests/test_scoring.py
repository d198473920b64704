"""Scoring against tables computed by hand.

The round: five teams A..E; E is disqualified. Criteria:

- benchmark, 40 points, linear from 25 (guessing) to 100:
  A 100 -> 40; B 62.5 -> 20 (after a correction from 55); C 55 -> 16; D 55 -> 16; E 85 -> 32
- expert, 35 points, linear 0..100, three judges, trimmed mean:
  A [90, 80, 100] -> 90 -> 31.5; B [60, 80, 70] -> 70 -> 24.5;
  C [10, 80, 90] -> 80 -> 28 (untrimmed would be 60); D [80, 80, 100] -> 80 -> 28
- feedback, 25 points, relative to the best ranked team (A 80; E's 96 does not count):
  A 80 -> 25; B 64 -> 20; C 48 -> 15; D 48 -> 15

Totals: A 96.5, B 64.5, C 59, D 59. Bottom one leaves, so three survive: C and D tie
exactly across the cut on total and every tie-break, so both are flagged for the jury.
"""

from __future__ import annotations

from typing import Any

import pytest

from showcase.core import commands
from showcase.core import events as ev
from showcase.core.errors import BadRequest, Conflict
from showcase.core.scoring import aggregate_sheets, compute_standings, round_half_up
from showcase.core.showfile import parse_show
from showcase.core.state import State


def show_dict(cut: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "judges": [{"id": "j1"}, {"id": "j2"}, {"id": "j3"}],
        "teams": [{"id": t, "name_ko": t.upper(), "name_en": t.upper()} for t in "abcde"],
        "criteria": [
            {"id": "benchmark", "points": 40, "normalise": "linear", "baseline": 25,
             "maximum": 100},
            {"id": "expert", "points": 35, "normalise": "linear", "baseline": 0,
             "maximum": 100, "source": "judges", "trim": True},
            {"id": "feedback", "points": 25, "normalise": "relative"},
        ],
        "rounds": [{"id": "r1", "cut": cut or {"eliminate_bottom": 1},
                    "tie_break": ["benchmark", "expert", "feedback"]},
                   {"id": "r2", "cut": {"advance": 2}}],
    }


class Show:
    """Drives commands against a state, as the server does, without a server."""

    def __init__(self, cut: dict[str, Any] | None = None) -> None:
        self.show = parse_show(show_dict(cut))
        self.state = State()
        self.events: list[ev.Event] = []
        self.emit(ev.SHOW_CONFIGURED, {"config": self.show.config()})

    def emit(self, event_type: str, data: dict[str, Any], actor: str = "operator") -> ev.Event:
        event = ev.Event(self.state.seq + 1, 1000.0 + self.state.seq, event_type, actor, data)
        self.state.apply(event)
        self.events.append(event)
        return event

    def run(self, fn: Any, *args: Any) -> ev.Event:
        return self.emit(*fn(self.state, *args))

    def score(self, criterion: str, team: str, value: float | None, **extra: Any) -> ev.Event:
        return self.run(commands.enter_score, "operator",
                        {"criterion": criterion, "team": team, "value": value, **extra})


def hand_round() -> Show:
    s = Show()
    s.score("benchmark", "b", 55)
    for team, value in {"a": 100, "b": 62.5, "c": 55, "d": 55, "e": 85}.items():
        s.score("benchmark", team, value, **({"reason": "re-run on the full set"}
                                             if team == "b" else {}))
    sheets = {"a": [90, 80, 100], "b": [60, 80, 70], "c": [10, 80, 90], "d": [80, 80, 100],
              "e": [95, 95, 95]}
    for team, values in sheets.items():
        for judge, value in zip(("j1", "j2", "j3"), values, strict=True):
            s.score("expert", team, value, judge=judge)
    for team, value in {"a": 80, "b": 64, "c": 48, "d": 48, "e": 96}.items():
        s.score("feedback", team, value)
    s.run(commands.change_status, ev.TEAM_DISQUALIFIED, "e", {"reason": "weights match"})
    return s


def table(s: Show) -> list[tuple[Any, ...]]:
    st = s.state.standings("r1")
    return [(r.team, r.rank, r.points["benchmark"], r.points["expert"], r.points["feedback"],
             r.total, r.advances, r.jury, r.status) for r in st.rows]


def test_round_scores_match_the_hand_computed_table() -> None:
    s = hand_round()
    assert table(s) == [
        ("a", 1, 40.0, 31.5, 25.0, 96.5, True, False, "active"),
        ("b", 2, 20.0, 24.5, 20.0, 64.5, True, False, "active"),
        ("c", 3, 16.0, 28.0, 15.0, 59.0, None, True, "active"),
        ("d", 3, 16.0, 28.0, 15.0, 59.0, None, True, "active"),
        # disqualified: computed for the record, never ranked, never the best for 'relative'
        ("e", None, 32.0, 33.25, 30.0, 95.25, None, False, "disqualified"),
    ]
    standings = s.state.standings("r1")
    assert standings.tied_at_cut == ["c", "d"]
    assert standings.survivors == 3
    assert standings.complete


def test_tie_across_the_cut_blocks_publication_until_the_jury_decides() -> None:
    s = hand_round()
    with pytest.raises(Conflict, match="tied across the cut"):
        commands.publish_round(s.state, "r1", {})
    with pytest.raises(BadRequest, match="each tied team once"):
        commands.decide_jury(s.state, "r1", {"order": ["d", "a"], "reason": "jury vote"})
    s.run(commands.decide_jury, "r1", {"order": ["d", "c"], "reason": "jury vote 4-3"})
    with pytest.raises(BadRequest, match="each tied team once"):
        commands.decide_jury(s.state, "r1", {"order": ["d", "d"], "reason": "typo"})
    assert [(t[0], t[1], t[6], t[7]) for t in table(s)[:4]] == [
        ("a", 1, True, False), ("b", 2, True, False), ("d", 3, True, False),
        ("c", 4, False, False),
    ]
    published = s.run(commands.publish_round, "r1", {})
    assert published.data["eliminated"] == ["c"]
    assert s.state.teams["c"].status == "eliminated"
    assert s.state.teams["e"].public_status == "disqualified"
    assert s.state.teams["e"].public_reason == "weights match"


def test_correction_needs_a_reason_and_keeps_the_previous_value_in_the_event() -> None:
    s = Show()
    s.score("benchmark", "a", 70)
    with pytest.raises(BadRequest, match="needs a reason"):
        s.score("benchmark", "a", 72)
    event = s.score("benchmark", "a", 72, reason="grader fix on item 17")
    assert event.data["previous"] == 70
    assert event.data["reason"] == "grader fix on item 17"
    assert s.state.rounds["r1"].values["benchmark"]["a"] == 72


def test_trimmed_mean_drops_one_highest_and_one_lowest() -> None:
    assert aggregate_sheets([10, 80, 90], trim=True) == 80
    assert aggregate_sheets([10, 80, 90], trim=False) == 60
    assert aggregate_sheets([70, 90], trim=True) == 80  # too few sheets to trim
    assert aggregate_sheets([], trim=True) is None


def test_points_round_half_up_at_the_show_precision() -> None:
    assert round_half_up(2.675, 2) == 2.68  # float round() would give 2.67
    assert round_half_up(30.916666, 2) == 30.92


def test_linear_counts_below_baseline_as_zero_and_caps_at_maximum() -> None:
    s = Show(cut={"advance": 5})
    s.score("benchmark", "a", 20)  # below guessing
    s.score("benchmark", "b", 100)
    rows = {r.team: r for r in s.state.standings("r1").rows}
    assert rows["a"].points["benchmark"] == 0.0
    assert rows["b"].points["benchmark"] == 40.0
    assert not s.state.standings("r1").complete


def test_threshold_cut_eliminates_every_team_below_it() -> None:
    s = Show(cut={"below": 60})
    for team, value in {"a": 100, "b": 62.5, "c": 55, "d": 32.5, "e": 25}.items():
        s.score("benchmark", team, value)
    for team in "abcde":
        for judge in ("j1", "j2", "j3"):
            s.score("expert", team, 100 if team in "ab" else 80, judge=judge)
        s.score("feedback", team, 50)
    standings = s.state.standings("r1")
    totals = {r.team: (r.total, r.advances) for r in standings.rows}
    # a: 40+35+25, b: 20+35+25, c: 16+28+25 = 69, d: 4+28+25 = 57, e: 0+28+25 = 53
    assert totals == {"a": (100.0, True), "b": (80.0, True), "c": (69.0, True),
                      "d": (57.0, False), "e": (53.0, False)}
    assert standings.tied_at_cut == []


def test_shared_rank_follows_the_tie_break_order() -> None:
    show = parse_show(show_dict())
    rnd = show.rounds[0]
    roster = dict.fromkeys("abcd", "active")
    values = {"benchmark": {"a": 62.5, "b": 55, "c": 55, "d": 55},
              "feedback": {"a": 50, "b": 50, "c": 50, "d": 50}}
    # a: 20 + 24.5 + 25 = 69.5; b and c: 16 + 28 + 25 = 69; d: 16 + 3.5 + 25 = 44.5
    sheets = {"expert": {"a": {"j1": 70, "j2": 70, "j3": 70},
                         "b": {"j1": 80, "j2": 80, "j3": 80},
                         "c": {"j1": 80, "j2": 80, "j3": 80},
                         "d": {"j1": 10, "j2": 10, "j3": 10}}}
    standings = compute_standings(show, rnd, roster, values, sheets)
    ranks = [(r.team, r.total, r.rank) for r in standings.rows]
    # b and c are equal on the total and on every tie-break: they share rank 2; d is 4th
    assert ranks == [("a", 69.5, 1), ("b", 69.0, 2), ("c", 69.0, 2), ("d", 44.5, 4)]


def test_jury_is_refused_without_a_tie_or_before_the_round_is_complete() -> None:
    s = Show()
    with pytest.raises(Conflict, match="not complete"):
        commands.decide_jury(s.state, "r1", {"order": ["a"], "reason": "x"})
    for team, value in zip("abcde", (100, 90, 80, 70, 60), strict=True):
        s.score("benchmark", team, value)
        for judge in ("j1", "j2", "j3"):
            s.score("expert", team, 50, judge=judge)
        s.score("feedback", team, 50)
    with pytest.raises(Conflict, match="no teams are tied"):
        commands.decide_jury(s.state, "r1", {"order": ["d", "e"], "reason": "x"})


def test_tie_break_orders_equal_totals_by_the_first_differing_criterion() -> None:
    show = parse_show(show_dict())
    roster = dict.fromkeys("ab", "active")
    # a: 20 (benchmark 62.5) + 24.5 (expert 70) = 44.5
    values = {"benchmark": {"a": 62.5, "b": 55}, "feedback": {"a": 0, "b": 0}}
    sheets = {"expert": {"a": {"j1": 70, "j2": 70, "j3": 70},
                         "b": {"j1": 81.4286, "j2": 81.4286, "j3": 81.4286}}}
    standings = compute_standings(show, show.rounds[0], roster, values, sheets)
    # b: 16 (benchmark 55) + 28.5 (expert 81.4286 rounds to 28.50) = 44.5: a leads on benchmark
    assert [(r.team, r.total, r.rank) for r in standings.rows] == [("a", 44.5, 1),
                                                                   ("b", 44.5, 2)]


def test_an_exact_half_rounds_up() -> None:
    s = Show(cut={"advance": 5})
    for judge in ("j1", "j2", "j3"):
        s.score("expert", "a", 70.5, judge=judge)
    # 35 points x 70.5% = 24.675 exactly: half-up gives 24.68 (floats would give 24.67)
    assert s.state.standings("r1").row("a").points["expert"] == 24.68  # type: ignore[union-attr]


def test_a_jury_decision_stops_applying_when_a_correction_changes_who_is_tied() -> None:
    s = hand_round()
    s.run(commands.decide_jury, "r1", {"order": ["d", "c"], "reason": "jury vote"})
    assert s.state.standings("r1").jury_applied == ["d", "c"]
    # corrections bring b to 16 + 28 + 15 = 59 as well
    for judge, value in zip(("j1", "j2", "j3"), (80, 80, 100), strict=True):
        s.score("expert", "b", value, judge=judge, reason="sheet mix-up")
    s.score("benchmark", "b", 55, reason="re-graded")
    s.score("feedback", "b", 48, reason="duplicate votes removed")
    standings = s.state.standings("r1")
    assert standings.tied_at_cut == ["b", "c", "d"]  # three-way tie: the old order no longer fits
    assert standings.jury_applied == []
    with pytest.raises(Conflict, match="tied across the cut"):
        commands.publish_round(s.state, "r1", {})


def test_a_judged_criterion_is_incomplete_until_every_judge_has_a_sheet() -> None:
    s = Show(cut={"advance": 5})
    for team in "abcde":
        s.score("benchmark", team, 50)
        s.score("feedback", team, 50)
        for judge in ("j1", "j2", "j3"):
            if (team, judge) != ("c", "j3"):
                s.score("expert", team, 60, judge=judge)
    assert s.state.standings("r1").missing == [
        {"criterion": "expert", "team": "c", "detail": "2 of 3 sheets"}]
    with pytest.raises(Conflict, match=r"missing c/expert"):
        commands.publish_round(s.state, "r1", {})
