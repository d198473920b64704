"""Audience voting over real HTTP: sessions, blind battles, every rule a vote must pass,
the operator's counts, the tally recorded as the sealed feedback criterion, the export
whose hash the tally carries, and no vote lost to a kill -9 once acknowledged."""

from __future__ import annotations

import base64
import hashlib
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from showcase.core.audit import AuditError, audit
from showcase.core.events import Event, event_from_json
from showcase.voting.tally import Vote, tally
from tests.conftest import (
    JUDGES,
    OPERATOR,
    SAMPLE_BENCHMARK,
    SAMPLE_SHEETS,
    Server,
    enter_sheets,
)
from tests.redis_server import TEST_REDIS, reachable
from tests.streams import read_sse

TEAMS = ["lg", "skt", "upstage", "naver", "ncai"]
STRENGTH = {"lg": 3.0, "skt": 2.0, "upstage": 1.0, "naver": 0.5, "ncai": 0.25}


def pool(prompts: int = 3, leak: str | None = None) -> list[dict[str, Any]]:
    """Every team's answer to each prompt; each answer says which team wrote it in a way
    the test can read back (a marker no identity name matches)."""
    out = []
    for p in range(prompts):
        answers = {t: f"answer #{t[::-1]}# to prompt {p}" for t in TEAMS}
        if leak and p == 0:
            answers[leak] = "As EXAONE by LG AI Research, I think the answer is 42."
        out.append({"id": f"p{p}", "text": f"prompt number {p}", "answers": answers})
    return out


def team_of(answer: str) -> str:
    return answer.split("#")[1][::-1]


def open_voting(server: Server, **rules: Any) -> httpx.Response:
    body = {"prompts": rules.pop("prompts", pool()), "min_seconds": 0, **rules}
    return server.post("/api/rounds/r1/voting/open", body)


class Voter:
    """A viewer's page: one session, battles and votes."""

    def __init__(self, server: Server) -> None:
        self.http = httpx.Client(base_url=server.url, timeout=10)
        self.session = self.http.post("/api/vote/session", json={}).json()["session"]
        self.http.headers["X-Vote-Session"] = self.session

    def battle(self) -> dict[str, Any]:
        response = self.http.get("/api/vote/battle")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def vote(self, battle: dict[str, Any], choice: str) -> httpx.Response:
        return self.http.post("/api/vote", json={"battle": battle["battle"], "choice": choice})

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def voters(server: Server) -> Iterator[list[Voter]]:
    made: list[Voter] = []
    yield made
    for v in made:
        v.close()


def honest_choice(battle: dict[str, Any], rng: random.Random) -> str:
    a, b = team_of(battle["a"]), team_of(battle["b"])
    return "a" if rng.random() < STRENGTH[a] / (STRENGTH[a] + STRENGTH[b]) else "b"


def test_vote_battle_is_blind_and_a_counted_vote_shows_in_the_counts_not_the_split(
        server: Server, voters: list[Voter]) -> None:
    assert open_voting(server).status_code == 201
    voter = Voter(server)
    voters.append(voter)
    battle = voter.battle()
    assert battle["prompt"].startswith("prompt number")
    assert set(battle) == {"round", "battle", "prompt", "a", "b", "min_seconds", "done"}
    shown = orjson.dumps({k: v for k, v in battle.items() if k not in ("a", "b", "battle")})
    for team in TEAMS:  # no team id travels with the battle
        assert team.encode() not in shown
    token = base64.urlsafe_b64decode(battle["battle"] + "=" * (-len(battle["battle"]) % 4))
    for team in (team_of(battle["a"]), team_of(battle["b"])):
        assert team.encode() not in token  # the token is encrypted, not just encoded
    answer = voter.vote(battle, "a")
    assert answer.status_code == 201, answer.text
    public = httpx.get(f"{server.url}/api/rounds/r1/voting").json()
    assert public["open"] is True and public["votes"] == 1
    assert "pairs" not in public and "tally" not in public
    with server.client(OPERATOR) as op:
        counts = op.get("/api/rounds/r1/voting").json()
    pair = "|".join(sorted((team_of(battle["a"]), team_of(battle["b"]))))
    assert counts["pairs"] == {pair: 1}
    assert "tally" not in counts  # nobody knows who is winning while voting is open


