"""A per-voter outlier test: voters whose choices disagree with the field beyond chance.
The operator sees who is flagged and why, and decides; `tally` then leaves out the voters
the operator excludes. It plays the part of the per-user anomaly check in FastChat's arena
monitor, with a test of our own stated in full below (not a port of FastChat's code).

The test, per voter (a session), on their decisive votes (A or B; ties and "both bad" say
nothing about direction): ``k`` = how many times they chose the team the fitted model
favours, ``n`` = their decisive votes, ``p`` = the mean of the model's probability that the
favourite wins over those votes. The p-value is the exact binomial lower tail
``P(Bin(n, p) <= k)``. The true law of ``k`` is Poisson-binomial (a probability per vote);
with the same mean its lower tail is no heavier than the binomial's (Hoeffding 1956, for
``k <= n p - 1``), so the binomial p-value errs on the voter's side. Among many sessions
some honest ones will always look odd, so the voters flagged are those that Benjamini-
Hochberg selects at a false-discovery rate (5 % by default): among the flagged, about
that share are expected to be honest.

A rigging bot that always votes for one team disagrees with the model every time that team
is the underdog, and is flagged once it has voted a few times; many such sessions are each
flagged on their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from showcase.voting import bt
from showcase.voting.errors import VotingError
from showcase.voting.tally import Vote, count_votes


@dataclass(frozen=True, slots=True)
class Outlier:
    """A flagged voter with the figures the operator sees: decisive votes, how many went
    to the model's favourite, how many were expected to, the p-value and the BH q-value."""

    voter: str
    decisive: int
    agreed: int
    expected: float
    p_value: float
    q_value: float


def outlier_voters(teams: Iterable[str], votes: Iterable[Vote], *, fdr: float = 0.05,
                   min_votes: int = 5, prior_ties: float = 0.0) -> list[Outlier]:
    """The voters whose choices disagree with the field beyond chance, most extreme first.

    The model is fitted on all the votes given (the field). Voters with fewer than
    ``min_votes`` decisive votes are not tested (too few to tell anything).
    """
    if not 0 < fdr < 1:
        raise VotingError("the false-discovery rate must be between 0 and 1", f"{fdr!r}")
    votes = list(votes)
    counts, total = count_votes(teams, votes)
    if total == 0:
        raise VotingError("no votes to test", "the round has no counted votes")
    theta = bt.fit(counts, prior_ties)
    index = {t: i for i, t in enumerate(counts.teams)}
    agreed: dict[str, int] = {}
    decisive: dict[str, int] = {}
    expected: dict[str, float] = {}
    p = bt.win_probabilities(theta)
    for v in votes:
        if v.choice not in ("a", "b"):
            continue
        i, j = index[v.a], index[v.b]
        favourite_is_a = p[i, j] >= 0.5
        agree = (v.choice == "a") == favourite_is_a
        agreed[v.voter] = agreed.get(v.voter, 0) + agree
        decisive[v.voter] = decisive.get(v.voter, 0) + 1
        expected[v.voter] = expected.get(v.voter, 0.0) + max(p[i, j], p[j, i])
    tested = sorted(voter for voter, n in decisive.items() if n >= min_votes)
    if not tested:
        return []
    k = np.array([agreed[v] for v in tested])
    n = np.array([decisive[v] for v in tested])
    e = np.array([expected[v] for v in tested])
    from scipy.stats import binom  # loaded on first use, not at server start (it takes 1 s)

    pvals: NDArray[np.float64] = np.asarray(binom.cdf(k, n, e / n), dtype=np.float64)
    # Benjamini-Hochberg: q_(i) = min over j >= i of p_(j) m / j.
    order = np.argsort(pvals, kind="stable")
    m = len(tested)
    scaled = pvals[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum.accumulate(scaled[::-1])[::-1]
    qvals = np.empty(m)
    qvals[order] = np.minimum(q_sorted, 1.0)
    flagged = [Outlier(tested[i], int(n[i]), int(k[i]), float(e[i]), float(pvals[i]),
                       float(qvals[i])) for i in order if qvals[i] <= fdr]
    return flagged
