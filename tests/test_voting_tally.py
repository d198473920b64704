"""The audience tally: simulated voters with known strengths, and an independent fit."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from showcase.voting import bt
from showcase.voting.errors import VotingError
from showcase.voting.outliers import outlier_voters
from showcase.voting.tally import Vote, tally
from showcase.voting.votelog import canonical_line, log_hash, ndjson

TRUTH = {"LG": 1100.0, "SKT": 1050.0, "Upstage": 1000.0, "Naver": 950.0, "NC": 900.0}


def simulate(truth: dict[str, float], n: int, seed: int, ties: float = 0.0, bad: float = 0.0,
             voters: int = 500) -> list[Vote]:
    """Votes from voters who follow Bradley-Terry with the true ratings ``truth``; a share
    of ties and of "both bad" drawn independently of the teams."""
    rng = np.random.default_rng(seed)
    teams = list(truth)
    r = np.array([truth[t] for t in teams])
    a = rng.integers(0, len(teams), n)
    b = (a + rng.integers(1, len(teams), n)) % len(teams)
    p_a = 1.0 / (1.0 + 10 ** ((r[b] - r[a]) / 400))
    u = rng.random(n)
    kind = rng.random(n)
    choice = np.where(u < p_a, "a", "b").astype(object)
    choice[kind < ties] = "tie"
    choice[(kind >= ties) & (kind < ties + bad)] = "bad"
    who = rng.integers(0, voters, n)
    return [Vote(teams[i], teams[j], str(c), f"v{w}")
            for i, j, c, w in zip(a, b, choice, who, strict=True)]


def test_tally_recovers_the_true_order_and_separates_clear_gaps() -> None:
    result = tally(TRUTH, simulate(TRUTH, 30_000, seed=1, ties=0.1, bad=0.05), max_points=25)
    assert [r.team for r in result.results] == list(TRUTH)
    assert [r.rank for r in result.results] == [1, 2, 3, 4, 5]
    assert result.results[0].points == 25 and result.results[-1].points == 0
    assert result.bad > 0 and result.votes == 30_000 and result.rated == 30_000 - result.bad
    assert abs(np.mean([r.rating for r in result.results]) - 1000) < 1e-9


def test_tally_intervals_cover_the_truth_at_about_the_nominal_rate() -> None:
    truth = {"A": 1060.0, "B": 1020.0, "C": 980.0, "D": 940.0}  # averages 1000, as fitted
    covered = trials = 0
    for seed in range(150):
        counts, _ = _counts(truth, simulate(truth, 2_000, seed=seed))
        theta = bt.fit(counts)
        half = 1.959964 * bt.ALPHA * np.sqrt(np.diag(bt.sandwich(counts, theta)))
        rating = bt.INITIAL + bt.ALPHA * theta
        true = np.array(list(truth.values()))
        covered += int(np.sum(np.abs(rating - true) <= half))
        trials += len(truth)
    assert 0.92 <= covered / trials <= 0.98, covered / trials


def _counts(truth: dict[str, float], votes: list[Vote]) -> tuple[bt.Counts, int]:
    from showcase.voting.tally import count_votes
    return count_votes(truth, votes)


def test_tally_equals_lmarena_arena_rank_within_1e_6() -> None:
    """arena-rank (lmarena's own package, JAX and L-BFGS) fits the same votes: ratings
    and sandwich intervals agree to 1e-6 Elo points. Its L-BFGS is run to a gradient of
    1e-11 (at its default of 1e-9 they differ by 1.3e-6; at 1e-11 by 7e-9). Slowest here:
    JAX compiles its solver first (tens of seconds on a busy 2-core machine)."""
    import pandas as pd
    from arena_rank.models.bradley_terry import BradleyTerry
    from arena_rank.utils.data_utils import PairDataset

    votes = simulate(TRUTH, 20_000, seed=7, ties=0.15, bad=0.05)
    ours = {r.team: r for r in tally(TRUTH, votes, max_points=25).results}
    rated = [v for v in votes if v.choice != "bad"]  # arena-rank would take "bad" as a tie
    frame = pd.DataFrame({"model_a": [v.a for v in rated], "model_b": [v.b for v in rated],
                          "winner": [{"a": "model_a", "b": "model_b", "tie": "tie"}[v.choice]
                                     for v in rated]})
    data = PairDataset.from_pandas(frame)
    model = BradleyTerry(n_competitors=len(data.competitors), max_iter=1_000,
                         gtol=1e-11, ftol=0.0)
    theirs = model.compute_ratings_and_cis(data, significance_level=0.05)
    for k, team in enumerate(theirs["competitors"]):
        assert ours[team].rating == pytest.approx(float(theirs["ratings"][k]), abs=1e-6)
        assert ours[team].lower == pytest.approx(float(theirs["rating_lower"][k]), abs=1e-6)
        assert ours[team].upper == pytest.approx(float(theirs["rating_upper"][k]), abs=1e-6)


def test_tally_shares_a_rank_where_intervals_overlap() -> None:
    truth = {"A": 1200.0, "B": 1000.0, "C": 1001.0}
    result = tally(truth, simulate(truth, 600, seed=3), max_points=25)
    ranks = {r.team: r.rank for r in result.results}
    assert ranks["A"] == 1 and ranks["B"] == ranks["C"] == 2


def test_tally_robustness_counts_the_votes_that_would_swap_two_teams() -> None:
    votes = [Vote("A", "B", "a")] * 60 + [Vote("A", "B", "b")] * 40
    result = tally(["A", "B"], votes, max_points=25)
    # Removing 20 of A's wins leaves 40-40: level, which counts as swapped; 19 do not.
    assert [(s.leader, s.follower, s.votes) for s in result.robustness] == [("A", "B", 20)]


def test_tally_robustness_is_larger_for_a_wider_gap() -> None:
    truth = {"A": 1150.0, "B": 1000.0, "C": 985.0}
    result = tally(truth, simulate(truth, 20_000, seed=5), max_points=25)
    wide, narrow = (s.votes for s in result.robustness)
    assert wide is not None and narrow is not None and wide > 10 * narrow


def test_tally_win_rate_points_share_the_field() -> None:
    result = tally(TRUTH, simulate(TRUTH, 5_000, seed=2), max_points=25, rule="win_rate")
    points = [r.points for r in result.results]
    # Expected wins against the field add up to one per pair: n/2 maxima in all.
    assert sum(points) == pytest.approx(25 * len(TRUTH) / 2)
    assert points == sorted(points, reverse=True) and 0 < points[-1] < points[0] < 25


def test_tally_leaves_both_bad_votes_out_of_the_ratings() -> None:
    votes = simulate(TRUTH, 3_000, seed=4)
    extra = [Vote("NC", "LG", "bad")] * 500
    plain = tally(TRUTH, votes, max_points=25)
    with_bad = tally(TRUTH, votes + extra, max_points=25)
    assert [r.rating for r in with_bad.results] == pytest.approx([r.rating for r in plain.results])
    assert with_bad.bad == plain.bad + 500 and with_bad.votes == plain.votes + 500


@pytest.mark.parametrize(("votes", "problem"), [
    ([Vote("LG", "Kakao", "a")], "unknown team"),
    ([Vote("LG", "NC", "A")], "not a, b, tie or bad"),
    ([Vote("LG", "LG", "a")], "against itself"),
    ([], "no votes"),
    ([Vote("LG", "NC", "bad")], "no rated votes"),
    ([Vote("LG", "NC", "a"), Vote("SKT", "NC", "b")], "no rated votes for some teams"),
])
def test_tally_names_the_problem_with_bad_input(votes: list[Vote], problem: str) -> None:
    with pytest.raises(VotingError, match=problem):
        tally(TRUTH, votes, max_points=25)


def test_tally_refuses_an_unbeaten_team_unless_prior_ties_are_asked_for() -> None:
    votes = [Vote("A", "B", "a"), Vote("B", "C", "a"), Vote("C", "B", "a"), Vote("A", "C", "a")]
    with pytest.raises(VotingError, match="won or lost every battle") as caught:
        tally("ABC", votes, max_points=25)
    assert "['A']" in caught.value.detail
    result = tally("ABC", votes, max_points=25, prior_ties=1.0)
    assert result.results[0].team == "A" and math.isfinite(result.results[0].rating)


def test_outlier_test_flags_a_rigging_bot_and_its_exclusion_restores_the_order() -> None:
    honest = simulate(TRUTH, 40_000, seed=11, voters=2_000)
    rng = np.random.default_rng(12)
    bots = []  # 100 sessions, 40 votes each: always NC when NC is on screen, else A
    teams = list(TRUTH)
    for session in range(100):
        for _ in range(40):
            a, b = rng.choice(len(teams), 2, replace=False)
            choice = "a" if teams[a] == "NC" else "b" if teams[b] == "NC" else "a"
            bots.append(Vote(teams[a], teams[b], choice, f"bot{session}"))
    flagged = outlier_voters(TRUTH, honest + bots)
    flagged_bots = {o.voter for o in flagged if o.voter.startswith("bot")}
    assert len(flagged_bots) >= 75, len(flagged_bots)
    assert len(flagged) - len(flagged_bots) <= 5, flagged  # honest sessions flagged
    rigged = tally(TRUTH, honest + bots, max_points=25)
    cleaned = tally(TRUTH, honest + bots, max_points=25,
                    exclude_voters=[o.voter for o in flagged])
    rigged_nc = {r.team: r.rating for r in rigged.results}["NC"]
    cleaned_nc = {r.team: r.rating for r in cleaned.results}["NC"]
    assert rigged_nc - TRUTH["NC"] > 25  # the bots lift NC ...
    assert abs(cleaned_nc - TRUTH["NC"]) < (rigged_nc - TRUTH["NC"]) / 2  # ... and no more
    assert [r.team for r in cleaned.results] == list(TRUTH)
    assert len(cleaned.excluded_voters) == len(flagged)


def test_vote_log_hash_is_sha256_of_the_canonical_ndjson() -> None:
    votes = [Vote("LG", "네이버", "a", "s1").record(), {"voter": "s2", "choice": "tie", "n": 3}]
    expected = (b'{"a":"LG","b":"\xeb\x84\xa4\xec\x9d\xb4\xeb\xb2\x84","choice":"a",'
                b'"voter":"s1"}\n{"choice":"tie","n":3,"voter":"s2"}\n')
    assert ndjson(votes) == expected
    assert log_hash(votes) == hashlib.sha256(expected).hexdigest()
    with pytest.raises(VotingError, match="strings, integers"):
        canonical_line({"time": 1.5})
