"""The booth: voting sessions, blind battles, the rules a vote must pass, and the tally.

The running part of audience voting, between the endpoints (server/voting.py) and the
pure pieces: the schedule (schedule.py), the leak filter (leaks.py), the tally
(tally.py, outliers.py) and the vote log's hash (votelog.py). Votes go to the vote store
(log/votes.py), never one by one into the show's log; opening and closing are commands
(core/ballots.py), and closing records the tally as one event.

Sessions and battles are tokens under a key kept in the vote store, so every node of a
deployment accepts every node's tokens and a restart keeps them: a session is 16 random
bytes, unguessable, signed (HMAC-SHA256); a battle names its round, prompt, sides, the
voter it was handed to and when, encrypted and authenticated (AES-GCM), since its sides
are the teams the voter must not learn. So a vote carries its own proof of what was shown to
whom and since when, and a node needs no shared memory to check it. Voters are known by a
pseudonym derived from the session (the session id never leaves the server's memory and
the voter's page), addresses by one derived from the address.

Rules, each refusal a 4xx that names it; a vote a rule refuses is stored, refused, with
the rule (the operator sees the share refused and why): ``min_seconds`` (sent too soon
after its battle was handed out), ``per_address`` (more votes from one network address
in a minute than the round allows, counted per node), ``per_session`` (more votes from
one session in the round than allowed; the store checks it, across nodes), and one vote
per session per battle (a repeat is answered 409 and not stored).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hmac
import logging
import math
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from showcase.core import ballots
from showcase.core.bodies import VoteBody, VotingCloseBody
from showcase.core.errors import (
    InvalidRequest,
    NotAuthenticated,
    NotPermitted,
    RateLimited,
    StateConflict,
)
from showcase.core.events import Event
from showcase.core.state import PUBLISHED, State
from showcase.log.votes import StoredVote, VoteStore, pair_key
from showcase.runtime.engine import Engine
from showcase.voting import bt, votelog
from showcase.voting.leaks import LeakFilter
from showcase.voting.outliers import outlier_voters
from showcase.voting.schedule import Battle, Scheduler
from showcase.voting.tally import Vote, count_votes, tally

log = logging.getLogger(__name__)

#: Virtual ties per pair when a team won or lost every battle (then Bradley-Terry has no
#: finite ratings); recorded in the tally, so a recomputation uses the same.
FALLBACK_PRIOR_TIES = 0.5


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Handed:
    """A battle as its token says it was handed out."""

    round: str
    prompt: str
    a: str
    b: str
    voter: str
    issued: float

    @property
    def key(self) -> str:
        """The battle whichever side was A: one vote per voter on it."""
        return f"{self.prompt}|{pair_key(self.a, self.b)}"


class Signer:
    """Tokens the booth hands out and checks: HMAC-SHA256 under the store's key."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self._aead = AESGCM(hmac.digest(key, b"battle-key", "sha256"))
        # a session votes many times and an address serves many sessions: their HMACs
        # are kept (bounded; cleared whole when full, which only costs recomputing)
        self._voters: dict[str, str] = {}
        self._addresses: dict[str, str] = {}

    def _sign(self, purpose: bytes, payload: bytes) -> str:
        return _b64(hmac.digest(self.key, purpose + payload, "sha256")[:16])

    def new_session(self) -> str:
        raw = _b64(secrets.token_bytes(16))
        return f"{raw}.{self._sign(b'session|', raw.encode())}"

    def voter_of(self, session: str | None) -> str:
        """The voter's pseudonym for a session this booth issued; 401 otherwise."""
        known = self._voters.get(session or "")
        if known is not None:
            return known
        raw, _, sig = (session or "").partition(".")
        if not raw or not hmac.compare_digest(sig, self._sign(b"session|", raw.encode())):
            raise NotAuthenticated("not a voting session of this show",
                                   "POST /api/vote/session for one, and send it as the "
                                   "X-Vote-Session header")
        voter = hmac.digest(self.key, b"voter|" + raw.encode(), "sha256").hex()[:16]
        _remember(self._voters, session or "", voter)
        return voter

    def address(self, host: str) -> str:
        known = self._addresses.get(host)
        if known is None:
            known = hmac.digest(self.key, b"address|" + host.encode(), "sha256").hex()[:12]
            _remember(self._addresses, host, known)
        return known

    def battle(self, handed: Handed) -> str:
        """The battle as an opaque token: encrypted and authenticated (AES-GCM), because
        the teams it names are exactly what a voter must not learn."""
        payload = orjson.dumps([handed.round, handed.prompt, handed.a, handed.b, handed.voter,
                                handed.issued])
        nonce = secrets.token_bytes(12)
        return _b64(nonce + self._aead.encrypt(nonce, payload, b"battle"))

    def handed(self, token: str) -> Handed:
        try:
            raw = _unb64(token)
            payload = self._aead.decrypt(raw[:12], raw[12:], b"battle")
            round_id, prompt, a, b, voter, issued = orjson.loads(payload)
            return Handed(str(round_id), str(prompt), str(a), str(b), str(voter), float(issued))
        except (ValueError, TypeError, InvalidTag, orjson.JSONDecodeError):
            raise InvalidRequest("field 'battle' is not a battle this show handed out",
                                 "send the battle token GET /api/vote/battle gave") from None


