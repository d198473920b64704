"""The durable event log, on SQLite: WAL, ``synchronous=FULL`` and grouped commits.

A command is acknowledged only once its event is on disk. One writer thread takes every
event waiting, inserts them in one transaction and commits once, so one fsync serves a
whole burst: under load the batches grow and the cost per event falls, while a lone
command still commits at once. The seq is the primary key, so the file itself refuses a
seq assigned twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from showcase.core.errors import LogError, Unavailable
from showcase.core.events import Event
from showcase.log.base import FORMAT, SeqTaken

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq   INTEGER PRIMARY KEY,
    ts    REAL    NOT NULL,
    type  TEXT    NOT NULL,
    actor TEXT    NOT NULL,
    data  BLOB    NOT NULL,
    key   TEXT    NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
LOG_FILE = "events.sqlite3"
_STOP = object()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def owner_only(path: Path) -> None:
    """The log, its WAL and its shared memory, readable by the owner only: they hold
    sealed scores. SQLite makes the WAL and shared-memory files with the database's
    permissions, so the database is made 0600 before SQLite first opens it; files left
    readable by an older version are tightened."""
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)
                log.warning("%s could be read by others; it is now readable by its owner only",
                            file)


def _row(event: Event) -> tuple[int, float, str, str, bytes, str]:
    return (event.seq, event.ts, event.type, event.actor, orjson.dumps(event.data), event.key)


def _event(row: tuple[Any, ...]) -> Event:
    return Event(row[0], row[1], row[2], row[3], orjson.loads(row[4]), row[5])


def _add_key_column(conn: sqlite3.Connection) -> None:
    """A log written before events kept their Idempotency-Key gets the column (empty)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    if "key" not in columns:
        conn.execute("ALTER TABLE events ADD COLUMN key TEXT NOT NULL DEFAULT ''")


