"""The event log on Redis Streams, shared by several server nodes.

One stream holds the whole log: the entry id is ``{seq}-0`` and the event's fields are
the entry's fields. Every append runs one Lua script that first checks that the stream
ends exactly at ``seq - 1``; Redis runs scripts one at a time, so two nodes can never
both take a seq, and a node whose state is behind (another node appended first) is told
so instead of writing. The engine then folds the new events, checks its command again
and retries (engine.py).

Acknowledgement means Redis answered the script. With ``appendonly yes`` and
``appendfsync always`` Redis writes and fsyncs its append-only file before it answers,
the same guarantee as SQLite's ``synchronous=FULL``; with less, a crash of Redis can
take back acknowledged events, so ``open()`` refuses such a server unless told to
accept it (``relaxed``).

Each node tails the stream with ``XREAD BLOCK`` (``follow``) and so sees every node's
events, its own included, in stream order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any

import orjson
import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from showcase.core.errors import LogError, Unavailable
from showcase.core.events import Event
from showcase.log.base import FORMAT, SeqTaken

log = logging.getLogger(__name__)

STREAM = "showcase:log"
PAGE = 1000  # entries per XRANGE / XREAD
BLOCK_MS = 2000  # how long one XREAD waits before asking again
TIMEOUT = 5.0  # seconds for one command to Redis, connecting included

# Appends a batch only if the stream ends at the seq before the first: all or nothing.
# ARGV: first seq, the batch's token, then ts, type, actor, data, key of each event. A batch
# sent again after a lost answer finds its own token at its first seq and counts as
# written, so a retry never records a command twice.
# Returns {1, last seq} when written, {0, the stream's last seq} when refused.
APPEND = """
local first = tonumber(ARGV[1])
local n = (#ARGV - 2) / 5
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local last = 0
if #top > 0 then last = tonumber(string.match(top[1][1], '^(%d+)')) end
if last ~= first - 1 then
  if last >= first then
    local at = redis.call('XRANGE', KEYS[1], first .. '-0', first .. '-0')
    if #at > 0 then
      local f = at[1][2]
      for j = 1, #f - 1, 2 do
        if f[j] == 'w' and f[j + 1] == ARGV[2] then return {1, first + n - 1} end
      end
    end
  end
  return {0, last}
end
for i = 0, n - 1 do
  local b = 3 + i * 5
  local id = (first + i) .. '-0'
  if ARGV[b + 4] == '' then
    redis.call('XADD', KEYS[1], id, 'ts', ARGV[b], 'type', ARGV[b + 1],
               'actor', ARGV[b + 2], 'data', ARGV[b + 3], 'w', ARGV[2])
  else
    redis.call('XADD', KEYS[1], id, 'ts', ARGV[b], 'type', ARGV[b + 1],
               'actor', ARGV[b + 2], 'data', ARGV[b + 3], 'w', ARGV[2], 'k', ARGV[b + 4])
  end
end
return {1, first + n - 1}
"""
RESENDS = 3  # a batch is sent again this often when the connection breaks under it


def durability_problem(config: dict[str, str]) -> str | None:
    """What in a Redis server's persistence settings can lose an acknowledged event."""
    if config.get("appendonly") != "yes":
        return "appendonly is 'no': a restart of Redis loses every event since its last snapshot"
    if config.get("appendfsync") != "always":
        return (f"appendfsync is {config.get('appendfsync')!r}, not 'always': a crash of the "
                "machine can lose the last second of acknowledged events")
    return None


def _fields(event: Event) -> list[Any]:
    return [repr(event.ts), event.type, event.actor, orjson.dumps(event.data), event.key]


def _event(entry_id: bytes, fields: dict[bytes, bytes]) -> Event:
    seq = int(entry_id.split(b"-", 1)[0])
    return Event(seq, float(fields[b"ts"]), fields[b"type"].decode(), fields[b"actor"].decode(),
                 orjson.loads(fields[b"data"]), fields.get(b"k", b"").decode())


def as_text(value: Any) -> str:
    """A Redis reply (bytes, or str when decoded) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _client_options() -> dict[str, Any]:
    # No automatic retries: a script resent after a lost answer may already have run, and
    # only the engine can tell what to do then (see _write_loop).
    return {"socket_connect_timeout": TIMEOUT, "retry": Retry(NoBackoff(), 0),
            "retry_on_error": []}


class RedisLog:
    """The event log in one Redis stream; any number of nodes may open it at once."""

    shared = True  # other nodes append too: the engine tails and retries refused appends

    def __init__(self, url: str, *, stream: str = STREAM, relaxed: bool = False) -> None:
        self.url = url
        self.stream = stream
        self.relaxed = relaxed
        self.last_seq = 0
        self.failed: BaseException | None = None
        self.down: str | None = None  # why Redis cannot be reached now, or None
        self.refusing = False  # an append was refused: the node's head must be rebuilt first
        self.inflight = 0
        self.durability = "unknown"
        self.batches = 0
        self.appended = 0
        self.commit_seconds = 0.0
        self._sync: Any = None  # redis.Redis
        self._async: Any = None  # redis.asyncio.Redis
        self._queue: asyncio.Queue[tuple[Event, asyncio.Future[None]]] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._node = uuid.uuid4().hex[:12]  # names this process's batches (APPEND)
        self._sent = 0

    @property
    def where(self) -> str:
        return f"Redis at {self.url} (stream {self.stream})"

    # -- lifecycle -----------------------------------------------------------

    def open(self) -> RedisLog:
        # Any: redis-py's stubs type every reply as a union of all that RESP can carry.
        client: Any = redis.Redis.from_url(self.url, socket_timeout=TIMEOUT,
                                           **_client_options())
        try:
            client.ping()
            self._check_durability(client)
            meta = f"{self.stream}:format"
            client.set(meta, FORMAT, nx=True)
            fmt = client.get(meta)
            if fmt is not None and fmt.decode() != FORMAT:
                raise LogError(f"{self.where} has log format {fmt.decode()}, "
                               f"this showcase reads {FORMAT}")
            self.last_seq = self._top(client)
        except redis.RedisError as exc:
            client.close()
            raise LogError(f"cannot open the event log in {self.where}: {exc}",
                           "is Redis running there? check the URL given to --redis") from exc
        except BaseException:
            client.close()
            raise
        self._sync = client
        return self

    def _check_durability(self, client: Any) -> None:
        try:
            config = {as_text(k): as_text(v) for k, v in client.config_get("append*").items()}
        except redis.ResponseError:
            # Managed services often rename CONFIG; the operator has to vouch for it.
            self.durability = "unchecked"
            problem: str | None = "its persistence settings cannot be read (CONFIG is disabled)"
        else:
            problem = durability_problem(config)
            self.durability = "fsync-always" if problem is None else "relaxed"
        if problem is None:
            return
        if not self.relaxed:
            raise LogError(
                f"{self.where} could lose acknowledged events: {problem}",
                "run Redis with --appendonly yes --appendfsync always (or CONFIG SET them), "
                "or start with --redis-relaxed to accept that risk")
        log.warning("%s could lose acknowledged events: %s (accepted: --redis-relaxed)",
                    self.where, problem)

    @property
    def is_open(self) -> bool:
        return self._sync is not None

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    def __enter__(self) -> RedisLog:
        return self.open()

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType]) -> None:
        self.close()

    def _top(self, client: Any) -> int:
        entries = client.xrevrange(self.stream, count=1)
        return int(entries[0][0].split(b"-", 1)[0]) if entries else 0

    # -- reading -------------------------------------------------------------

    def read(self, since: int = 0, limit: int | None = None) -> Iterator[Event]:
        """Events with seq above ``since``, in order, read a page at a time."""
        assert self._sync is not None, "open() the log first"
        left = limit
        while left is None or left > 0:
            count = PAGE if left is None else min(PAGE, left)
            try:
                page = self._sync.xrange(self.stream, min=f"({since}-0", count=count)
            except redis.RedisError as exc:
                raise Unavailable(f"cannot read the event log in {self.where}",
                                  str(exc)) from exc
            for entry_id, fields in page:
                event = _event(entry_id, fields)
                since = event.seq
                yield event
            if left is not None:
                left -= len(page)
            if len(page) < count:
                return

    async def follow(self, since: int, stop: asyncio.Event | None = None
                     ) -> AsyncIterator[list[Event]]:
        """Every event after ``since`` as it is appended, by any node, in seq order.

        Ends once ``stop`` is set (within one XREAD block, 2 s), and only then: while Redis
        cannot be reached it marks the log ``down`` (commands are refused) and keeps
        trying; once back it goes on from where it was. The engine sets ``stop`` as well
        as cancelling its follower: on asyncio's own loop a cancellation that lands in
        redis-py's read was lost there in 4 stops of 6 (measured), and the follower read
        on for ever. Under uvloop, as ``showcase serve`` runs, it was not lost.
        """
        stop = stop or asyncio.Event()
        client: Any = redis.asyncio.Redis.from_url(
            self.url, socket_timeout=TIMEOUT + BLOCK_MS / 1000, **_client_options())
        pause = 0.1
        try:
            while not stop.is_set():
                try:
                    if self.down is not None:
                        top = int((await client.xrevrange(self.stream, count=1) or
                                   [(b"0-0", {})])[0][0].split(b"-", 1)[0])
                        if top < since:
                            self._lost(top, since)
                        log.warning("%s answers again (stream at seq %d)", self.where, top)
                        self.down = None
                        pause = 0.1
                    reply = await client.xread({self.stream: f"{since}-0"}, count=PAGE,
                                               block=BLOCK_MS)
                except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                    if self.down is None:
                        log.error("%s cannot be reached, commands are refused: %s",
                                  self.where, exc)
                    self.down = f"{exc}"
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 1.0)
                    continue
                if reply:
                    events = [_event(i, f) for i, f in reply[0][1]]
                    since = events[-1].seq
                    self.last_seq = max(self.last_seq, since)
                    yield events
        finally:
            await client.aclose()

    def _lost(self, top: int, since: int) -> None:
        self.failed = LogError(f"{self.where} ends at seq {top} but held {since}: Redis lost "
                               "acknowledged events (was it restarted without its AOF?)")
        log.critical("%s", self.failed.message)

    # -- writing -------------------------------------------------------------

    async def probe(self) -> None:
        """Ask Redis for a write that changes nothing: the log's format marker, set only
        if absent. Redis checks it like any write (a read-only replica, memory full, a
        failing disk refuse it) and answers it after every command sent before it, so a
        probe that goes unanswered is a log that has stopped acknowledging, on a node
        with nothing of its own to append (engine.stalled, GET /healthz). Nothing is added
        to the append-only file: a SET NX of a key that exists is not written there."""
        if self._async is None:
            raise Unavailable("the event log is not running", "the server is starting or stopping")
        await self._async.set(f"{self.stream}:format", FORMAT, nx=True)

    def append(self, event: Event) -> asyncio.Future[None]:
        """Queue an event; the future resolves once Redis holds it, or fails with
        ``SeqTaken`` when another node took that seq first."""
        if self._queue is None:
            raise Unavailable("the event log is not running", "the server is starting or stopping")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.inflight += 1
        self._idle.clear()
        self._queue.put_nowait((event, future))
        return future

    async def drained(self) -> None:
        """Wait until no append of this node is queued or unanswered."""
        await self._idle.wait()

    def resume(self, seq: int) -> None:
        """The engine rebuilt its head from the stream up to ``seq``: appends may go on."""
        self.refusing = False
        self.last_seq = max(self.last_seq, seq)

    def _token(self) -> str:
        self._sent += 1
        return f"{self._node}:{self._sent}"

    def append_now(self, events: list[Event]) -> None:
        """Append synchronously, all or nothing (first start, imports)."""
        assert self._sync is not None, "open() the log first"
        if not events:
            return
        args: list[Any] = [events[0].seq, self._token()]
        for i, event in enumerate(events):
            if event.seq != events[0].seq + i:
                raise LogError(f"seq {event.seq} does not follow {events[0].seq + i - 1}")
            args.extend(_fields(event))
        try:
            written, top = self._sync.eval(APPEND, 1, self.stream, *args)
        except redis.RedisError as exc:
            raise Unavailable(f"cannot write to the event log in {self.where}", str(exc)) from exc
        if not written and top >= events[0].seq:
            raise SeqTaken(events[0].seq, top)
        if not written:
            raise LogError(f"seq {events[0].seq} does not follow {top}")
        self.last_seq = events[-1].seq

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the writer while the server runs (entered by the engine)."""
        client: Any = redis.asyncio.Redis.from_url(self.url, socket_timeout=TIMEOUT,
                                                   **_client_options())
        self._async = client
        self._queue = asyncio.Queue()
        script = client.register_script(APPEND)
        async with asyncio.TaskGroup() as tasks:
            writer = tasks.create_task(self._write_loop(script))
            try:
                yield
            finally:
                writer.cancel()
        for event, future in _drain(self._queue):
            del event
            if not future.done():
                future.set_exception(Unavailable("the server is stopping; nothing was recorded"))
        self._queue = None
        await client.aclose()

    async def _write_loop(self, script: Any) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get(), *_drain(self._queue)]
            self._send(batch, await self._write(script, [event for event, _ in batch]))

    async def _write(self, script: Any, events: list[Event]) -> BaseException | None:
        """Write one batch; None when written, else the error each of its commands gets."""
        if self.failed is not None:
            return Unavailable("the event log cannot write", f"{self.failed!r}")
        if self.refusing:
            # Checked against a head that an earlier refusal showed to be stale.
            return SeqTaken(events[0].seq, -1)
        if self.down is not None:
            self.refusing = True  # what is in Redis now is unknown until it answers again
            return Unavailable(f"the event log ({self.where}) cannot be reached; "
                               "nothing was recorded", self.down)
        args: list[Any] = [events[0].seq, self._token()]
        for event in events:
            args.extend(_fields(event))
        started = time.perf_counter()
        try:
            for attempt in range(RESENDS):
                try:
                    written, top = await script(keys=[self.stream], args=args)
                    break
                except (redis.ConnectionError, redis.TimeoutError) as exc:
                    # A pooled connection broken by a restart of Redis fails here; the
                    # token makes sending the batch again safe.
                    if attempt == RESENDS - 1:
                        raise
                    log.warning("resending seq %d to %s: %s", events[0].seq, self.where, exc)
                    await asyncio.sleep(0.05 * (attempt + 1))
        except redis.RedisError as exc:
            # The script may or may not have run: the stream says which once Redis is
            # back, and the head is rebuilt from it before anything else is appended.
            self.refusing = True
            return Unavailable(
                f"the event log ({self.where}) did not answer; the command may not have "
                f"been recorded", f"{exc}; GET /api/log?since={events[0].seq - 1} shows "
                "whether it was, once Redis is back")
        finally:
            self.commit_seconds += time.perf_counter() - started
        self.batches += 1
        if written:
            self.appended += len(events)
            self.last_seq = max(self.last_seq, int(top))
            return None
        self.refusing = True
        if int(top) < events[0].seq - 1 and int(top) < self.last_seq:
            self._lost(int(top), self.last_seq)
            return Unavailable("the event log cannot write", f"{self.failed!r}")
        return SeqTaken(events[0].seq, int(top))

    def _send(self, batch: list[tuple[Event, asyncio.Future[None]]],
              error: BaseException | None) -> None:
        for _, future in batch:
            if not future.done():
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)
        self.inflight -= len(batch)
        if self.inflight == 0:
            self._idle.set()


def _drain(queue: asyncio.Queue[tuple[Event, asyncio.Future[None]]]
           ) -> list[tuple[Event, asyncio.Future[None]]]:
    out = []
    while True:
        try:
            out.append(queue.get_nowait())
        except asyncio.QueueEmpty:
            return out
