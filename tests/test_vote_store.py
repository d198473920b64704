"""The vote store's contract, held against both backends: SQLite (one node) and Redis (a
real server, shared by nodes). Votes are durable once their future resolves, the store's
rules hold (one vote per voter per battle, a voter's limit), refusals are kept with their
rule, and a sealed round takes no more votes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from showcase.log.redis_votes import RedisVotes
from showcase.log.votes import SQLiteVotes, StoredVote, VoteStore
from tests.redis_server import TEST_REDIS, reachable


def vote(voter: str, battle: str = "p1|lg|skt", choice: str = "a", refused: str = "",
         round_id: str = "r1") -> StoredVote:
    a, b = battle.split("|")[1:]
    return StoredVote(round_id, voter, battle, battle.split("|")[0], a, b, choice, "addr",
                      1700000000.25, refused)


@pytest.fixture(params=["sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[type]:
    """A function that opens the same store again (a restart, or a second node)."""
    prefix = f"showcase:test:{uuid.uuid4().hex[:8]}:votes"
    made: list[VoteStore] = []

    def make() -> VoteStore:
        store: VoteStore = (SQLiteVotes(tmp_path) if request.param == "sqlite"
                            else RedisVotes(TEST_REDIS, prefix=prefix, relaxed=True))
        made.append(store.open())
        return store

    if request.param == "redis":
        reachable()
    yield make  # type: ignore[misc]
    for store in made:
        store.close()
    if request.param == "redis":
        forget(prefix)


def forget(prefix: str) -> None:
    client = reachable()
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


@pytest.fixture
async def store(make_store: type) -> AsyncIterator[VoteStore]:
    opened: VoteStore = make_store()
    async with opened.running():
        yield opened


async def test_vote_store_counts_a_vote_once_per_voter_and_battle(store: VoteStore) -> None:
    assert await store.add(vote("v1"), per_session=10) == "counted"
    assert await store.add(vote("v1", choice="b"), per_session=10) == "duplicate"
    assert await store.add(vote("v2"), per_session=10) == "counted"
    assert await store.add(vote("v1", "p2|lg|skt"), per_session=10) == "counted"
    counts = await store.counts("r1")
    assert counts == {"counted": 3, "pair:lg|skt": 3}
    stored = await asyncio.to_thread(lambda: list(store.read("r1")))
    assert [(v.voter, v.battle, v.choice) for v in stored] == [
        ("v1", "p1|lg|skt", "a"), ("v2", "p1|lg|skt", "a"), ("v1", "p2|lg|skt", "a")]
    assert stored[0] == vote("v1")  # every field back as it went in, the time exactly


async def test_vote_store_keeps_refused_votes_with_their_rule(store: VoteStore) -> None:
    assert await store.add(vote("v1"), per_session=1) == "counted"
    assert await store.add(vote("v1", "p2|lg|skt"), per_session=1) == "per_session"
    assert await store.add(vote("v2", refused="min_seconds"), per_session=1) == "refused"
    counts = await store.counts("r1")
    assert counts["counted"] == 1
    assert counts["refused:per_session"] == 1 and counts["refused:min_seconds"] == 1
    stored = await asyncio.to_thread(lambda: list(store.read("r1")))
    assert [v.refused for v in stored] == ["", "per_session", "min_seconds"]
    # a refused vote does not use up the battle: the voter may still vote on it
    assert await store.add(vote("v2"), per_session=1) == "counted"


async def test_vote_store_sealed_round_takes_no_more_votes(store: VoteStore) -> None:
    burst = [store.add(vote(f"v{i}"), per_session=5) for i in range(50)]
    await store.seal("r1")
    assert set(await asyncio.gather(*burst)) == {"counted"}  # queued before: on disk now
    assert await store.add(vote("late"), per_session=5) == "closed"
    assert len(await asyncio.to_thread(lambda: list(store.read("r1")))) == 50
    await store.seal("r1", False)
    assert await store.add(vote("late"), per_session=5) == "counted"
    assert await store.add(vote("x", round_id="r2"), per_session=5) == "counted"


async def test_vote_store_keeps_votes_and_key_across_a_restart(make_store: type) -> None:
    first: VoteStore = make_store()
    async with first.running():
        key = await first.secret()
        results = await asyncio.gather(*(first.add(vote(f"v{i}"), 3) for i in range(200)))
    assert set(results) == {"counted"}
    first.close()
    again: VoteStore = make_store()
    async with again.running():
        assert await again.secret() == key  # sessions handed out before still count
        assert (await again.counts("r1"))["counted"] == 200
        assert await again.add(vote("v7"), 3) == "duplicate"  # the rules remember too


async def test_vote_store_two_nodes_on_redis_count_a_voter_once() -> None:
    reachable()
    prefix = f"showcase:test:{uuid.uuid4().hex[:8]}:votes"
    nodes = [RedisVotes(TEST_REDIS, prefix=prefix, relaxed=True).open() for _ in range(2)]
    try:
        async with nodes[0].running(), nodes[1].running():
            assert await nodes[0].secret() == await nodes[1].secret()
            both = await asyncio.gather(*(nodes[i % 2].add(vote("v1", f"p{i // 2}|lg|skt"), 3)
                                          for i in range(8)))
            # each battle sent to both nodes: counted once; past three, the limit
            assert both.count("counted") == 3 and both.count("duplicate") == 3
            assert both.count("per_session") == 2
            assert (await nodes[1].counts("r1"))["counted"] == 3
    finally:
        for node in nodes:
            node.close()
        forget(prefix)