class SQLiteLog:
    """The event log in ``DIR/events.sqlite3``; one server per data directory at a time."""

    shared = False  # this process is the only writer
    down: str | None = None
    refusing = False

    def __init__(self, data_dir: str | Path, *, exclusive: bool = True) -> None:
        self.dir = Path(data_dir)
        self.path = self.dir / LOG_FILE
        self.exclusive = exclusive
        self.last_seq = 0
        self.failed: BaseException | None = None
        self.batches = 0
        self.appended = 0
        self.commit_seconds = 0.0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[None]]] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock_file: Any = None
        self._reader: sqlite3.Connection | None = None

    # -- lifecycle -----------------------------------------------------------

    def open(self) -> SQLiteLog:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        owner_only(self.path)
        if self.exclusive:
            self._lock_file = open(self.dir / "lock", "w")  # noqa: SIM115 - held while open
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                self._lock_file.close()
                raise LogError(
                    f"{self.dir} is in use by another showcase server",
                    "stop it, or give this one its own --data directory",
                ) from exc
        try:
            self._reader = _connect(self.path)
            self._reader.executescript(SCHEMA)
            _add_key_column(self._reader)
            fmt = self._reader.execute("SELECT value FROM meta WHERE key='format'").fetchone()
            if fmt is None:
                self._reader.execute("INSERT INTO meta VALUES ('format', ?)", (FORMAT,))
            elif fmt[0] != FORMAT:
                raise LogError(f"{self.path} has log format {fmt[0]}, this showcase reads {FORMAT}")
            self.last_seq = self._reader.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise LogError(f"{self.path} cannot be opened as an event log: {exc}") from exc
        return self

    @property
    def is_open(self) -> bool:
        return self._reader is not None

    def close(self) -> None:
        if self._thread is not None:
            self._hand_over()
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> SQLiteLog:
        return self.open()

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType]) -> None:
        self.close()

    # -- reading -------------------------------------------------------------

    def read(self, since: int = 0, limit: int | None = None) -> Iterator[Event]:
        """Events with seq above ``since``, in order. Safe while the server writes."""
        assert self._reader is not None, "open() the log first"
        sql = "SELECT seq, ts, type, actor, data, key FROM events WHERE seq > ? ORDER BY seq"
        args: tuple[int, ...] = (since,)
        if limit is not None:
            sql += " LIMIT ?"
            args = (since, limit)
        conn = _connect(self.path)  # a connection of its own: reads may run in a thread
        try:
            for row in conn.execute(sql, args):
                yield _event(row)
        finally:
            conn.close()

    # -- writing -------------------------------------------------------------

    def append(self, event: Event) -> asyncio.Future[None]:
        """Queue an event for the next commit; the future resolves once it is on disk."""
        if self.failed is not None:
            raise Unavailable("the event log cannot write", f"{self.failed!r}; restart the server")
        if event.seq != self.last_seq + 1:
            raise LogError(f"seq {event.seq} does not follow {self.last_seq}")
        loop = asyncio.get_running_loop()
        if self._thread is None:
            self._loop = loop
            self._thread = threading.Thread(target=self._write_loop, name="showcase-log",
                                            daemon=True)
            self._thread.start()
        future: asyncio.Future[None] = loop.create_future()
        self.last_seq = event.seq
        self._pending.append((_row(event), future))
        if len(self._pending) == 1:
            loop.call_soon(self._hand_over)
        return future

    def _hand_over(self) -> None:
        """Give the writer every event queued in this turn of the loop at once: one wake-up
        of its thread for a burst of commands, not one each."""
        if self._pending:
            self._queue.put(self._pending)
            self._pending = []

    def append_now(self, events: list[Event]) -> None:
        """Append synchronously in one transaction (imports and first start, no server)."""
        assert self._reader is not None, "open() the log first"
        if events and events[0].seq <= self.last_seq:
            raise SeqTaken(events[0].seq, self.last_seq)
        if events and events[0].seq != self.last_seq + 1:
            raise LogError(f"seq {events[0].seq} does not follow {self.last_seq}")
        try:
            with self._reader:
                self._reader.execute("BEGIN")
                self._reader.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
                                         [_row(e) for e in events])
        except sqlite3.IntegrityError as exc:  # another handle on this file wrote first
            last = self._reader.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
            raise SeqTaken(events[0].seq, last) from exc
        if events:
            self.last_seq = events[-1].seq

    async def follow(self, since: int, stop: asyncio.Event | None = None
                     ) -> AsyncIterator[list[Event]]:
        """Nothing to follow: no other process writes this file."""
        await (stop or asyncio.Event()).wait()
        return
        yield []

    async def drained(self) -> None:
        return None

    def resume(self, seq: int) -> None:
        return None

    def _write_loop(self) -> None:
        conn = _connect(self.path)
        loop = self._loop
        assert loop is not None
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                batch = list(item)
                stop = False
                while True:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is _STOP:
                        stop = True
                        break
                    batch += more
                started = time.perf_counter()
                error: BaseException | None = None
                try:
                    if self.failed is not None:
                        # queued before the failure was seen: writing them would leave a
                        # gap where the failed batch was, so they fail with it
                        raise sqlite3.OperationalError(f"an earlier write failed: {self.failed}")
                    _insert(conn, [row for row, _ in batch])
                except sqlite3.Error as exc:
                    error = exc
                    if self.failed is None:
                        self.failed = exc
                        log.critical("event log write failed, refusing further commands: %r",
                                     exc)
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                self.commit_seconds += time.perf_counter() - started
                self.batches += 1
                self.appended += len(batch)
                loop.call_soon_threadsafe(_resolve, [f for _, f in batch], error)
                if stop:
                    return
        finally:
            conn.close()


ROWS_PER_INSERT = 128  # 768 bound values, well below SQLite's limit of 32,766


def _insert(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert and commit rows as one transaction, in as few steps as SQLite allows.

    The sqlite3 module lets go of the GIL for every step and must take it back after,
    waiting for the event loop to pause. ``executemany`` steps once per row: under load a
    batch of 28 rows waited ~1.1 ms for the GIL against ~0.3 ms for its fsync. Up to 128
    rows are one INSERT, which outside BEGIN is its own transaction: one step in all."""
    several = len(rows) > ROWS_PER_INSERT  # then BEGIN makes the statements one transaction
    if several:
        conn.execute("BEGIN")
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start:start + ROWS_PER_INSERT]
        conn.execute(_insert_sql(len(chunk)), [value for row in chunk for value in row])
    if several:
        conn.execute("COMMIT")


@functools.cache
def _insert_sql(rows: int) -> str:
    return "INSERT INTO events VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?)"] * rows)


def _resolve(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(Unavailable("the event log failed to write", repr(error)))
