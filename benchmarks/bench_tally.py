"""The audience tally of a big round: 1,000,000 votes among 5 and 10 teams (goal <= 5 s).

Votes are drawn from known Bradley-Terry strengths (15 % ties, 5 % "both bad", 20,000
voters) as `Vote` records, the form the server reads from its vote store. Timed, per run:

  count   the records counted per pair (`count_votes`, one pass in Python)
  fit     maximum-likelihood ratings (`bt.fit`, on the counts)
  ci      sandwich intervals (`bt.sandwich`)
  swap    votes-to-swap for every adjacent pair (refits on the counts)
  total   `tally(...)` end to end: all of the above, ranks and points

Drawing the votes is not timed. The median of ``--runs`` runs is reported.

    .venv/bin/python benchmarks/bench_tally.py [--votes 1000000] [--teams 5 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import numpy as np
from _common import describe, machine

from showcase.voting import bt
from showcase.voting.tally import Vote, count_votes, tally, votes_to_swap


def draw(teams: int, n: int, seed: int) -> tuple[list[str], list[Vote]]:
    rng = np.random.default_rng(seed)
    names = [f"team{i}" for i in range(teams)]
    strength = np.linspace(1150, 850, teams)
    a = rng.integers(0, teams, n)
    b = (a + rng.integers(1, teams, n)) % teams
    p_a = 1.0 / (1.0 + 10 ** ((strength[b] - strength[a]) / 400))
    kind = rng.random(n)
    choice = np.where(rng.random(n) < p_a, "a", "b").astype(object)
    choice[kind < 0.15] = "tie"
    choice[(kind >= 0.15) & (kind < 0.20)] = "bad"
    voter = rng.integers(0, 20_000, n)
    votes = [Vote(names[i], names[j], str(c), f"v{w}")
             for i, j, c, w in zip(a.tolist(), b.tolist(), choice, voter.tolist(), strict=True)]
    return names, votes


def run_once(names: list[str], votes: list[Vote]) -> dict[str, float]:
    out: dict[str, float] = {}
    t = time.perf_counter()
    counts, _ = count_votes(names, votes)
    out["count"] = time.perf_counter() - t
    t = time.perf_counter()
    theta = bt.fit(counts)
    out["fit"] = time.perf_counter() - t
    t = time.perf_counter()
    bt.sandwich(counts, theta)
    out["ci"] = time.perf_counter() - t
    order = list(np.argsort(-theta))
    t = time.perf_counter()
    for lead, follow in itertools.pairwise(order):
        votes_to_swap(counts, theta, int(lead), int(follow))
    out["swap"] = time.perf_counter() - t
    t = time.perf_counter()
    tally(names, votes, max_points=25)
    out["total"] = time.perf_counter() - t
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--teams", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(describe(machine(".")))
    for teams in args.teams:
        names, votes = draw(teams, args.votes, seed=teams)
        runs = [run_once(names, votes) for _ in range(args.runs)]
        medians = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        phases = "  ".join(f"{k} {v * 1000:.0f} ms" for k, v in medians.items())
        print(f"{args.votes:,} votes, {teams} teams (median of {args.runs}): {phases}")


if __name__ == "__main__":
    main()