@dataclass(slots=True)
class Pool:
    """A round's servable answers and their fair schedule, built once per opening."""

    opened_seq: int
    scheduler: Scheduler
    texts: dict[tuple[str, str], str]  # (team, prompt) -> answer
    prompts: dict[str, str]  # prompt id -> its text
    withheld: list[dict[str, str]]  # {team, prompt, name}: answers that named a team


class Booth:
    """One node's booth over the engine (state, commands) and the vote store."""

    def __init__(self, engine: Engine, store: VoteStore) -> None:
        self.engine = engine
        self.store = store
        self.signer: Signer | None = None
        self._pools: dict[str, Pool] = {}
        self._per_address: Counter[tuple[str, int]] = Counter()
        self._closing: set[str] = set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.store.running():
            self.signer = Signer(await self.store.secret())
            yield

    def _signer(self) -> Signer:
        assert self.signer is not None, "the booth is not running"
        return self.signer

    # -- the round that takes votes -----------------------------------------------------

    def _open_voting(self, state: State) -> tuple[str, dict[str, Any]]:
        round_id = state.current_round
        voting = state.rounds[round_id].voting if round_id in state.rounds else None
        if voting is None or not voting["open"] or round_id in self._closing:
            raise StateConflict("voting is closed", "wait for the show to open it",
                                seq=state.seq, rule="closed")
        return round_id, voting

    def pool(self, round_id: str, voting: dict[str, Any]) -> Pool:
        """The round's pool, built at its opening (on first use on this node)."""
        found = self._pools.get(round_id)
        if found is not None and found.opened_seq == voting["opened_seq"]:
            return found
        state = self.engine.committed
        names = [name for t in voting["teams"] for name in _identity_names(state, t)]
        leaks = LeakFilter(names)
        texts: dict[tuple[str, str], str] = {}
        withheld = []
        for prompt in voting["prompts"]:
            for team, answer in prompt["answers"].items():
                leak = leaks.check(answer)
                if leak is None:
                    texts[(team, prompt["id"])] = answer
                else:
                    withheld.append({"team": team, "prompt": prompt["id"], "name": leak.name})
        pool = Pool(voting["opened_seq"], Scheduler(voting["teams"], list(texts)), texts,
                    {p["id"]: p["text"] for p in voting["prompts"]}, withheld)
        self._pools[round_id] = pool
        return pool

    # -- voters ----------------------------------------------------------------------------

    def new_session(self) -> str:
        return self._signer().new_session()

    def next_battle(self, session: str | None) -> dict[str, Any]:
        """The next blind battle for this session: the prompt and two anonymous answers."""
        voter = self._signer().voter_of(session)
        state = self.engine.committed
        round_id, voting = self._open_voting(state)
        pool = self.pool(round_id, voting)
        battle: Battle | None = pool.scheduler.next_battle(voter)
        if battle is None:
            return {"round": round_id, "battle": None, "done": True}
        handed = Handed(round_id, battle.prompt, battle.a, battle.b, voter, time.time())
        return {"round": round_id, "battle": self._signer().battle(handed),
                "prompt": pool.prompts[battle.prompt],
                "a": pool.texts[(battle.a, battle.prompt)],
                "b": pool.texts[(battle.b, battle.prompt)],
                "min_seconds": voting["rules"]["min_seconds"], "done": False}

    async def vote(self, session: str | None, host: str, body: VoteBody) -> dict[str, Any]:
        """Check a vote against every rule and store it; answers once it is durable."""
        signer = self._signer()
        voter = signer.voter_of(session)
        handed = signer.handed(body.battle)
        if handed.voter != voter:
            raise NotPermitted("this battle was handed to another voting session",
                               "vote on the battles GET /api/vote/battle gives you")
        state = self.engine.committed
        round_id, voting = self._open_voting(state)
        if handed.round != round_id:
            raise StateConflict(f"this battle belongs to round {handed.round!r}, whose voting "
                                "is over", "ask for a new battle", seq=state.seq, rule="closed")
        rules = voting["rules"]
        now = time.time()
        vote = StoredVote(round_id, voter, handed.key, handed.prompt, handed.a, handed.b,
                          body.choice, signer.address(host), now)
        early = handed.issued + rules["min_seconds"] - now
        if early > 0:
            await self._refuse(vote, "min_seconds", rules["per_session"])
            raise RateLimited(f"too soon: read both answers for at least "
                              f"{rules['min_seconds']:g} seconds before voting",
                              "send the vote again in a moment", rule="min_seconds",
                              retry_after=math.ceil(early * 10) / 10)
        minute = int(now // 60)
        self._per_address[(vote.address, minute)] += 1
        if self._per_address[(vote.address, minute)] > rules["per_address_per_minute"]:
            await self._refuse(vote, "per_address", rules["per_session"])
            raise RateLimited("too many votes from your network this minute",
                              "wait for the next minute", rule="per_address",
                              retry_after=60 - int(now % 60))
        self._forget_old_minutes(minute)
        return self._answer(await self.store.add(vote, rules["per_session"]), round_id,
                            rules["per_session"], state.seq)

    async def _refuse(self, vote: StoredVote, rule: str, per_session: int) -> None:
        await self.store.add(dataclasses.replace(vote, refused=rule), per_session)

    @staticmethod
    def _answer(outcome: str, round_id: str, per_session: int, seq: int) -> dict[str, Any]:
        if outcome == "counted":
            return {"round": round_id, "counted": True}
        if outcome == "duplicate":
            raise StateConflict("you have voted on this battle already",
                                "ask for the next battle", seq=seq, rule="one_per_battle")
        if outcome == "per_session":
            raise RateLimited(f"you have cast the most votes one session may in this round "
                              f"({per_session})", "thank you for voting", rule="per_session")
        raise StateConflict("voting is closed", "the tally is being made", seq=seq,
                            rule="closed")

    def _forget_old_minutes(self, minute: int) -> None:
        if len(self._per_address) > 100_000:  # a bound, not a schedule: cheap on average
            for key in [k for k in self._per_address if k[1] < minute]:
                del self._per_address[key]

    # -- the operator ---------------------------------------------------------------------

    async def status(self, round_id: str, operator: bool) -> dict[str, Any]:
        """Open or closed and how many votes; for the operator also the counts per pair,
        the refusals per rule, the withheld answers, the flagged voters and, once closed,
        the tally. Never the split of the votes while voting is open."""
        state = self.engine.committed
        voting = state.rounds[round_id].voting
        if voting is None:
            return {"round": round_id, "open": False, "opened": False, "votes": 0}
        counts = await self.store.counts(round_id)
        out: dict[str, Any] = {
            "round": round_id, "open": voting["open"], "opened": True,
            "opened_ts": voting["opened_ts"], "rules": voting["rules"],
            "closes_at": (voting["opened_ts"] + 60 * voting["rules"]["minutes"]
                          if voting["rules"]["minutes"] else None),
            "votes": counts.get("counted", 0)}
        if not operator:
            return out
        pool = self.pool(round_id, voting)
        refused = {k.removeprefix("refused:"): v for k, v in counts.items()
                   if k.startswith("refused:")}
        out.update({
            "pairs": {k.removeprefix("pair:"): v for k, v in counts.items()
                      if k.startswith("pair:")},
            "refused": refused,
            "refused_share": sum(refused.values()) / max(1, sum(refused.values())
                                                         + out["votes"]),
            "withheld": pool.withheld, "left_out": pool.scheduler.left_out,
            "battles_served": pool.scheduler.served,
            "outliers": await asyncio.to_thread(self._outliers, round_id, voting["teams"]),
        })
        if not voting["open"]:
            out.update({k: voting[k] for k in ("tally", "log_hash", "excluded", "kept")})
            out["votes"] = voting["votes"]
        return out

    def _counted(self, round_id: str) -> list[Vote]:
        return [Vote(v.a, v.b, v.choice, v.voter) for v in self.store.read(round_id)
                if not v.refused]

    def _outliers(self, round_id: str, teams: list[str]) -> list[dict[str, Any]]:
        votes = self._counted(round_id)
        if not votes:
            return []
        try:
            found = outlier_voters(teams, votes)
        except InvalidRequest:
            return []  # too few decisive votes to fit a model yet
        return [{"voter": o.voter, "decisive": o.decisive, "agreed": o.agreed,
                 "expected": o.expected, "p_value": o.p_value, "q_value": o.q_value}
                for o in found]

    async def close(self, actor: str, round_id: str, body: VotingCloseBody) -> Event:
        """Stop taking votes on every node, tally them and record the tally as one event."""
        state = self.engine.committed
        voting = state.rounds[round_id].voting
        if voting is None or not voting["open"]:
            raise StateConflict(f"voting on round {round_id!r} is not open", seq=state.seq)
        self._closing.add(round_id)
        await self.store.seal(round_id)
        try:
            result = await asyncio.to_thread(self._tally, round_id, voting,
                                             set(body.keep_voters))
            return await self.engine.run(actor, ballots.close_voting, round_id, body, result)
        except BaseException:
            await self.store.seal(round_id, False)
            raise
        finally:
            self._closing.discard(round_id)

    def _tally(self, round_id: str, voting: dict[str, Any], keep: set[str]) -> dict[str, Any]:
        votes = self._counted(round_id)
        teams = voting["teams"]
        if not votes:
            raise StateConflict(f"round {round_id!r} has no counted votes to tally",
                                "keep voting open until viewers have voted")
        flagged = {o["voter"] for o in self._outliers(round_id, teams)}
        unknown = sorted(keep - flagged)
        if unknown:
            raise InvalidRequest(f"voter {unknown[0]!r} is not flagged by the outlier test",
                                 f"flagged: {', '.join(sorted(flagged)) or 'none'}")
        excluded = sorted(flagged - keep)
        counted = [v for v in votes if v.voter not in excluded]
        crit = self.engine.committed.require_show().criterion(voting["criterion"])
        assert crit is not None
        prior = 0.0
        try:
            bt.check_identifiable(count_votes(teams, counted)[0])
        except InvalidRequest:
            prior = FALLBACK_PRIOR_TIES
        result = tally(teams, counted, max_points=crit.points, rule=voting["rule"],
                       exclude_voters=(), prior_ties=prior)
        return {"votes": len(counted), "excluded": excluded, "tally": result.to_json(),
                "log_hash": votelog.log_hash(v.record() for v in counted)}

    def export(self, round_id: str, public: bool) -> bytes:
        """The anonymised votes as canonical NDJSON (votelog.py): once voting closed, the
        very lines the tally was computed from (their SHA-256 is the event's log_hash)."""
        state = self.engine.committed
        rnd = state.rounds[round_id]
        if public and rnd.phase != PUBLISHED:
            raise NotPermitted(f"the votes of round {round_id!r} are published with its "
                               "results", "ask again once the round is published")
        excluded = set(rnd.voting["excluded"]) if rnd.voting and not rnd.voting["open"] \
            else set()
        return votelog.ndjson(v.record() for v in self._counted(round_id)
                              if v.voter not in excluded)


CACHED = 200_000  # sessions (or addresses) whose pseudonym is kept: about 30 MB at most


def _remember(cache: dict[str, str], key: str, value: str) -> None:
    if len(cache) >= CACHED:
        cache.clear()
    cache[key] = value


def _identity_names(state: State, team_id: str) -> list[str]:
    """What would give a team away: its names, organisation and model, each at least two
    letters (the leak filter refuses shorter ones)."""
    team = state.teams[team_id].team
    names = {team.name_ko, team.name_en, team.org, team.model}
    return sorted(n for n in names if len(n.strip()) >= 2)
