"""The tally of one round's votes: ratings, 95 % intervals, ranks, robustness, points.

How the server uses it: when the operator closes voting, it reads the round's votes from
its vote store, drops those that failed a rule (rate limits, too fast), runs `tally` once
with the show file's points rule and maximum (25 in the sample show) and the voters the
operator chose to exclude (see `showcase.voting.outliers`), and records ``Tally.to_json()``
with the hash of the exported vote log (`showcase.voting.votelog`) as the feedback
criterion, in one event, sealed until the reveal. Anyone holding the exported log can run
the same function and get the same figures: nothing here is random.

Method, for the public page:

- Bradley-Terry ratings by maximum likelihood on the Elo-like scale (`showcase.voting.bt`:
  scale 400, base 10, ratings averaging 1000). A tie is half a win for each side, as
  FastChat counts it; "both bad" is counted but carries no preference.
- 95 % intervals from the sandwich (robust) covariance, as lmarena's ``arena-rank``
  computes it. Chosen over the bootstrap because it is exact arithmetic on the counts:
  anyone recomputing it gets the same digits, with no random seed or resampling scheme to
  agree on, and it costs microseconds where a bootstrap refits hundreds of times.
- A rank only where intervals separate: ``rank = 1 + the number of teams whose lower bound
  is above this team's upper bound`` (LMArena's "rank (UB)"), so teams that cannot be told
  apart share a rank.
- Robustness of each adjacent pair (by rating): the number of votes that would have to be
  removed to swap them, see `votes_to_swap`.
- Points: ``linear`` maps the ratings linearly from the worst (0) to the best (the
  maximum); ``win_rate`` gives the maximum times the team's expected win rate against the
  field (the mean, over the other teams, of the model's probability of beating each).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from showcase.voting import bt
from showcase.voting.errors import VotingError

OUTCOMES = ("a", "b", "tie", "bad")
RULES = ("linear", "win_rate")
PointsRule = Literal["linear", "win_rate"]
#: Virtual ties added to every pair in the refits of the robustness search only, so a
#: removal that leaves a team unbeaten still has finite ratings (and a clear order).
_REFIT_PRIOR = 1e-6


@dataclass(frozen=True, slots=True)
class Vote:
    """One counted vote: the team shown as A, the team shown as B, the choice ("a", "b",
    "tie" or "bad") and the anonymised voter (the session's pseudonym)."""

    a: str
    b: str
    choice: str
    voter: str = ""

    def record(self) -> dict[str, str]:
        """The vote as a line of the anonymised log (see `showcase.voting.votelog`)."""
        return {"a": self.a, "b": self.b, "choice": self.choice, "voter": self.voter}


@dataclass(frozen=True, slots=True)
class TeamResult:
    """One team's line of the tally. ``rating``, ``lower`` and ``upper`` are on the
    Elo-like scale; ``rank`` is LMArena's rank (UB); ``battles`` counts rated votes."""

    team: str
    rating: float
    lower: float
    upper: float
    rank: int
    points: float
    wins: int
    losses: int
    ties: int
    battles: int


@dataclass(frozen=True, slots=True)
class Swap:
    """How many votes would have to be removed for ``follower`` to overtake ``leader``
    (None: removing every vote that favours the leader would not do it)."""

    leader: str
    follower: str
    votes: int | None


@dataclass(frozen=True, slots=True)
class Tally:
    """The result a server logs as one event and a page shows, best team first."""

    results: tuple[TeamResult, ...]
    robustness: tuple[Swap, ...]
    votes: int
    rated: int
    bad: int
    excluded_voters: tuple[str, ...]
    rule: str
    max_points: float
    prior_ties: float
    method: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types only, in a fixed order."""
        return {
            "results": [{"team": r.team, "rating": r.rating, "lower": r.lower,
                         "upper": r.upper, "rank": r.rank, "points": r.points, "wins": r.wins,
                         "losses": r.losses, "ties": r.ties, "battles": r.battles}
                        for r in self.results],
            "robustness": [{"leader": s.leader, "follower": s.follower, "votes": s.votes}
                           for s in self.robustness],
            "votes": self.votes, "rated": self.rated, "bad": self.bad,
            "excluded_voters": list(self.excluded_voters), "rule": self.rule,
            "max_points": self.max_points, "prior_ties": self.prior_ties,
            "method": dict(self.method),
        }


def count_votes(teams: Iterable[str], votes: Iterable[Vote],
                exclude_voters: Collection[str] = ()) -> tuple[bt.Counts, int]:
    """Votes counted per pair, and how many votes were counted (excluded voters' are not).

    Raises `VotingError` naming the first problem: an unknown team, a choice that is not
    one of the four, a team against itself, a team listed twice.
    """
    roster = tuple(teams)
    index = {t: i for i, t in enumerate(roster)}
    if len(index) != len(roster):
        dup = sorted(t for t, c in Counter(roster).items() if c > 1)
        raise VotingError("a team is listed twice", f"teams: {dup}")
    excluded = set(exclude_voters)
    kinds = Counter((v.a, v.b, v.choice) for v in votes if not excluded or v.voter not in excluded)
    n = len(roster)
    wins = np.zeros((n, n))
    ties = np.zeros((n, n))
    bad = 0
    for (a, b, choice), count in kinds.items():
        for team in (a, b):
            if team not in index:
                raise VotingError("a vote names an unknown team", f"team {team!r}; the round's "
                                  f"teams are {list(roster)}")
        if a == b:
            raise VotingError("a vote pits a team against itself", f"team {a!r}")
        i, j = index[a], index[b]
        if choice == "a":
            wins[i, j] += count
        elif choice == "b":
            wins[j, i] += count
        elif choice == "tie":
            ties[i, j] += count
            ties[j, i] += count
        elif choice == "bad":
            bad += count
        else:
            raise VotingError("a vote's choice is not a, b, tie or bad", f"choice {choice!r}")
    return bt.Counts(roster, wins, ties, bad), sum(kinds.values())


def tally(teams: Iterable[str], votes: Iterable[Vote], *, max_points: float,
          rule: PointsRule = "linear", exclude_voters: Collection[str] = (),
          prior_ties: float = 0.0, level: float = 0.95) -> Tally:
    """The whole tally of one round (see the module's docstring for the method).

    ``exclude_voters``: voters whose votes are left out (the operator's decision on the
    outlier test); ``prior_ties``: virtual ties added between every pair, 0 by default as
    in FastChat; set it only when a team won or lost every battle, where ratings do not
    otherwise exist. Raises `VotingError` for bad input or no rated votes.
    """
    counts, total = count_votes(teams, votes, exclude_voters)
    if total == 0:
        raise VotingError("no votes to tally", "the round has no counted votes")
    return tally_counts(counts, max_points=max_points, rule=rule, prior_ties=prior_ties,
                        level=level, votes=total, excluded=sorted(set(exclude_voters)))


def tally_counts(counts: bt.Counts, *, max_points: float, rule: PointsRule = "linear",
                 prior_ties: float = 0.0, level: float = 0.95, votes: int | None = None,
                 excluded: Iterable[str] = ()) -> Tally:
    """`tally` on votes already counted per pair (the vote store can keep these counts)."""
    if rule not in RULES:
        raise VotingError("unknown points rule", f"rule {rule!r}; known: {list(RULES)}")
    if not (max_points > 0 and math.isfinite(max_points)):
        raise VotingError("the points maximum must be a positive number", f"{max_points!r}")
    if not 0 < level < 1:
        raise VotingError("the interval level must be between 0 and 1", f"{level!r}")
    if counts.rated == 0:
        raise VotingError("no rated votes to tally",
                          f"{counts.bad} 'both bad' votes and no win, loss or tie")
    theta = bt.fit(counts, prior_ties)
    cov = bt.sandwich(counts, theta, prior_ties)
    from scipy.stats import norm  # loaded on the first tally, not at server start (1 s)

    half = float(norm.ppf(0.5 + level / 2)) * np.sqrt(np.clip(np.diag(cov), 0.0, None))
    rating = bt.INITIAL + bt.ALPHA * theta
    lower, upper = rating - bt.ALPHA * half, rating + bt.ALPHA * half
    ranks = [1 + int(np.sum(lower > upper[i])) for i in range(len(theta))]
    points = team_points(theta, rule, max_points)
    order = sorted(range(len(theta)), key=lambda i: (-rating[i], counts.teams[i]))
    results = tuple(TeamResult(
        team=counts.teams[i], rating=float(rating[i]), lower=float(lower[i]),
        upper=float(upper[i]), rank=ranks[i], points=float(points[i]),
        wins=int(counts.wins[i].sum()), losses=int(counts.wins[:, i].sum()),
        ties=int(counts.ties[i].sum()),
        battles=int(counts.wins[i].sum() + counts.wins[:, i].sum() + counts.ties[i].sum()))
        for i in order)
    robustness = tuple(
        Swap(counts.teams[lead], counts.teams[follow],
             votes_to_swap(counts, theta, lead, follow, prior_ties))
        for lead, follow in itertools.pairwise(order))
    return Tally(results=results, robustness=robustness,
                 votes=counts.rated + counts.bad if votes is None else votes,
                 rated=counts.rated, bad=counts.bad, excluded_voters=tuple(excluded),
                 rule=rule, max_points=max_points, prior_ties=prior_ties,
                 method={"model": "bradley-terry", "fit": "maximum likelihood",
                         "scale": bt.SCALE, "base": bt.BASE, "initial": bt.INITIAL,
                         "intervals": "sandwich", "level": level,
                         "hessian_reg_per_vote": bt.HESSIAN_REG, "rank": "ub",
                         "ties": "half a win each", "bad": "counted, not rated"})


def team_points(theta: NDArray[np.float64], rule: PointsRule, max_points: float
                ) -> NDArray[np.float64]:
    """Points per team from natural-unit ratings (see the module docstring). With all
    ratings equal, ``linear`` has no worst or best and gives everyone half the maximum."""
    if rule == "linear":
        spread = float(theta.max() - theta.min())
        if spread <= 1e-12:
            return np.full(len(theta), max_points / 2)
        out: NDArray[np.float64] = max_points * (theta - theta.min()) / spread
        return out
    p = bt.win_probabilities(theta)
    np.fill_diagonal(p, 0.0)
    rate: NDArray[np.float64] = max_points * p.sum(axis=1) / (len(theta) - 1)
    return rate


def votes_to_swap(counts: bt.Counts, theta: NDArray[np.float64], leader: int, follower: int,
                  prior_ties: float = 0.0) -> int | None:
    """How many votes would have to be removed for ``follower`` to reach ``leader``'s rating.

    Exactly: every kind of rated vote (a win of one team over another, or a tie between two)
    is scored by how much removing one vote of that kind lowers the leader's margin, to
    first order at the full fit (the influence function, ``-(e_L - e_F)ᵀ H⁺ s`` for a vote
    of score ``s``). The kinds that lower it are lined up, the most effective first (ties
    in effect broken by kind order), each with all its votes; the figure is the smallest
    ``k`` such that removing the first ``k`` votes of that line and refitting puts the
    follower level with or above the leader, found by bisection (removing ``k`` swaps them
    and removing ``k - 1`` does not; the bisection assumes the margin falls as the line is
    consumed). This greedy line gives an upper bound on the true minimum. None when
    removing the whole line leaves the leader ahead.
    """
    p = bt.win_probabilities(theta)
    w = counts.weights(prior_ties)
    c = (w + w.T) * p * (1.0 - p)
    hess = np.diag(c.sum(axis=1)) - c
    direction = np.zeros(len(theta))
    direction[leader], direction[follower] = 1.0, -1.0
    u = np.linalg.pinv(hess) @ direction
    n = len(theta)
    kinds: list[tuple[float, int, int, bool, int]] = []  # effect, i, j, is_tie, count
    for i in range(n):
        for j in range(n):
            if counts.wins[i, j] > 0:
                effect = -(1.0 - p[i, j]) * (u[i] - u[j])
                kinds.append((effect, i, j, False, int(counts.wins[i, j])))
            if i < j and counts.ties[i, j] > 0:
                effect = -(0.5 - p[i, j]) * (u[i] - u[j])
                kinds.append((effect, i, j, True, int(counts.ties[i, j])))
    line = sorted((k for k in kinds if k[0] < -1e-15), key=lambda k: k[0])
    cumulative = np.cumsum([k[4] for k in line]) if line else np.zeros(0)
    prior = max(prior_ties, _REFIT_PRIOR)

    def margin_after(removed: int) -> float:
        wins, ties = counts.wins.copy(), counts.ties.copy()
        left = removed
        for _, i, j, is_tie, count in line:
            take = min(left, count)
            if is_tie:
                ties[i, j] -= take
                ties[j, i] -= take
            else:
                wins[i, j] -= take
            left -= take
            if left == 0:
                break
        refit = bt.fit(bt.Counts(counts.teams, wins, ties, counts.bad), prior,
                       start=theta, check=False)  # the prior makes ratings exist
        return float(refit[leader] - refit[follower])

    total = int(cumulative[-1]) if len(cumulative) else 0
    if total == 0 or margin_after(total) > 0:
        return None
    low, high = 0, total  # margin_after(low) > 0 (the full fit), margin_after(high) <= 0
    while high - low > 1:
        mid = (low + high) // 2
        if margin_after(mid) > 0:
            low = mid
        else:
            high = mid
    return high


def points_by_team(result: Tally) -> Mapping[str, float]:
    """``{team: points}``, what the server records as the feedback criterion's values."""
    return {r.team: r.points for r in result.results}
