"""Bradley-Terry by maximum likelihood, on counts per pair of teams. Pure numpy.

The model: team i beats team j with probability ``1 / (1 + BASE ** ((R_j - R_i) / SCALE))``,
the Elo-like scale FastChat and LMArena publish (SCALE 400, BASE 10): a team rated 400
points above another is expected to win ten battles for each one it loses, 100 points
above about 64 % of them. Ratings are defined up to a constant; we fix it as LMArena's
``arena-rank`` and FastChat's logistic fit do, by making the ratings average ``INITIAL``
(1000), so a 1000 is "average among these teams", nothing more.

Votes are first counted per pair (``Counts``): the fit, its intervals and every refit of
the robustness search then cost in the number of teams, not of votes, so a million votes
tally in well under a second once counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from showcase.voting.errors import VotingError

SCALE = 400.0
BASE = 10.0
INITIAL = 1000.0
#: Elo points per unit of the natural (log-odds) rating: 400 / ln 10, about 173.7.
ALPHA = SCALE / math.log(BASE)
#: arena-rank's ridge on the Hessian's diagonal, per vote (see `sandwich`).
HESSIAN_REG = 1e-5

Matrix = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Counts:
    """Votes counted per pair. ``wins[i, j]``: votes where team i beat team j, whichever
    side each was shown on; ``ties[i, j]`` (symmetric): ties between them; ``bad``: "both
    bad" votes, kept in the count but carrying no preference, so not in the ratings."""

    teams: tuple[str, ...]
    wins: Matrix
    ties: Matrix
    bad: int

    @property
    def rated(self) -> int:
        """Votes that enter the ratings (wins and ties)."""
        return int(self.wins.sum() + np.triu(self.ties, 1).sum())

    def weights(self, prior_ties: float = 0.0) -> Matrix:
        """``W[i, j]``: wins of i over j with each tie as half a win each way (FastChat's
        rule), plus ``prior_ties`` virtual ties between every pair."""
        w = self.wins + 0.5 * self.ties
        if prior_ties:
            w = w + 0.5 * prior_ties * (1.0 - np.eye(len(self.teams)))
        return w


def win_probabilities(theta: NDArray[np.float64]) -> Matrix:
    """``P[i, j]``: the model's probability that i beats j, from natural-unit ratings."""
    diff: Matrix = theta[:, None] - theta[None, :]
    out: Matrix = 1.0 / (1.0 + np.exp(-diff))
    return out


def _loglik(w: Matrix, theta: NDArray[np.float64]) -> float:
    diff = theta[:, None] - theta[None, :]
    return -float(np.sum(w * np.logaddexp(0.0, -diff)))


def _grad_hess(w: Matrix, theta: NDArray[np.float64]) -> tuple[NDArray[np.float64], Matrix]:
    p = win_probabilities(theta)
    q = w * (1.0 - p)
    grad: NDArray[np.float64] = q.sum(axis=1) - q.sum(axis=0)
    c = (w + w.T) * p * (1.0 - p)  # symmetric curvature per pair
    hess: Matrix = np.diag(c.sum(axis=1)) - c
    return grad, hess


def check_identifiable(counts: Counts, prior_ties: float = 0.0) -> None:
    """Raise unless the maximum-likelihood ratings exist: every team has a rated vote and
    no group of teams won (or lost) every battle against the rest, else the likelihood
    keeps growing as their ratings run off to infinity."""
    w = counts.weights(prior_ties)
    n = len(counts.teams)
    if n < 2:
        raise VotingError("a tally needs at least two teams", f"teams: {list(counts.teams)}")
    played = (w + w.T).sum(axis=1)
    idle = [counts.teams[i] for i in range(n) if played[i] == 0]
    if idle:
        raise VotingError("no rated votes for some teams, so they have no rating",
                          f"teams without a win, loss or tie: {idle}")
    from scipy.sparse import csr_matrix  # loaded on the first tally, not at server start
    from scipy.sparse.csgraph import connected_components

    beats = csr_matrix((w > 0).astype(np.int8))
    k, labels = connected_components(beats, directed=True, connection="strong")
    if k > 1:
        groups = [[counts.teams[i] for i in range(n) if labels[i] == g] for g in range(k)]
        raise VotingError(
            "ratings do not exist yet: some teams won or lost every battle against the rest",
            f"groups that never lost (or never won) to each other: {groups}; collect more "
            "votes, or tally with prior_ties > 0 (virtual ties between every pair)")


