"""The engine: commands in, durable events out, one state per stage of durability.

Two states are folded from the same events. ``head`` includes events that are queued
for the disk, so that commands arriving in a burst are checked against each other in
order. ``committed`` holds only what is on disk, and is the only state any view, snapshot
or stream is built from: nothing reaches a screen that a crash could take back.

With a shared log (Redis, several nodes) ``committed`` is folded in stream order from
whichever comes first, this node's acknowledgement or the tail of the stream, and
``head`` is a guess that the log checks: an append refused because another node took
its seq (``SeqTaken``) makes the engine wait for its own appends to settle, fold what
the others wrote, rebuild ``head`` from ``committed`` and check the command again. A
command is answered only once durable, and never recorded twice.

Each committed event is folded into ``committed`` at once, but its messages (the event as
each view may see it, and its patch) are prepared per committed *batch*: ``patches.Views``
builds each view's change once for the batch and gives it to the batch's last message.
The batch is what one append made durable: on SQLite the writer resolves a batch's futures
together, so their ``_on_commit`` callbacks run back to back in one turn of the loop, and
the ``call_soon(self._prepare)`` that the first of them schedules runs after the rest; a
shared log's tail hands ``_fold`` a list, prepared at its end. Until then the batch is
``_unprepared``: not in the history, not published, not in ``views``. Every reader of
those (``snapshot``, ``events_between``) prepares it first, so nothing that ran between
the fold and the prepare (another callback of the same turn) sees a seq that ``committed``
has and the messages lack; doing the preparation only at the end of the turn keeps the
batch whole under load, and the readers' flush keeps it exact whatever runs in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from showcase.core import events as ev
from showcase.core.errors import ShowFileError, Unavailable
from showcase.core.events import Event
from showcase.core.patches import Views
from showcase.core.showfile import Show
from showcase.core.state import State
from showcase.core.views import team_telemetry, view_state
from showcase.log.base import EventLog, SeqTaken
from showcase.log.sqlite import SQLiteLog
from showcase.runtime.fanout import Hub
from showcase.runtime.live import Live
from showcase.runtime.transparency import Transparency, publishes

log = logging.getLogger(__name__)

HISTORY = 10_000  # recent events kept in memory for viewers resuming with since
TELEMETRY_EVENTS = frozenset({ev.DEMO_RESULT, ev.REQUEST_MEASURED, ev.TEAM_HEALTH})
CONFLICT_RETRIES = 20  # a command re-checked this often while other nodes keep winning
# Events back from the newest whose Idempotency-Key a retry still finds: every node folds
# the same events, so every node keeps the same keys.
KEY_WINDOW = 100_000


class Engine:
    def __init__(self, show: Show, data_dir: str | Path, *, queue_limit: int = 1024,
                 log: EventLog | None = None,
                 transparency: Transparency | None = None) -> None:
        self.show = show
        # The Merkle tree over every committed event and its signed checkpoints (issue 16).
        self.transparency = transparency
        self.log: EventLog = log if log is not None else SQLiteLog(data_dir)
        self.hub = Hub(queue_limit)
        self.live = Live(self.hub, show.frame_rate)
        self.committed = State()
        self.head = State()
        self.history: deque[Event] = deque(maxlen=HISTORY)
        # Each view's state as its clients hold it; each committed event's message per
        # view (the event as the view may see it, and its patch) is prepared from it.
        self.views = Views(self.committed)
        self.commands = 0
        self.conflicts = 0  # appends refused because another node took the seq first
        self._head_behind = False  # committed holds events that head lacks
        self._rebuild = asyncio.Lock()
        self._snapshots: dict[str, tuple[int, bytes]] = {}
        self._unprepared: list[Event] = []  # folded into committed, messages not yet made
        # (actor, Idempotency-Key) -> the committed event that carries it, oldest first
        self._keys: dict[tuple[str, str], Event] = {}
        # (actor, key) -> this node's append of it, queued and not yet answered by the log
        self._keys_in_flight: dict[tuple[str, str], tuple[Event, asyncio.Future[None]]] = {}
        # seq -> when this node queued it, while the log has not answered: a log that
        # stops acknowledging shows here before any connection to it times out
        self._unacked: dict[int, float] = {}
        # When this node's probe of a shared log's write path was sent, while unanswered;
        # why the last one failed, until one succeeds (probe_writes)
        self._probe_sent: float | None = None
        self.probe_failed: str | None = None

    # -- lifecycle -----------------------------------------------------------

    def open(self) -> Engine:
        """Open the log, replay it, and record the show file if it is new or changed."""
        self.log.open()
        try:
            while True:
                for event in self.log.read(self.committed.seq):
                    self.committed.apply(event)
                    self._remember_key(event)
                    self.history.append(event)
                    if self.transparency is not None:
                        self.transparency.append(event)
                # Events replayed here carry no messages: a viewer behind this point resumes
                # from a snapshot (events_between), so start-up builds no view per event.
                self.views = Views(self.committed)
                check_show_change(self.committed, self.show)
                if (self.committed.show is not None
                        and self.committed.show.config() == self.show.config()):
                    break
                event = Event(self.committed.seq + 1, time.time(), ev.SHOW_CONFIGURED,
                              "showfile", {"config": self.show.config()})
                try:
                    self.log.append_now([event])
                except SeqTaken:
                    continue  # another node starting at the same time: read what it wrote
                self._commit(event)
                self._prepare()
                log.info("show file recorded in the log as seq %d", event.seq)
        except BaseException:
            self.log.close()
            raise
        self.head = copy.deepcopy(self.committed)
        return self

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The log's writer and, for a shared log, the tail of other nodes' events."""
        if not self.log.shared:
            yield
            return
        running = getattr(self.log, "running")  # noqa: B009 - only shared logs have one
        stop = asyncio.Event()
        async with running(), asyncio.TaskGroup() as tasks:
            follower = tasks.create_task(self._follow(stop))
            prober = tasks.create_task(self._probe_writes())
            try:
                yield
            finally:
                stop.set()  # the follower ends by itself even if the cancel is lost
                follower.cancel()
                prober.cancel()

    async def _probe_writes(self) -> None:
        """Probe a shared log's write path every quarter of the command deadline, so that
        a node with no command of its own in flight still knows, within about half the
        deadline, that the log has stopped acknowledging (``stalled``): the tail alone
        notices only once its read times out, seconds later."""
        probe = getattr(self.log, "probe")  # noqa: B009 - only shared logs have one
        period = min(1.0, max(0.1, self.show.command_deadline / 4))
        while True:
            self._probe_sent = time.monotonic()
            try:
                await probe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.probe_failed is None:
                    log.warning("a probe of the event log's write path failed: %s", exc)
                self.probe_failed = str(exc) or type(exc).__name__
            else:
                if self.probe_failed is not None:
                    log.warning("the event log acknowledges writes again")
                self.probe_failed = None
            self._probe_sent = None
            await asyncio.sleep(period)

    async def _follow(self, stop: asyncio.Event) -> None:
        async for events in self.log.follow(self.committed.seq, stop):
            self._fold(events)

    def close(self) -> None:
        self.log.close()

    @property
    def is_open(self) -> bool:
        return self.log.is_open

    # -- commands ------------------------------------------------------------

    async def run(self, actor: str, command: Callable[..., tuple[str, dict[str, Any]]],
                  *args: Any, key: str = "", timeout: float | None = None,
                  then: Callable[[Event], None] | None = None) -> Event:
        """Check a command against the head state, append its event, return once durable.

        With ``timeout`` (a caller waiting: the show's ``command_deadline``), within that
        many seconds, else ``Unavailable`` saying whether the command was not recorded or
        may have been; the server's own events wait as long as the log takes. With ``key``
        (the caller's Idempotency-Key), a command that ``actor`` already sent with that key
        is answered with its event, recorded once: committed, or still on its way.

        ``then`` is what recording the event sets going (a demo's requests, a benchmark
        run's workers): called once, when this node's append of it is durable, whether or
        not the caller still waits (a command answered 503 at its deadline and recorded
        after all still starts its demo), and never for a retry answered with the first
        event."""
        deadline = asyncio.get_running_loop().time() + timeout if timeout else None
        for attempt in range(CONFLICT_RETRIES):
            if key:
                found = await self._sent_before(actor, key, deadline)
                if found is not None:
                    return found
            if deadline is not None and asyncio.get_running_loop().time() >= deadline:
                raise late(self.show.command_deadline, recorded=False)
            submitted = self.submit(actor, command, *args, key=key, then=then)
            if submitted is None:
                # Behind another node: fold what it wrote, and check again at once (a
                # rebuild is not a try of its own, or two busy nodes run out of tries).
                await self._within(deadline, self._rebuild_head(), recorded=False)
                submitted = self.submit(actor, command, *args, key=key, then=then)
            if submitted is None:
                continue  # another node moved on while this one rebuilt: check again
            event, durable = submitted
            try:
                # Shielded: neither the deadline nor a client that goes away cancels an
                # append already queued; it is recorded or not as the log decides.
                await self._within(deadline, durable, recorded=None)
            except SeqTaken:
                self.conflicts += 1
                # Another node wrote first: fold its events and check again, after a
                # random pause that grows with each loss, so that two nodes writing at
                # once do not keep colliding in step.
                await asyncio.sleep(random.random() * 0.001 * (attempt + 1))
                continue
            return event
        raise Unavailable("other nodes kept appending first; nothing was recorded",
                          f"the command was checked {CONFLICT_RETRIES} times; send it again")

    def recorded(self, actor: str, key: str) -> Event | None:
        """The committed event ``actor`` sent with Idempotency-Key ``key``, if any."""
        return self._keys.get((actor, key))

    async def _sent_before(self, actor: str, key: str, deadline: float | None
                           ) -> Event | None:
        """The event ``actor`` recorded with ``key``, waiting for it while it is in flight
        on this node; None when there is none (or its append was refused: not recorded)."""
        found = self._keys.get((actor, key))
        if found is not None:
            return found
        in_flight = self._keys_in_flight.get((actor, key))
        if in_flight is None:
            return None
        event, durable = in_flight
        try:
            await self._within(deadline, durable, recorded=None)
        except SeqTaken:
            return None
        return event

    async def _within(self, deadline: float | None, waited: Awaitable[Any],
                      recorded: bool | None) -> Any:
        """``waited``, shielded, or a 503 once the loop's clock passes ``deadline``."""
        if deadline is None:
            return await asyncio.shield(waited)
        if not isinstance(waited, asyncio.Future):  # a rebuild of the head: seldom
            try:
                async with asyncio.timeout_at(deadline):
                    return await asyncio.shield(waited)
            except TimeoutError:
                raise late(self.show.command_deadline, recorded) from None
        # Every command waits here: one future and one timer, which cost what the shield
        # alone did; asyncio.timeout_at added 10 us a command (measured, uvloop).
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()
        waited.add_done_callback(partial(_relay, answer))
        timer = loop.call_at(deadline, _expire, answer, self.show.command_deadline, recorded)
        try:
            return await answer
        finally:
            timer.cancel()

    def stalled(self) -> bool:
        """Whether the log has left an append of this node, or a probe of its write path,
        unanswered for over half the command deadline, or refused the last probe: commands
        are being answered 503 (``/healthz``: not writable)."""
        if self.probe_failed is not None:
            return True
        limit = time.monotonic() - self.show.command_deadline / 2
        oldest = next(iter(self._unacked.values()), None)
        probe = self._probe_sent
        return (oldest is not None and oldest < limit) or (probe is not None and probe < limit)

    def submit(self, actor: str, command: Callable[..., tuple[str, dict[str, Any]]],
               *args: Any, key: str = "", then: Callable[[Event], None] | None = None
               ) -> tuple[Event, asyncio.Future[None]] | None:
        """What ``run`` does before it waits: check the command against the head state and
        queue its event; the future resolves once the event is on disk. None when a shared
        log's head must be rebuilt first (only ``run`` can wait for that); on a log of this
        process alone it never is, so the lean command path calls this without a task."""
        self._check_writable()
        if self.log.refusing or (self._head_behind and self.log.shared):
            return None
        event_type, data = command(self.head, *args)
        event = Event(self.head.seq + 1, time.time(), event_type, actor, data, key)
        self.head.apply(event)
        durable = self.log.append(event)
        self._unacked[event.seq] = time.monotonic()
        if key:
            self._keys_in_flight[(actor, key)] = (event, durable)
        durable.add_done_callback(partial(self._on_commit, event))
        if then is not None:  # after _on_commit: the state it sees holds the event
            durable.add_done_callback(partial(_then, then, event))
        return event, durable

    def _check_writable(self) -> None:
        if self.log.failed is not None:
            raise Unavailable("the event log cannot write; nothing was recorded",
                              f"{self.log.failed!r}: restart the server")
        if self.log.down is not None:
            raise Unavailable("the event log cannot be reached; nothing was recorded",
                              f"{self.log.down}; send the command again once it is back")

    async def _rebuild_head(self) -> None:
        """After a refusal: settle this node's appends, fold what others wrote, start over."""
        async with self._rebuild:
            if not (self.log.refusing or self._head_behind):
                return  # another command rebuilt it meanwhile
            await self.log.drained()
            self._check_writable()
            caught_up = await asyncio.to_thread(lambda: list(self.log.read(self.committed.seq)))
            self._fold(caught_up)
            self.head = copy.deepcopy(self.committed)
            self._head_behind = False
            self.log.resume(self.committed.seq)

    def _on_commit(self, event: Event, durable: asyncio.Future[None]) -> None:
        self._unacked.pop(event.seq, None)
        if event.key:
            self._keys_in_flight.pop((event.actor, event.key), None)
        if durable.cancelled() or durable.exception() is not None:
            return  # refused (retried by run) or the log failed (every later command refused)
        self.commands += 1
        if event.seq <= self.committed.seq:
            return  # the tail of a shared log delivered it first
        if event.seq != self.committed.seq + 1:
            log.error("seq %d acknowledged before %d; left to the tail", event.seq,
                      self.committed.seq + 1)
            return
        if not self._unprepared:
            # The log resolved this event's batch at once: the callbacks of its other
            # events are already queued, so this runs after all of them.
            asyncio.get_running_loop().call_soon(self._prepare)
        self._commit(event)

    def _fold(self, events: list[Event]) -> None:
        """Durable events read from a shared log, any node's, in stream order."""
        for event in events:
            if event.seq <= self.committed.seq:
                continue
            if event.seq != self.committed.seq + 1:
                log.error("the log skipped from seq %d to %d", self.committed.seq, event.seq)
                return
            in_step = self.head.seq == self.committed.seq  # no append of ours in flight
            self._commit(event)
            if in_step and not self._head_behind and not self.log.refusing:
                self.head.apply(event)
            elif event.seq > self.head.seq:
                self._head_behind = True  # rebuilt from committed before the next command
        self._prepare()  # the list is one batch of the stream

    def _commit(self, event: Event) -> None:
        """Fold a durable event; its messages follow with the rest of its batch."""
        self.committed.apply(event)
        self._remember_key(event)
        if self.transparency is not None:
            self.transparency.append(event)
        self._unprepared.append(event)

    def _remember_key(self, event: Event) -> None:
        """Keep a committed event's Idempotency-Key, for the last ``KEY_WINDOW`` events."""
        if event.key:
            self._keys[(event.actor, event.key)] = event
        while self._keys:
            oldest = next(iter(self._keys.values()))
            if oldest.seq > event.seq - KEY_WINDOW:
                break
            del self._keys[(oldest.actor, oldest.key)]

    def _prepare(self) -> None:
        """Prepare, keep and publish the messages of the events folded since the last call
        (one committed batch): each view's patch is built once for all of them."""
        batch = self._unprepared
        if not batch:
            return
        self._unprepared = []
        for event, wires in zip(batch, self.views.commit_batch(self.committed, batch),
                                strict=True):
            event.prepare(wires)
            self.history.append(event)
            self.hub.publish(event.seq, event.wire)
        telemetry = {e.data["team"] for e in batch if e.type in TELEMETRY_EVENTS}
        for team in sorted(telemetry):
            self.live.update_telemetry(team, team_telemetry(self.committed.telemetry[team], True))
        self.sign_if_due(next((e for e in batch if publishes(e)), batch[-1]))

    def sign_if_due(self, event: Event | None = None) -> None:
        """Sign a checkpoint if one is due (results just announced, or events waiting longer
        than the interval) and send it to every screen; the public stream carries each one."""
        t = self.transparency
        if t is None or not t.due(event, time.time()):
            return
        t.sign(time.time())
        payload = orjson.dumps(t.message())
        self.hub.publish(None, lambda view: payload)

    @contextlib.asynccontextmanager
    async def signing(self) -> AsyncIterator[None]:
        """Checkpoints for events that arrived and no publication followed: at least one
        every ``interval`` seconds while events arrive."""
        if self.transparency is None:
            yield
            return
        period = max(0.2, self.transparency.interval / 4)

        async def tick() -> None:
            while True:
                await asyncio.sleep(period)
                self.sign_if_due()

        async with asyncio.TaskGroup() as tasks:
            ticker = tasks.create_task(tick())
            try:
                yield
            finally:
                ticker.cancel()

    # -- reading -------------------------------------------------------------

    def state_message(self, view: str) -> dict[str, Any]:
        return {"seq": self.committed.seq, "view": view,
                "state": view_state(self.committed, view)}

    def snapshot(self, view: str) -> bytes:
        """The snapshot message for a view, serialised once per seq and view: the state
        that a client applying every event's patch holds at that seq."""
        self._prepare()
        cached = self._snapshots.get(view)
        if cached is None or cached[0] != self.views.seq:
            message = {"seq": self.views.seq, "type": "snapshot",
                       "data": {"view": view, "state": self.views.shown(view)}}
            cached = (self.views.seq, orjson.dumps(message))
            self._snapshots[view] = cached
        return cached[1]

    def events_between(self, since: int, until: int) -> list[Event] | None:
        """Committed events with since < seq <= until, or None when the viewer needs a
        snapshot instead: events older than the history, or replayed at start-up, have no
        prepared messages (no patch to apply), and only events committed since the server
        started do; those are contiguous, the newest of the history."""
        self._prepare()
        if since >= until:
            return []
        if not self.history or self.history[0].seq > since + 1:
            return None
        first = self.history[0].seq
        events = list(itertools.islice(self.history, since + 1 - first, until + 1 - first))
        return events if events and events[0].prepared else None

    def read_latest(self, limit: int, types: set[str] | None) -> list[Event]:
        """The last ``limit`` committed events (of ``types``), oldest first: read backwards
        in growing windows, so a console can show what just happened without paging."""
        top = self.committed.seq
        window = max(256, 4 * limit)
        while True:
            since = max(0, top - window)
            found = self.read_log(since, top - since, types)
            if len(found) >= limit or since == 0:
                return found[-limit:]
            window *= 4

    def read_log(self, since: int, limit: int, types: set[str] | None) -> list[Event]:
        out: list[Event] = []
        for event in self.log.read(since):
            if event.seq > self.committed.seq:
                break
            if types is None or event.type in types:
                out.append(event)
                if len(out) >= limit:
                    break
        return out