def test_vote_refusals_name_their_rule_and_are_kept_with_the_reason(
        server: Server, voters: list[Voter]) -> None:
    assert open_voting(server, min_seconds=30, per_session=1).status_code == 201
    voter = Voter(server)
    voters.append(voter)
    battle = voter.battle()
    early = voter.vote(battle, "a")
    assert early.status_code == 429
    assert early.json()["rule"] == "min_seconds" and "30 seconds" in early.json()["error"]
    assert 0 < early.json()["retry_after"] <= 30
    nobody = httpx.post(f"{server.url}/api/vote", json={"battle": battle["battle"],
                                                        "choice": "a"})
    assert nobody.status_code == 401 and "X-Vote-Session" in nobody.json()["detail"]
    other = Voter(server)
    voters.append(other)
    stolen = other.vote(battle, "a")
    assert stolen.status_code == 403 and "another voting session" in stolen.json()["error"]
    forged = voter.http.post("/api/vote", json={"battle": battle["battle"][:-3] + "AAA",
                                                "choice": "a"})
    assert forged.status_code == 400 and "'battle'" in forged.json()["error"]
    bad_choice = voter.http.post("/api/vote", json={"battle": battle["battle"],
                                                    "choice": "c"})
    assert bad_choice.status_code == 400 and "'choice'" in bad_choice.json()["error"]
    with server.client(OPERATOR) as op:
        counts = op.get("/api/rounds/r1/voting").json()
    assert counts["votes"] == 0 and counts["refused"] == {"min_seconds": 1}
    assert counts["refused_share"] == 1.0


def test_vote_once_per_battle_and_per_session_limit(server: Server,
                                                   voters: list[Voter]) -> None:
    assert open_voting(server, per_session=2).status_code == 201
    voter = Voter(server)
    voters.append(voter)
    first = voter.battle()
    assert voter.vote(first, "a").status_code == 201
    again = voter.vote(first, "b")
    assert again.status_code == 409 and again.json()["rule"] == "one_per_battle"
    assert voter.vote(voter.battle(), "tie").status_code == 201
    over = voter.vote(voter.battle(), "bad")
    assert over.status_code == 429 and over.json()["rule"] == "per_session"
    with server.client(OPERATOR) as op:
        counts = op.get("/api/rounds/r1/voting").json()
    assert counts["votes"] == 2 and counts["refused"] == {"per_session": 1}


def test_vote_per_address_caps_a_rigging_bot_of_many_sessions(
        server: Server, voters: list[Voter]) -> None:
    assert open_voting(server, per_address_per_minute=10).status_code == 201
    answers = []
    for _ in range(15):  # a bot: a fresh session per vote, one address, always "a"
        bot = Voter(server)
        voters.append(bot)
        answers.append(bot.vote(bot.battle(), "a"))
    statuses = [r.status_code for r in answers]
    # a minute boundary may fall inside the burst: then a few more pass, never all
    assert statuses.count(201) < 15 and statuses.count(429) >= 1
    assert {r.json()["rule"] for r in answers if r.status_code == 429} == {"per_address"}


def test_vote_leaking_answers_are_never_served(server: Server, voters: list[Voter]) -> None:
    assert open_voting(server, prompts=pool(2, leak="lg")).status_code == 201
    voter = Voter(server)
    voters.append(voter)
    seen = []
    while (battle := voter.battle())["battle"] is not None:
        seen += [battle["a"], battle["b"]]
        assert voter.vote(battle, "tie").status_code == 201
    assert seen and not any("EXAONE" in text for text in seen)
    with server.client(OPERATOR) as op:
        counts = op.get("/api/rounds/r1/voting").json()
    assert counts["withheld"][0]["team"] == "lg" and counts["withheld"][0]["prompt"] == "p0"
    assert counts["left_out"] == {"p0": ["lg"]}  # without lg's answer p0 cannot be fair


def test_vote_voting_closed_is_a_clear_refusal(server: Server, voters: list[Voter]) -> None:
    voter = Voter(server)
    voters.append(voter)
    response = voter.http.get("/api/vote/battle")
    assert response.status_code == 409 and response.json()["error"] == "voting is closed"


def cast_honest_votes(server: Server, voters: list[Voter], sessions: int, per: int,
                      seed: int = 7) -> int:
    rng = random.Random(seed)
    cast = 0
    for _ in range(sessions):
        voter = Voter(server)
        voters.append(voter)
        for _ in range(per):
            battle = voter.battle()
            if battle["battle"] is None:
                break
            assert voter.vote(battle, honest_choice(battle, rng)).status_code == 201
            cast += 1
    return cast


