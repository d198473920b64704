"""Equal exposure: which battle each arriving voting session sees next.

How the server uses it: at the round's opening it builds one `Scheduler` from the teams and
the servable answers (each answer is (team, prompt id), after the leak filter), and answers
``GET /api/vote/battle`` with ``scheduler.next_battle(session)``; the battle it returns is
what that session votes on. The scheduler keeps no clock and does no I/O: the same calls in
the same order give the same battles, so a restarted server can rebuild it by replaying the
battles it handed out (`record`).

The order of battles, the deck, is fixed in advance and cut into blocks. Block ``k`` pits
the pairs of one perfect matching of the teams (round ``k mod R`` of the round-robin circle
method, ``R`` rounds that together hold every pair once) against each other on one prompt
(prompt ``(k + k // L) mod P``, ``L = lcm(R, P)``; the shift makes every matching meet every
prompt). So any ``R`` consecutive blocks hold every pair once, any ``P`` consecutive blocks
every prompt once, and one period of ``R P`` blocks holds every battle (pair, prompt) once.
Sessions take battles in deck order, whatever order they arrive in, so at any moment the
battles handed out are a prefix of the deck, and:

- every pair of teams has had the same number of battles within one;
- every answer has been shown the same number of times within one when the number of teams
  is even, within two when it is odd (one is impossible then: a battle adds two views to
  one prompt's answers, so with an odd number of teams a prompt's answers cannot all have
  the same count until that count is even, and the first answer to reach an even count ``c
  + 1`` leaves every other prompt with an answer still at ``c``);
- A and B alternate per pair: the k-th battle of a pair shows its first team as A when k is
  even, so each pair's sides differ by at most one;
- a session never sees the same battle (pair and prompt, whichever sides) twice. When the
  next battle in the deck is one the session has seen, it is held back and handed to the
  next session that has not seen it, before the deck moves on. While ``h`` battles are held
  back, the two spreads above can each grow by ``h``; in a show with more battles in the
  deck than votes per session, ``h`` is almost always 0 or 1.

A prompt enters the deck only if every team has a servable answer to it: with an answer
missing, the other answers to that prompt could not be shown as often as the rest without
unbalancing the pairs. `left_out` says which prompts were left out and why.

Cost: O(1) per battle (plus the held-back battles scanned, almost always none).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from showcase.voting.errors import VotingError


@dataclass(frozen=True, slots=True)
class Battle:
    """One battle: two teams' answers to the same prompt, ``a`` shown as A, ``b`` as B."""

    prompt: str
    a: str
    b: str


def _round_robin(n: int) -> list[list[tuple[int, int]]]:
    """The circle method: rounds of disjoint pairs that together hold every pair once
    (``n - 1`` rounds for even ``n``, ``n`` rounds each leaving one team out for odd)."""
    size = n + (n % 2)
    rounds = []
    for r in range(size - 1):
        ring = [0, *[(1 + (i + r) % (size - 1)) for i in range(size - 1)]]
        pairs = [(ring[i], ring[size - 1 - i]) for i in range(size // 2)]
        rounds.append([(min(x, y), max(x, y)) for x, y in pairs if x < n and y < n])
    return rounds


class Scheduler:
    """The fair order of battles for one round (see the module docstring)."""

    def __init__(self, teams: Sequence[str], answers: Iterable[tuple[str, str]]) -> None:
        self.teams = tuple(teams)
        if len(set(self.teams)) != len(self.teams):
            raise VotingError("a team is listed twice", f"teams: {list(self.teams)}")
        if len(self.teams) < 2:
            raise VotingError("battles need at least two teams", f"teams: {list(self.teams)}")
        have: dict[str, set[str]] = {}
        for team, prompt in answers:
            if team not in self.teams:
                raise VotingError("an answer names an unknown team",
                                  f"team {team!r}; the round's teams are {list(self.teams)}")
            have.setdefault(prompt, set()).add(team)
        self.prompts = tuple(sorted(p for p, ts in have.items() if len(ts) == len(self.teams)))
        #: prompt -> the teams without a servable answer to it
        self.left_out = {p: sorted(set(self.teams) - ts) for p, ts in sorted(have.items())
                         if len(ts) < len(self.teams)}
        if not self.prompts:
            raise VotingError("no prompt has a servable answer from every team",
                              f"prompts and the teams missing: {self.left_out}")
        self._rounds = _round_robin(len(self.teams))
        self._per_block = len(self._rounds[0])
        self._lcm = math.lcm(len(self._rounds), len(self.prompts))
        #: distinct battles: every pair on every prompt
        self.size = len(self.prompts) * len(self.teams) * (len(self.teams) - 1) // 2
        self._cursor = 0
        self._held: list[int] = []
        self._seen: dict[str, set[int]] = {}
        self.pair_battles: dict[tuple[str, str], int] = {}
        self.views: dict[tuple[str, str], int] = {}  # (team, prompt) -> times shown
        self.served = 0

    @property
    def held_back(self) -> int:
        """Battles skipped by a session that had seen them, waiting for the next session."""
        return len(self._held)

    def _battle_at(self, position: int) -> tuple[str, int, int]:
        block, slot = divmod(position, self._per_block)
        x, y = self._rounds[block % len(self._rounds)][slot]
        prompt = (block + block // self._lcm) % len(self.prompts)
        return self.prompts[prompt], x, y

    def _key(self, position: int) -> int:
        """The battle at ``position`` as one number: its prompt and its pair, not its sides
        (the deck holds each battle once in every ``R P`` blocks starting at a multiple of
        ``L``, but not at a fixed stride, so the position alone does not name it)."""
        block, slot = divmod(position, self._per_block)
        x, y = self._rounds[block % len(self._rounds)][slot]
        prompt = (block + block // self._lcm) % len(self.prompts)
        n = len(self.teams)
        return (prompt * n + x) * n + y

    def next_battle(self, session: str) -> Battle | None:
        """The battle ``session`` should vote on next, or None when it has seen them all."""
        seen = self._seen.setdefault(session, set())
        if len(seen) >= self.size:
            return None
        for i, position in enumerate(self._held):
            if self._key(position) not in seen:
                del self._held[i]
                return self._serve(session, position)
        while True:
            position = self._cursor
            self._cursor += 1
            if self._key(position) not in seen:
                return self._serve(session, position)
            self._held.append(position)

    def record(self, session: str, battle: Battle) -> None:
        """Replay a battle handed out before a restart (in the original order)."""
        got = self.next_battle(session)
        if got != battle:
            raise VotingError("the replayed battles do not match this scheduler's order",
                              f"expected {battle}, got {got}")

    def _serve(self, session: str, position: int) -> Battle:
        self._seen[session].add(self._key(position))
        prompt, x, y = self._battle_at(position)
        first, second = self.teams[x], self.teams[y]
        count = self.pair_battles.get((first, second), 0)
        self.pair_battles[(first, second)] = count + 1
        for team in (first, second):
            self.views[(team, prompt)] = self.views.get((team, prompt), 0) + 1
        self.served += 1
        if count % 2:
            first, second = second, first
        return Battle(prompt, first, second)