def _relay(answer: asyncio.Future[Any], waited: asyncio.Future[Any]) -> None:
    """``waited``'s outcome to ``answer``, unless the deadline or the caller ended it."""
    if answer.done():
        return
    if waited.cancelled():
        answer.cancel()
    elif waited.exception() is not None:
        answer.set_exception(waited.exception())  # type: ignore[arg-type]
    else:
        answer.set_result(waited.result())


def _then(then: Callable[[Event], None], event: Event, durable: asyncio.Future[None]
          ) -> None:
    """Set going what ``event`` starts, once it is durable (refused: nothing to start)."""
    if durable.cancelled() or durable.exception() is not None:
        return
    try:
        then(event)
    except Exception:
        log.exception("seq %d (%s) is recorded, but what it starts failed to start",
                      event.seq, event.type)


def _expire(answer: asyncio.Future[Any], deadline: float, recorded: bool | None) -> None:
    if not answer.done():
        answer.set_exception(late(deadline, recorded))


def late(deadline: float, recorded: bool | None) -> Unavailable:
    """The 503 of a command the log did not make durable within the deadline: whether it
    was not recorded (``recorded`` False) or may have been (None: it is still queued)."""
    if recorded is False:
        return Unavailable(f"the event log did not answer within {deadline:g} s; the "
                           "command was not recorded",
                           "send it again once GET /healthz says writable", recorded=False)
    return Unavailable(f"the event log did not confirm the command within {deadline:g} s; "
                       "it may have been recorded",
                       "send it again with the same Idempotency-Key: it is recorded once. "
                       "Without one, read GET /api/log first", recorded="unknown")


def check_show_change(state: State, show: Show) -> None:
    """A show file may change between starts, but not drop what the log refers to."""
    old = state.show
    if old is None:
        return
    for kind, before, after in (
        ("team", {t.id for t in old.teams}, {t.id for t in show.teams}),
        ("criterion", {c.id for c in old.criteria}, {c.id for c in show.criteria}),
        ("round", {r.id for r in old.rounds}, {r.id for r in show.rounds}),
    ):
        gone = sorted(before - after)
        if gone:
            raise ShowFileError(
                show.path, f"{kind} {gone[0]!r}",
                "is in this data directory's log and cannot be removed from the show file "
                "(disqualify or withdraw a team instead, or start a fresh --data directory)",
            )
    if [r.id for r in old.rounds] != [r.id for r in show.rounds][: len(old.rounds)]:
        raise ShowFileError(show.path, "rounds", "cannot be reordered once the show has a log")