def test_vote_tally_enters_feedback_sealed_and_export_recomputes_it(
        server: Server, voters: list[Voter]) -> None:
    assert open_voting(server, prompts=pool(4)).status_code == 201
    cast = cast_honest_votes(server, voters, sessions=12, per=20)
    closed = server.post("/api/rounds/r1/voting/close", {})
    assert closed.status_code == 201, closed.text
    with server.client(OPERATOR) as op:
        status = op.get("/api/rounds/r1/voting").json()
        exported = op.get("/api/rounds/r1/votes.ndjson").content
    assert status["open"] is False and closed.json()["votes"] == cast
    assert hashlib.sha256(exported).hexdigest() == closed.json()["log_hash"]
    lines = [orjson.loads(line) for line in exported.splitlines()]
    again = tally(TEAMS, [Vote(**line) for line in lines], max_points=25,
                  prior_ties=status["tally"]["prior_ties"])
    assert [r.team for r in again.results] == [r["team"] for r in status["tally"]["results"]]
    assert again.results[0].team == "lg"  # the strongest, by the voters' preferences
    state = server.state()["state"]
    feedback = state["rounds"][0]["values"]["feedback"]
    assert max(feedback, key=feedback.get) == "lg" and feedback["lg"] == 5.0  # linear: top
    public = orjson.dumps(server.state(token=None)).decode()
    for figure in ("rating", "log_hash", f"{status['tally']['results'][0]['rating']}"):
        assert figure not in public  # sealed until the reveal
    with server.client(OPERATOR) as op:
        events = [event_from_json(e) for e in op.get("/api/log?limit=5000").json()["events"]]
    audit(events)  # the opening and the closing could each have come from its command
    closing = events[-1]
    assert closing.type == "voting_closed" and closing.data["values"] == feedback
    forged = Event(closing.seq, closing.ts, closing.type, closing.actor,
                   {**closing.data, "values": {**feedback, "ncai": 5.0}})
    with pytest.raises(AuditError, match="values"):
        audit([*events[:-1], forged])
    refused = httpx.get(f"{server.url}/api/rounds/r1/votes.ndjson")
    assert refused.status_code == 403 and "published" in refused.json()["error"]
    after = voters[0].http.get("/api/vote/battle")
    assert after.status_code == 409


def test_vote_acknowledged_votes_survive_kill_9(tmp_path: Path, showfile: Path) -> None:
    """Voters vote from threads while the server is killed: every vote answered 201 is
    in the store after the restart (one in flight may be there without its answer)."""
    server = Server(showfile, tmp_path / "data").start()
    try:
        assert open_voting(server, prompts=pool(6)).status_code == 201
        voters = [Voter(server) for _ in range(8)]
        acknowledged = [0] * len(voters)
        sent = [0] * len(voters)

        def keep_voting(i: int) -> None:
            try:
                while True:
                    battle = voters[i].battle()
                    sent[i] += 1
                    if voters[i].vote(battle, "a").status_code == 201:
                        acknowledged[i] += 1
            except (httpx.HTTPError, AssertionError):
                return  # the server is gone

        threads = [threading.Thread(target=keep_voting, args=(i,)) for i in range(len(voters))]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while sum(acknowledged) < 150 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill9()
        for thread in threads:
            thread.join()
        for voter in voters:
            voter.close()
        server.start()
        with server.client(OPERATOR) as op:
            counted = op.get("/api/rounds/r1/voting").json()["votes"]
            lines = op.get("/api/rounds/r1/votes.ndjson").content.splitlines()
        assert sum(acknowledged) >= 150
        assert sum(acknowledged) <= counted == len(lines) <= sum(sent)
    finally:
        server.stop()


@pytest.fixture
def redis_nodes(tmp_path: Path, showfile: Path) -> Iterator[list[Server]]:
    """Two ``showcase serve --redis`` nodes sharing the test Redis (emptied before and
    after), each with its own data directory."""
    client = reachable(TEST_REDIS)
    client.flushdb()
    nodes = [Server(showfile, tmp_path / f"node{i}", ["--redis", TEST_REDIS,
                                                        "--redis-relaxed"]).start()
             for i in range(2)]
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()
        client.flushdb()
        client.close()


def test_vote_on_two_redis_nodes_counts_each_acknowledged_vote_once(
        redis_nodes: list[Server]) -> None:
    first, second = redis_nodes
    assert open_voting(first, prompts=pool(4)).status_code == 201
    acknowledged = 0
    for n in range(6):
        voter = Voter(first)
        for k in range(8):
            battle = voter.battle()
            node = redis_nodes[k % 2]  # a balancer sends each request where it likes
            response = httpx.post(f"{node.url}/api/vote", timeout=10,
                                  json={"battle": battle["battle"], "choice": "a"},
                                  headers={"X-Vote-Session": voter.session})
            assert response.status_code == 201, response.text
            acknowledged += 1
            if n == 0 and k == 0:  # the same vote again, through the other node
                again = httpx.post(f"{redis_nodes[1].url}/api/vote", timeout=10,
                                   json={"battle": battle["battle"], "choice": "b"},
                                   headers={"X-Vote-Session": voter.session})
                assert again.status_code == 409 and again.json()["rule"] == "one_per_battle"
        voter.close()
    assert httpx.get(f"{second.url}/api/rounds/r1/voting").json()["votes"] == acknowledged
    closed = second.post("/api/rounds/r1/voting/close", {})
    assert closed.status_code == 201, closed.text
    assert closed.json()["votes"] == acknowledged
    with first.client(OPERATOR) as op:
        exported = op.get("/api/rounds/r1/votes.ndjson").content
    assert hashlib.sha256(exported).hexdigest() == closed.json()["log_hash"]


