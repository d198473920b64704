"""Benchmark runs: suites run against the teams' endpoints, scored item by item.

A run sends every item of some suites to some teams, through the same clients as the
proxy and the demos, with ``concurrency`` items in flight per team: each team has its own
workers and its own connection pool, so a slow team slows nobody else. Each scored item
is a durable ``bench_item`` event, so a run interrupted by a crash or a restart resumes
where it stopped without asking any item twice. Progress (done, rate, ETA, and the running
accuracy where it is public) goes out on the volatile channel a few times a second.

A run that feeds a round's scores keeps its accuracy sealed like any score: the public
sees progress, not who answered right. ``apply`` turns a finished run into values of the
benchmark criterion, each suite normalised from its baseline (bench.combine).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from pathlib import Path
from typing import Any

from showcase.bench import commands as runcmd
from showcase.bench import lmeval
from showcase.bench import suites as bn
from showcase.bench.commands import PAUSED, RUNNING
from showcase.core import commands
from showcase.core.errors import ShowcaseError
from showcase.core.events import Event
from showcase.core.showfile import BenchSettings
from showcase.models.teams import Teams
from showcase.models.upstream import ERROR, OK, TeamClient, UpstreamError

log = logging.getLogger(__name__)

SERVER_ACTOR = "server:bench"
FAIL_AFTER = 5  # a team whose first items all fail this many times over is failed
RETRY_PAUSE = (0.25, 1.0, 2.0)  # seconds before the 2nd, 3rd, 4th... try
ANSWER_KEPT = 500  # characters of each answer recorded in its event


def suite_paths(settings: BenchSettings) -> list[str | Path]:
    return list(settings.suites) or [bn.sample_suites_dir()]


def available(settings: BenchSettings) -> dict[str, bn.Suite]:
    """The suites a run may use, read now: a malformed line is refused at the start."""
    suites: dict[str, bn.Suite] = {}
    for suite in bn.load_suites(suite_paths(settings)):
        if suite.id in suites:
            raise bn.SuiteError(suite.path, 0, f"suite id {suite.id!r} is also used by "
                                f"{suites[suite.id].path}")
        suites[suite.id] = suite
    return suites


def _left(end: float | None) -> float | None:
    """Seconds left of a command's deadline, shared by the events it appends."""
    return None if end is None else max(end - time.monotonic(), 0.001)


# -- asking one item ---------------------------------------------------------------------

async def ask(client: TeamClient, model: str, suite: bn.Suite, item: bn.Item,
              retries: int, stopping: asyncio.Event | None = None) -> dict[str, Any]:
    """One item, tried up to 1 + retries times; what its bench_item event records."""
    body: dict[str, Any] = {"model": model, "messages": list(item.messages), "stream": True,
                            "stream_options": {"include_usage": True},
                            "max_tokens": suite.max_tokens, "temperature": 0}
    attempts = 0
    while True:
        attempts += 1
        started = time.perf_counter()
        async with client.exchange(body) as exchange:
            try:
                await exchange.start()
                async for _ in exchange.events():
                    pass
                status, error = exchange.meter.status, exchange.meter.error
            except UpstreamError as exc:
                status, error = exc.result, exc.message
        latency = round((time.perf_counter() - started) * 1000, 3)
        if status == OK:
            text = exchange.meter.answer()
            correct, extracted = bn.grade(item, text)
            return {"status": OK, "correct": correct, "extracted": extracted,
                    "answer": text[:ANSWER_KEPT], "latency_ms": latency,
                    "tokens": exchange.meter.output_tokens, "attempts": attempts, "error": ""}
        if attempts > retries or status == "rejected" or (stopping and stopping.is_set()):
            return {"status": ERROR, "correct": None, "extracted": "", "answer": "",
                    "latency_ms": latency, "tokens": 0, "attempts": attempts,
                    "error": error or status}
        await asyncio.sleep(RETRY_PAUSE[min(attempts - 1, len(RETRY_PAUSE) - 1)])


class Progress:
    """One team's counters in a run, and the figures a progress frame carries."""

    def __init__(self, total: int, done: int, correct: int, errors: int, public: bool) -> None:
        self.total, self.done, self.correct, self.errors = total, done, correct, errors
        self.public = public
        self.recent: deque[float] = deque(maxlen=64)  # completion times, for the rate
        self.started = time.monotonic()
        self.done_at_start = done
        self.status = RUNNING
        self.paused = False  # the run is paused: items in flight finish, no new ones start
        self.reason = ""

    def add(self, result: dict[str, Any]) -> None:
        self.done += 1
        self.errors += result["status"] != OK
        self.correct += bool(result["correct"])
        self.recent.append(time.monotonic())

    def rate(self) -> float | None:
        """Items a second, over the last completions (or since the start for a few)."""
        now = time.monotonic()
        window = [t for t in self.recent if now - t <= 10.0]
        if len(window) >= 8:
            span = now - window[0]
            return len(window) / span if span > 0 else None
        span = now - self.started
        new = self.done - self.done_at_start
        return new / span if new and span > 0 else None

    def frame(self) -> dict[str, Any]:
        rate = self.rate()
        left = self.total - self.done
        status = PAUSED if self.paused and self.status == RUNNING else self.status
        out: dict[str, Any] = {
            "status": status, "done": self.done, "total": self.total,
            "errors": self.errors, "ips": round(rate, 2) if rate else None,
            "eta_s": (round(left / rate, 1) if rate and left and status == RUNNING
                      else (0.0 if not left else None)),
            "reason": self.reason}
        if self.public:
            graded = self.done - self.errors
            out["correct"] = self.correct
            out["accuracy"] = round(self.correct / graded, 4) if graded else None
            out["stderr"] = runcmd.round_figure(bn.stderr(self.correct, graded))
        return out


