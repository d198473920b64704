"""The vote store: the audience's votes, many and small, kept apart from the event log.

A vote is acknowledged only once it is durable, but votes are not events: thousands a
second would swamp the show's log and every screen that follows it. So they have their
own store, and the tally goes into the log as one event when voting closes
(core/ballots.py). Two backends keep one contract (``VoteStore``; tests/test_vote_store.py
holds both to it): ``SQLiteVotes`` here (``DIR/votes.sqlite3``, WAL, ``synchronous=FULL``,
one writer thread that commits every vote waiting in one transaction, so one fsync serves
a burst) and ``RedisVotes`` in redis_votes.py (one stream per round, shared by every node).

The store owns the two rules that must hold across nodes, checked atomically with the
write: one vote per voter per battle (a repeat is not stored: it is the same vote again)
and the most votes a voter may cast in a round (a vote past it is stored, refused, with
the reason). The other rules (pace, per address) are the booth's (voting/booth.py), which
stores the votes they refuse with their reason too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import queue
import secrets
import sqlite3
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from showcase.core.errors import LogError, Unavailable
from showcase.log.sqlite import owner_only

log = logging.getLogger(__name__)

Outcome = Literal["counted", "duplicate", "per_session", "refused", "closed"]
COUNTED: Outcome = "counted"
PER_SESSION: Outcome = "per_session"  # the rule the store refuses a voter's vote past its limit by


@dataclass(frozen=True, slots=True)
class StoredVote:
    """One vote as stored. ``voter`` and ``address`` are pseudonyms (never the session id
    or the network address); ``battle`` names the prompt and the pair whichever side was A;
    ``refused`` is the rule the vote failed, empty when it counts."""

    round: str
    voter: str
    battle: str
    prompt: str
    a: str
    b: str
    choice: str
    address: str
    ts: float
    refused: str = ""


def row_of(vote: StoredVote) -> tuple[Any, ...]:
    """The vote's fields in order (``dataclasses.astuple`` deep-copies: 40 times slower)."""
    return (vote.round, vote.voter, vote.battle, vote.prompt, vote.a, vote.b, vote.choice,
            vote.address, vote.ts, vote.refused)


def pair_key(a: str, b: str) -> str:
    """The pair of teams whichever was shown as A: the key of its count."""
    return "|".join(sorted((a, b)))


class VoteStore(Protocol):
    """What the booth needs of a store: SQLiteVotes here, RedisVotes in redis_votes.py."""

    failed: BaseException | None
    batches: int
    stored: int

    def open(self) -> VoteStore: ...
    def close(self) -> None: ...
    def running(self) -> contextlib.AbstractAsyncContextManager[None]: ...
    async def secret(self) -> bytes: ...
    def add(self, vote: StoredVote, per_session: int) -> asyncio.Future[Outcome]: ...
    def read(self, round_id: str) -> Iterator[StoredVote]: ...
    async def counts(self, round_id: str) -> dict[str, int]: ...
    async def seal(self, round_id: str, sealed: bool = True) -> None: ...


