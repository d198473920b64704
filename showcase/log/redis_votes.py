"""The vote store on Redis, shared by every node of a deployment (log/votes.py has the
contract).

Per round: a stream of the votes in the order Redis took them, a set of (voter, battle)
already voted, a hash of votes per voter and a hash of counts. One Lua script checks the
store's two rules and appends, atomically (Redis runs scripts one at a time), so a voter
whose votes reach two nodes still votes once per battle and no more than its limit. Each
node sends the votes waiting in one turn of its loop as one pipeline: one round trip for a
burst. Acknowledged means Redis answered; with ``appendfsync always`` it has fsynced
first, and ``open()`` refuses a Redis that would not (log/redis_streams.py says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import fields
from typing import Any, cast

import redis
import redis.asyncio

from showcase.core.errors import LogError, Unavailable
from showcase.log.redis_streams import TIMEOUT, as_text, durability_problem
from showcase.log.votes import Outcome, StoredVote, pair_key, row_of

log = logging.getLogger(__name__)

PREFIX = "showcase:votes"
FIELDS = [f.name for f in fields(StoredVote)]
PAGE = 5000

# KEYS: stream, voted set, per-voter hash, counts hash, the closed marker.
# ARGV: voter|battle, voter, the per-session limit, the pair's count key, then the
# vote's fields as name, value pairs (refused among them).
ADD = """
local refused = ARGV[6 + 2 * 9]
local outcome = 'refused'
if redis.call('EXISTS', KEYS[5]) == 1 then return 'closed' end
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
if refused == '' then
  outcome = 'counted'
  if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 'duplicate' end
  if tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0') >= tonumber(ARGV[3]) then
    refused = 'per_session'
    outcome = refused
    fields[#fields] = refused
  else
    redis.call('SADD', KEYS[2], ARGV[1])
    redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
    redis.call('HINCRBY', KEYS[4], 'counted', 1)
    redis.call('HINCRBY', KEYS[4], ARGV[4], 1)
  end
end
if refused ~= '' then redis.call('HINCRBY', KEYS[4], 'refused:' .. refused, 1) end
redis.call('XADD', KEYS[1], '*', unpack(fields))
return outcome
"""


def _keys(prefix: str, round_id: str) -> list[str]:
    base = f"{prefix}:{round_id}"
    return [f"{base}:stream", f"{base}:voted", f"{base}:voters", f"{base}:counts",
            f"{base}:closed"]


class RedisVotes:
    """Votes in Redis at ``url``; any number of nodes may use it at once."""

    def __init__(self, url: str, *, prefix: str = PREFIX, relaxed: bool = False) -> None:
        self.url = url
        self.prefix = prefix
        self.relaxed = relaxed
        self.failed: BaseException | None = None
        self.batches = 0
        self.stored = 0
        self._sync: Any = None
        self._async: Any = None
        self._script: Any = None
        self._pending: list[tuple[StoredVote, int, asyncio.Future[Outcome]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._group: asyncio.TaskGroup | None = None

    def open(self) -> RedisVotes:
        client: Any = redis.Redis.from_url(self.url, socket_timeout=TIMEOUT)
        try:
            client.ping()
            problem = durability_problem({as_text(k): as_text(v) for k, v in
                                          client.config_get("append*").items()})
        except redis.RedisError as exc:
            client.close()
            raise LogError(f"cannot open the vote store in Redis at {self.url}: {exc}",
                           "is Redis running there? check the URL given to --redis") from exc
        if problem and not self.relaxed:
            client.close()
            raise LogError(f"Redis at {self.url} could lose acknowledged votes: {problem}",
                           "run Redis with --appendonly yes --appendfsync always")
        self._sync = client
        return self

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The asynchronous client and the batches in flight, while the server runs."""
        client: Any = redis.asyncio.Redis.from_url(self.url, socket_timeout=TIMEOUT)
        self._async = client
        self._script = client.register_script(ADD)
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                yield
                self._send()  # whatever the last turn queued
        finally:
            self._group = None
            await client.aclose()

    async def secret(self) -> bytes:
        """The key that signs sessions and battles, shared by every node."""
        key = f"{self.prefix}:secret"
        await asyncio.to_thread(self._sync.set, key, secrets.token_hex(32), nx=True)
        found = await asyncio.to_thread(self._sync.get, key)
        return bytes.fromhex(found.decode())

    def add(self, vote: StoredVote, per_session: int) -> asyncio.Future[Outcome]:
        """Queue the vote for this turn's pipeline; resolves once Redis answered."""
        if self.failed is not None:
            raise Unavailable("the vote store cannot write", f"{self.failed!r}")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._pending.append((vote, per_session, future))
        if len(self._pending) == 1:
            loop.call_soon(self._send)
        return future

    def _send(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        if self._group is None:
            for *_, future in batch:
                future.set_exception(Unavailable("the vote store is not running"))
            return
        task = self._group.create_task(self._write(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, batch: list[tuple[StoredVote, int, asyncio.Future[Outcome]]]
                     ) -> None:
        pipe = self._async.pipeline(transaction=False)
        for vote, per_session, _ in batch:
            args: list[Any] = [f"{vote.voter}|{vote.battle}", vote.voter, per_session,
                               f"pair:{pair_key(vote.a, vote.b)}"]
            for name, value in zip(FIELDS, row_of(vote), strict=True):
                args += [name, repr(value) if isinstance(value, float) else value]
            # queues EVALSHA on the pipeline (the script is loaded first if Redis lacks it)
            await self._script(keys=_keys(self.prefix, vote.round), args=args, client=pipe)
        try:
            answers = await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            error = Unavailable("the vote store (Redis) did not answer; the votes may not "
                                "have been recorded", str(exc))
            for *_, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        self.batches += 1
        self.stored += len(batch)
        for (*_, future), answer in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(cast(Outcome, answer.decode()))

    def read(self, round_id: str) -> Iterator[StoredVote]:
        """The round's votes in stream order (blocking: run it in a thread)."""
        stream = _keys(self.prefix, round_id)[0]
        start = "-"
        while True:
            page = self._sync.xrange(stream, start, "+", count=PAGE)
            for entry_id, raw in page:
                values = {k.decode(): v.decode() for k, v in raw.items()}
                yield StoredVote(**{**values, "ts": float(values["ts"])})
                start = "(" + entry_id.decode()
            if len(page) < PAGE:
                return

    async def counts(self, round_id: str) -> dict[str, int]:
        raw = await self._async.hgetall(_keys(self.prefix, round_id)[3])
        return {k.decode(): int(v) for k, v in raw.items()}

    async def seal(self, round_id: str, sealed: bool = True) -> None:
        """Refuse (or again accept) the round's votes on every node, before its tally; this
        node's votes queued before are answered first."""
        self._send()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        key = _keys(self.prefix, round_id)[4]
        await (self._async.set(key, "1") if sealed else self._async.delete(key))

    def forget(self, round_id: str) -> None:
        """Delete a round's votes (tests and benchmarks only)."""
        self._sync.delete(*_keys(self.prefix, round_id))