def fit(counts: Counts, prior_ties: float = 0.0, start: NDArray[np.float64] | None = None,
        check: bool = True) -> NDArray[np.float64]:
    """The maximum-likelihood ratings in natural units (log-odds), centred on zero.

    Newton's method with the first rating held at zero (the Hessian is singular along
    "add a constant to everyone"), with step halving so the likelihood never falls; it
    converges to machine precision in a handful of steps for a few teams. Raises
    `VotingError` when the ratings do not exist (see `check_identifiable`); ``check=False``
    skips that test, for callers that know the ratings exist (``prior_ties > 0`` with every
    team in the roster makes them exist).
    """
    if check:
        check_identifiable(counts, prior_ties)
    return _newton(counts.weights(prior_ties), start)


def _newton(w: Matrix, start: NDArray[np.float64] | None) -> NDArray[np.float64]:
    n = w.shape[0]
    theta = np.zeros(n) if start is None else start - start[0]
    total = float(w.sum())
    value = _loglik(w, theta)
    for _ in range(200):
        grad, hess = _grad_hess(w, theta)
        if float(np.max(np.abs(grad))) <= 1e-13 * total:
            break
        step = np.zeros(n)
        step[1:] = np.linalg.solve(hess[1:, 1:], grad[1:])
        size = 1.0
        while size > 1e-12:
            trial = theta + size * step
            trial_value = _loglik(w, trial)
            if trial_value >= value:
                break
            size /= 2
        else:  # no step improves: we are at the optimum to rounding
            break
        theta, value = trial, trial_value
    centred: NDArray[np.float64] = theta - theta.mean()
    return centred


def sandwich(counts: Counts, theta: NDArray[np.float64], prior_ties: float = 0.0) -> Matrix:
    """The robust ("sandwich") covariance of the natural-unit ratings, ``H⁻¹ G H⁻¹``, as
    lmarena's ``arena-rank`` computes it: ``H`` the Hessian of the negative log-likelihood,
    ``G`` the sum over votes of each vote's score outer product. It needs only per-pair sums
    (each vote of a kind has the same score), and it stays honest when the model is wrong
    (voters who disagree with each other), where the plain ``H⁻¹`` would be too narrow.

    ``H`` gets arena-rank's ridge of 1e-5 per rated vote on its diagonal: it stands in for
    the constraint that ratings average 1000 (``G`` has no component along "everyone up by
    a constant", so the product is the covariance of the centred ratings) and keeps the
    figures equal to arena-rank's.
    """
    p = win_probabilities(theta)
    w = counts.weights(prior_ties)
    c = (w + w.T) * p * (1.0 - p)
    hess = np.diag(c.sum(axis=1)) - c
    hess = hess + np.eye(len(theta)) * HESSIAN_REG * counts.rated
    # Score of one vote: (outcome - p) on the winner's side; a win scores 1 - p, a tie 1/2 - p.
    ties = counts.ties + (prior_ties * (1.0 - np.eye(len(theta))) if prior_ties else 0.0)
    v = counts.wins * (1.0 - p) ** 2 + 0.5 * ties * (0.5 - p) ** 2
    v = v + v.T
    scores = np.diag(v.sum(axis=1)) - v
    inv = np.linalg.inv(hess)
    cov: Matrix = inv @ scores @ inv
    return cov