SCHEMA = """
CREATE TABLE IF NOT EXISTS votes (
    id      INTEGER PRIMARY KEY,
    round   TEXT NOT NULL,
    voter   TEXT NOT NULL,
    battle  TEXT NOT NULL,
    prompt  TEXT NOT NULL,
    a       TEXT NOT NULL,
    b       TEXT NOT NULL,
    choice  TEXT NOT NULL,
    address TEXT NOT NULL,
    ts      REAL NOT NULL,
    refused TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
VOTES_FILE = "votes.sqlite3"
ROWS_PER_INSERT = 64  # 704 bound values, well below SQLite's limit
_STOP = object()


def _connect(path: Path) -> sqlite3.Connection:
    owner_only(path)  # votes name sessions and addresses (as pseudonyms): the owner's only
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class SQLiteVotes:
    """Votes in ``DIR/votes.sqlite3``; this process is their only writer (the event log's
    lock on the data directory sees to that), so the rules are checked in memory, exactly."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / VOTES_FILE
        self.failed: BaseException | None = None
        self.batches = 0
        self.stored = 0
        self._voted: set[tuple[str, str, str]] = set()
        self._per_voter: Counter[tuple[str, str]] = Counter()
        self._counts: dict[str, Counter[str]] = {}
        self._sealed: set[str] = set()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Outcome], Outcome]] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: sqlite3.Connection | None = None

    def open(self) -> SQLiteVotes:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = _connect(self.path)
            self._conn.executescript(SCHEMA)
            for row in self._conn.execute("SELECT round, voter, battle, a, b, refused FROM votes"):
                self._remember(*row)
        except sqlite3.DatabaseError as exc:
            raise LogError(f"{self.path} cannot be opened as a vote store: {exc}") from exc
        return self

    def _remember(self, round_id: str, voter: str, battle: str, a: str, b: str,
                  refused: str) -> None:
        counts = self._counts.setdefault(round_id, Counter())
        if refused:
            counts[f"refused:{refused}"] += 1
            return
        self._voted.add((round_id, voter, battle))
        self._per_voter[(round_id, voter)] += 1
        counts[COUNTED] += 1
        counts[f"pair:{pair_key(a, b)}"] += 1

    def close(self) -> None:
        if self._thread is not None:
            self._hand_over()
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The writer thread runs while the server does; closing flushes what waits."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._write_loop, name="showcase-votes",
                                        daemon=True)
        self._thread.start()
        try:
            yield
        finally:
            self._hand_over()
            self._queue.put(_STOP)
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    async def secret(self) -> bytes:
        """The key that signs sessions and battles, made on first use and kept here."""
        assert self._conn is not None, "open() the store first"
        self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('secret', ?)",
                           (secrets.token_hex(32),))
        found = self._conn.execute("SELECT value FROM meta WHERE key='secret'").fetchone()
        return bytes.fromhex(found[0])

    def add(self, vote: StoredVote, per_session: int) -> asyncio.Future[Outcome]:
        """Check the store's rules and queue the vote; the future resolves once it is on
        disk (at once, for a repeat, which is not stored)."""
        if self.failed is not None:
            raise Unavailable("the vote store cannot write", f"{self.failed!r}; restart")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        if vote.round in self._sealed:
            future.set_result("closed")
            return future
        outcome: Outcome = "refused" if vote.refused else COUNTED
        if not vote.refused:
            if (vote.round, vote.voter, vote.battle) in self._voted:
                future.set_result("duplicate")
                return future
            if self._per_voter[(vote.round, vote.voter)] >= per_session:
                vote = dataclasses.replace(vote, refused=PER_SESSION)
                outcome = PER_SESSION
        self._remember(vote.round, vote.voter, vote.battle, vote.a, vote.b, vote.refused)
        self._pending.append((row_of(vote), future, outcome))
        if len(self._pending) == 1:
            loop.call_soon(self._hand_over)
        return future

    def _hand_over(self) -> None:
        """Give the writer every vote queued in this turn of the loop at once."""
        if self._pending:
            self._queue.put(self._pending)
            self._pending = []

    def read(self, round_id: str) -> Iterator[StoredVote]:
        """The round's votes in the order they were stored (a connection of its own, so it
        may run in a thread while the writer writes)."""
        conn = _connect(self.path)
        try:
            for row in conn.execute(
                    "SELECT round, voter, battle, prompt, a, b, choice, address, ts, refused "
                    "FROM votes WHERE round = ? ORDER BY id", (round_id,)):
                yield StoredVote(*row)
        finally:
            conn.close()

    async def counts(self, round_id: str) -> dict[str, int]:
        """``counted``, ``refused:<rule>`` and ``pair:<a>|<b>`` for the round."""
        return dict(self._counts.get(round_id, {}))

    async def seal(self, round_id: str, sealed: bool = True) -> None:
        """Refuse (or again accept) the round's votes, before its tally; a sealed round's
        votes already queued are on disk when this returns."""
        if sealed:
            self._sealed.add(round_id)
            await self._flushed()
        else:
            self._sealed.discard(round_id)

    async def _flushed(self) -> None:
        """Wait until every vote queued so far is written (a marker through the queue)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._hand_over()
        self._queue.put(("flush", done))
        await done

    def _write_loop(self) -> None:
        conn = _connect(self.path)
        loop = self._loop
        assert loop is not None
        try:
            stop = False
            while not stop:
                items = [self._queue.get()]
                while True:
                    try:
                        items.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop = _STOP in items
                batch = [vote for item in items if isinstance(item, list) for vote in item]
                if batch:
                    self._write(conn, loop, batch)
                for item in items:
                    if isinstance(item, tuple):  # a flush marker: all before it is written
                        loop.call_soon_threadsafe(item[1].set_result, None)
        finally:
            conn.close()

    def _write(self, conn: sqlite3.Connection, loop: asyncio.AbstractEventLoop,
               batch: list[tuple[tuple[Any, ...], asyncio.Future[Outcome], Outcome]]) -> None:
        error: BaseException | None = self.failed
        if error is None:
            try:
                _insert(conn, [row for row, _, _ in batch])
            except sqlite3.Error as exc:
                error = self.failed = exc
                log.critical("vote store write failed, refusing further votes: %r", exc)
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
        self.batches += 1
        self.stored += len(batch)
        loop.call_soon_threadsafe(_resolve, [(f, o) for _, f, o in batch], error)


def _insert(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """All rows in one transaction, a multi-row INSERT per chunk (fewer GIL hand-offs than
    executemany's step per row; see log/sqlite.py)."""
    conn.execute("BEGIN")
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start:start + ROWS_PER_INSERT]
        conn.execute(_insert_sql(len(chunk)), [value for row in chunk for value in row])
    conn.execute("COMMIT")


@functools.cache
def _insert_sql(rows: int) -> str:
    return ("INSERT INTO votes (round, voter, battle, prompt, a, b, choice, address, ts, "
            "refused) VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * rows))


def _resolve(results: list[tuple[asyncio.Future[Outcome], Outcome]],
             error: BaseException | None) -> None:
    for future, outcome in results:
        if future.done():
            continue
        if error is None:
            future.set_result(outcome)
        else:
            future.set_exception(Unavailable("the vote store failed to write", repr(error)))