# -- the runner in the server ------------------------------------------------------------

class Bench:
    """Runs one benchmark run at a time inside the server (see module docstring)."""

    def __init__(self, teams: Teams) -> None:
        self.teams = teams
        self.engine = teams.engine
        self.settings = self.engine.show.bench
        self.task: asyncio.Task[None] | None = None
        self.gate = asyncio.Event()  # set while the run may take new items
        self.stopping = asyncio.Event()
        self.suites: dict[str, bn.Suite] = {}
        self.progress: dict[str, Progress] = {}

    async def start(self, actor: str, body: Any, *, key: str = "",
                    timeout: float | None = None) -> Event:
        """Start a run; its workers start once its event is durable. With ``key`` (the
        caller's Idempotency-Key), a retry gets the first answer and starts nothing more;
        with ``timeout``, a 503 once the log has not confirmed it in time (engine.run)."""
        suites = await asyncio.to_thread(available, self.settings)
        return await self.engine.run(
            actor, runcmd.start, body, suites, self.settings, key=key, timeout=timeout,
            then=lambda event: self._launch(event.data["run"], suites))

    async def control(self, actor: str, action: str, body: Any, *, key: str = "",
                      timeout: float | None = None) -> Event:
        """Pause, resume or cancel the run; as ``start``, once with a key."""
        return await self.engine.run(actor, runcmd.control, action, body, key=key,
                                     timeout=timeout,
                                     then=lambda event: self._control(action, event))

    def _control(self, action: str, event: Event) -> None:
        if action in ("pause", "resume"):
            if action == "pause":
                self.gate.clear()
            else:
                self.gate.set()
            for p in self.progress.values():
                p.paused = action == "pause"
            self._frames(event.data["run"], self.progress)
        else:
            self.stopping.set()
            self.gate.set()  # waiting workers wake up to see the stop
            if self.task is not None:
                self.task.cancel()

    async def apply(self, actor: str, run_id: int, body: Any, *, key: str = "",
                    timeout: float | None = None) -> list[Event]:
        """Enter a finished run's results, one score per team. With ``key``, each score
        carries ``key/team`` (a ``/`` no client's key has), so a retry enters only the
        scores the first try did not, and answers with all of them."""
        if key:
            run = self.engine.committed.benches.get(run_id)
            found = [self.engine.recorded(actor, f"{key}/{team}")
                     for team in (run["teams"] if run else ())]
            if found and all(e is not None for e in found):
                return [e for e in found if e is not None]
        _, bodies = runcmd.apply_bodies(self.engine.head, run_id, body, self.settings)
        end = time.monotonic() + timeout if timeout else None
        return [await self.engine.run(actor, commands.enter_score, "operator", b,
                                      key=f"{key}/{b['team']}" if key else "",
                                      timeout=_left(end))
                for b in bodies]

    async def import_results(self, actor: str, body: Any, *, key: str = "",
                             timeout: float | None = None) -> list[Event]:
        """Record a team's lm-evaluation-harness results and the score they enter; with
        ``key``, once (``key/imported`` and ``key/score``)."""
        if key:
            found = [self.engine.recorded(actor, f"{key}/{part}")
                     for part in ("imported", "score")]
            if found[0] is not None and found[1] is not None:
                return [found[0], found[1]]
        end = time.monotonic() + timeout if timeout else None
        event, score = lmeval.import_results(self.engine.head, body, self.settings)
        recorded = await self.engine.run(actor, lambda state: event,
                                         key=f"{key}/imported" if key else "",
                                         timeout=_left(end))
        return [recorded, await self.engine.run(actor, commands.enter_score, "operator", score,
                                                key=f"{key}/score" if key else "",
                                                timeout=_left(end))]

    async def recover(self) -> None:
        """A run the server was running when it stopped carries on where it stopped."""
        run_id = self.engine.head.bench_running
        if run_id is None:
            return
        run = self.engine.head.benches[run_id]
        try:
            suites = await asyncio.to_thread(available, self.settings)
        except bn.SuiteError as exc:
            await self.engine.run(SERVER_ACTOR, runcmd.control, "cancel",
                                  {"reason": f"cannot resume: {exc.message}"})
            return
        for header in run["suites"]:
            found = suites.get(header["id"])
            if found is None or found.digest != header["digest"]:
                why = "is gone" if found is None else "has changed since the run started"
                await self.engine.run(SERVER_ACTOR, runcmd.control, "cancel",
                                      {"reason": f"cannot resume: suite {header['id']!r} {why}"})
                return
        log.info("benchmark run %d: resuming after a restart", run_id)
        self._launch(run_id, suites, paused=run["phase"] == PAUSED)

    def _launch(self, run_id: int, suites: dict[str, bn.Suite], paused: bool = False) -> None:
        self.suites = suites
        self.stopping = asyncio.Event()
        self.gate = asyncio.Event()
        if not paused:
            self.gate.set()
        self.task = asyncio.create_task(self._run(run_id), name=f"bench-{run_id}")

    async def aclose(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _run(self, run_id: int) -> None:
        run = self.engine.head.benches[run_id]
        progress = self.progress = {}
        for team in run["teams"]:
            counts = run["progress"][team].values()
            progress[team] = Progress(sum(c["total"] for c in counts),
                                      sum(c["done"] for c in counts),
                                      sum(c["correct"] for c in counts),
                                      sum(c["errors"] for c in counts), run["public"])
            progress[team].paused = run["phase"] == PAUSED
            if team in run["failed"]:
                progress[team].status, progress[team].reason = "failed", run["failed"][team]
        self.engine.live.start_bench(run_id, {t: p.frame() for t, p in progress.items()})
        try:
            await asyncio.gather(*(self._guarded(run_id, team, progress[team])
                                   for team in run["teams"] if team not in run["failed"]))
        except asyncio.CancelledError:
            if not self.stopping.is_set():
                raise  # the server is stopping: the next start resumes the run
            for p in progress.values():
                if p.status == RUNNING:
                    p.status = "cancelled"
            self._frames(run_id, progress)
            return
        await self.engine.run(SERVER_ACTOR, runcmd.finished, run_id, self.settings.weights)
        self._frames(run_id, progress)

    def _frames(self, run_id: int, progress: dict[str, Progress]) -> None:
        for team, p in progress.items():
            self.engine.live.update_bench(run_id, team, p.frame())

    async def _guarded(self, run_id: int, team: str, progress: Progress) -> None:
        """One team's part of the run; a bug in it fails that team, never the others."""
        try:
            await self._team(run_id, team, progress)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except ShowcaseError as exc:
            await self._fail(run_id, team, progress, exc.message)
        except Exception as exc:
            log.exception("benchmark run %d: team %s failed", run_id, team)
            await self._fail(run_id, team, progress, f"internal error: {type(exc).__name__}")

    async def _team(self, run_id: int, team: str, progress: Progress) -> None:
        live = self.engine.live
        run = self.engine.head.benches[run_id]
        done = run["done"][team]
        queue = [(self.suites[h["id"]], item) for h in run["suites"]
                 for item in self.suites[h["id"]].items if (h["id"], item.id) not in done]
        if not queue:
            progress.status = "finished"
            live.update_bench(run_id, team, progress.frame())
            return
        down = self.teams.is_down(team)
        if down:
            await self._fail(run_id, team, progress, "its endpoint was down at the last "
                             "health check")
            return
        client = self.teams.client(team)
        model = await self.teams.model_of(team)
        items = iter(queue)
        failures = [0]  # items failed in a row with no success yet

        async def worker() -> None:
            while progress.status == RUNNING:
                await self.gate.wait()
                if self.stopping.is_set() or progress.status != RUNNING:
                    return
                nxt = next(items, None)
                if nxt is None:
                    return
                suite, item = nxt
                result = await ask(client, model, suite, item, self.settings.retries,
                                   self.stopping)
                if progress.status != RUNNING:
                    return
                failures[0] = failures[0] + 1 if result["status"] != OK else 0
                # The worker asks its next item while this one goes to disk: waiting for
                # the fsync would cost every item a few ms (benchmarks/bench_bench.py).
                recording = asyncio.ensure_future(self.engine.run(
                    SERVER_ACTOR, runcmd.item_scored, {"run": run_id, "team": team,
                                                "suite": suite.id, "item": item.id, **result}))
                appends.add(recording)
                recording.add_done_callback(appends.discard)
                progress.add(result)
                live.update_bench(run_id, team, progress.frame())
                if failures[0] >= FAIL_AFTER and progress.done - progress.errors == 0:
                    await self._fail(run_id, team, progress,
                                     f"{FAIL_AFTER} items failed in a row: {result['error']}")

        appends: set[asyncio.Future[Event]] = set()
        try:
            await asyncio.gather(*(worker() for _ in range(run["concurrency"])))
        finally:
            if appends:  # every scored item is on disk before the team counts as done
                await asyncio.gather(*appends, return_exceptions=True)
        if progress.status == RUNNING:
            progress.status = "finished"
            live.update_bench(run_id, team, progress.frame())

    async def _fail(self, run_id: int, team: str, progress: Progress, reason: str) -> None:
        if progress.status == "failed":
            return
        progress.status, progress.reason = "failed", reason
        await self.engine.run(SERVER_ACTOR, runcmd.team_failed, run_id, team, reason)
        self.engine.live.update_bench(run_id, team, progress.frame())