def test_vote_answers_are_the_same_through_the_front_and_through_starlette(
        server: Server, showfile: Path, tmp_path: Path) -> None:
    """``showcase serve`` answers POST /api/vote in its command front; with
    SHOWCASE_LEAN_COMMANDS=0 Starlette's route does: the same statuses and bodies."""
    plain = Server(showfile, tmp_path / "plain", env={"SHOWCASE_LEAN_COMMANDS": "0"}).start()
    try:
        answers = []
        for srv in (server, plain):
            assert open_voting(srv, min_seconds=60).status_code == 201
            voter = Voter(srv)
            battle = voter.battle()
            got = [voter.vote(battle, "a"), voter.vote(battle, "maybe"),
                   voter.http.post("/api/vote", content=b"{not json"),
                   httpx.post(f"{srv.url}/api/vote", json={"battle": battle["battle"],
                                                            "choice": "a"})]
            voter.close()
            answers.append([(r.status_code, {k: v for k, v in r.json().items()
                                             if k != "retry_after"}) for r in got])
        assert answers[0] == answers[1]
        assert [status for status, _ in answers[0]] == [429, 400, 400, 401]
    finally:
        plain.stop()


def test_vote_points_reach_the_public_only_when_the_round_is_published(
        server: Server, voters: list[Voter]) -> None:
    assert open_voting(server, prompts=pool(4)).status_code == 201
    cast_honest_votes(server, voters, sessions=8, per=20, seed=11)
    closed = server.post("/api/rounds/r1/voting/close", {})
    assert closed.status_code == 201, closed.text
    seq = closed.json()["seq"]
    messages = read_sse(server.url, seq, params={"since": 0})  # the public stream
    assert not [m for m in messages if "rating" in orjson.dumps(m).decode()]
    tallied = [m for m in messages if m["type"] == "voting_closed"]
    assert tallied[0]["data"] == {"round": "r1", "votes": closed.json()["votes"]}
    with server.client(OPERATOR) as op:
        points = {r["team"]: r["points"] for r in
                  op.get("/api/rounds/r1/voting").json()["tally"]["results"]}
    with server.client(OPERATOR) as op:
        for team, value in SAMPLE_BENCHMARK.items():
            op.post("/api/scores", json={"criterion": "benchmark", "team": team,
                                         "value": value}).raise_for_status()
    enter_sheets(server, {team: dict(zip(JUDGES, sheets, strict=True))
                          for team, sheets in SAMPLE_SHEETS.items()})
    assert server.post("/api/rounds/r1/publish", {}).status_code == 201
    rows = server.state(token=None)["state"]["rounds"][0]["standings"]["rows"]
    for row in rows:  # the voters' points, as the tally gave them, now in the standings
        assert row["points"]["feedback"] == pytest.approx(points[row["team"]], abs=0.01)
    assert httpx.get(f"{server.url}/api/rounds/r1/votes.ndjson").status_code == 200


def test_vote_rigging_session_is_flagged_left_out_and_kept_only_with_a_reason(
        server: Server, voters: list[Voter]) -> None:
    assert open_voting(server, prompts=pool(4)).status_code == 201
    honest = cast_honest_votes(server, voters, sessions=10, per=20, seed=3)
    bot = Voter(server)
    voters.append(bot)
    rigged = 0
    while (battle := bot.battle())["battle"] is not None:  # always the weaker answer
        weaker = min(("a", "b"), key=lambda side: STRENGTH[team_of(battle[side])])
        assert bot.vote(battle, weaker).status_code == 201
        rigged += 1
    with server.client(OPERATOR) as op:
        flagged = op.get("/api/rounds/r1/voting").json()["outliers"]
    assert len(flagged) == 1 and flagged[0]["decisive"] == rigged
    suspect = flagged[0]["voter"]
    unexplained = server.post("/api/rounds/r1/voting/close", {"keep_voters": [suspect]})
    assert unexplained.status_code == 400 and "reason" in unexplained.json()["error"]
    stranger = server.post("/api/rounds/r1/voting/close", {"keep_voters": ["0" * 16],
                                                           "reason": "checked"})
    assert stranger.status_code == 400 and "not flagged" in stranger.json()["error"]
    closed = server.post("/api/rounds/r1/voting/close", {})
    assert closed.status_code == 201
    assert closed.json()["votes"] == honest  # the bot's votes are left out of the tally
    with server.client(OPERATOR) as op:
        status = op.get("/api/rounds/r1/voting").json()
        lines = op.get("/api/rounds/r1/votes.ndjson").content.splitlines()
    assert status["excluded"] == [suspect] and len(lines) == honest
    assert suspect not in b"".join(lines).decode()
