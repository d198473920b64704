"""Equal exposure: whatever order voting sessions arrive in, pairs and answers stay even."""

from __future__ import annotations

import random

import pytest

from showcase.voting.errors import VotingError
from showcase.voting.schedule import Battle, Scheduler


def grid(teams: list[str], prompts: int) -> list[tuple[str, str]]:
    return [(t, f"p{j}") for t in teams for j in range(prompts)]


def spreads(s: Scheduler) -> tuple[int, int]:
    pairs = [s.pair_battles.get((x, y), 0) for i, x in enumerate(s.teams) for y in s.teams[i + 1:]]
    views = [s.views.get((t, p), 0) for t in s.teams for p in s.prompts]
    return max(pairs) - min(pairs), max(views) - min(views)


@pytest.mark.parametrize("seed", range(12))
def test_schedule_keeps_exposure_even_under_bursts_and_any_arrival_order(seed: int) -> None:
    rng = random.Random(seed)
    teams = [f"team{i}" for i in range(rng.randint(2, 8))]
    s = Scheduler(teams, grid(teams, rng.randint(1, 8)))
    answer_bound = 1 if len(teams) % 2 == 0 else 2
    seen: dict[str, set[tuple[str, frozenset[str]]]] = {}
    sides: dict[frozenset[str], list[str]] = {}
    active: list[str] = []
    for step in range(4 * s.size + 50):
        if not active or rng.random() < 0.05:  # a burst of new sessions arrives
            active += [f"s{seed}-{step}-{k}" for k in range(rng.randint(1, 20))]
        session = rng.choice(active)
        for _ in range(rng.choice([1, 1, 1, 5, 30])):  # one vote, or a quick run of votes
            battle = s.next_battle(session)
            if battle is None:
                active.remove(session)
                assert len(seen[session]) == s.size  # only once it has seen every battle
                break
            key = (battle.prompt, frozenset((battle.a, battle.b)))
            assert key not in seen.setdefault(session, set()), "a session saw a battle twice"
            seen[session].add(key)
            sides.setdefault(frozenset((battle.a, battle.b)), []).append(battle.a)
            pair_spread, view_spread = spreads(s)
            assert pair_spread <= 1 + s.held_back
            assert view_spread <= answer_bound + 2 * s.held_back
        if rng.random() < 0.1 and len(active) > 1:
            active.remove(rng.choice(active))  # a viewer leaves mid-show
    for shown_as_a in sides.values():
        first = shown_as_a.count(shown_as_a[0])
        assert abs(first - (len(shown_as_a) - first)) <= 1  # A and B alternate per pair
    fresh = 0
    while s.held_back:  # new viewers drain what was held back ...
        s.next_battle(f"fresh{fresh}")
        fresh += 1
    assert spreads(s)[0] <= 1 and spreads(s)[1] <= answer_bound  # ... and all is even again


def test_schedule_shows_one_session_every_battle_once_then_nothing() -> None:
    teams = ["LG", "SKT", "Upstage", "Naver", "NC"]
    s = Scheduler(teams, grid(teams, 4))
    got = [s.next_battle("one") for _ in range(s.size)]
    keys = {(b.prompt, frozenset((b.a, b.b))) for b in got if b is not None}
    assert len(keys) == s.size == 40
    assert s.next_battle("one") is None
    assert s.next_battle("two") is not None


def test_schedule_leaves_out_a_prompt_a_team_cannot_answer() -> None:
    teams = ["LG", "SKT", "Upstage"]
    answers = [a for a in grid(teams, 3) if a != ("SKT", "p1")]  # withheld: it leaked
    s = Scheduler(teams, answers)
    assert s.prompts == ("p0", "p2") and s.left_out == {"p1": ["SKT"]}
    assert {s.next_battle(f"v{k}").prompt for k in range(30)} == {"p0", "p2"}  # type: ignore[union-attr]


def test_schedule_is_deterministic_and_replays_after_a_restart() -> None:
    teams = ["A", "B", "C", "D"]
    first = Scheduler(teams, grid(teams, 3))
    calls = [f"v{k % 7}" for k in range(60)]
    handed = [(c, first.next_battle(c)) for c in calls]
    again = Scheduler(teams, grid(teams, 3))
    for session, battle in handed:
        assert battle is not None
        again.record(session, battle)
    assert again.next_battle("v1") == first.next_battle("v1")
    with pytest.raises(VotingError, match="do not match"):
        again.record("v2", Battle("p0", "A", "A"))


@pytest.mark.parametrize(("teams", "answers", "problem"), [
    (["A"], [("A", "p")], "at least two teams"),
    (["A", "A"], [("A", "p")], "listed twice"),
    (["A", "B"], [("A", "p"), ("Kakao", "p")], "unknown team"),
    (["A", "B"], [("A", "p"), ("B", "q")], "no prompt has a servable answer"),
])
def test_schedule_names_the_problem_with_bad_input(
        teams: list[str], answers: list[tuple[str, str]], problem: str) -> None:
    with pytest.raises(VotingError, match=problem):
        Scheduler(teams, answers)
