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
from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, UnsetType

from showcase.bench import suites as bn
from showcase.core import commands
from showcase.core import events as ev
from showcase.core.bodies import ExpectSeq, Reason
from showcase.core.checks import check_expected_seq, known_round, known_team
from showcase.core.decode import Body, decode_body, given
from showcase.core.errors import InvalidRequest, ShowcaseError, StateConflict, Unknown
from showcase.core.events import Event
from showcase.core.showfile import BenchSettings
from showcase.core.state import OPEN, State
from showcase.models.teams import Teams
from showcase.models.upstream import ERROR, OK, Exchange, TeamClient, UpstreamError

log = logging.getLogger(__name__)

SERVER_ACTOR = "server:bench"
RUNNING, PAUSED = "running", "paused"
MAX_CONCURRENCY = 64
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


# -- commands (pure: checked against the state, no I/O) ----------------------------------

class StartBody(Body):
    """Start a benchmark run."""

    suites: Annotated[list[str], Meta(description="suite ids; by default every suite")
                      ] | UnsetType = UNSET
    teams: Annotated[list[str], Meta(description="by default every active team with an "
                                                 "endpoint")] | UnsetType = UNSET
    concurrency: Annotated[int, Meta(ge=1, le=MAX_CONCURRENCY, description="items in flight "
                                     "per team; by default the show file's")] | UnsetType = UNSET
    round: Annotated[str | None, Meta(description="the round it feeds (sealed); null: an "
                                                  "exhibition run; by default the open round")
                     ] | UnsetType = UNSET
    public: Annotated[bool, Meta(description="accuracy shown live; only for a run that "
                                             "feeds no round")] | UnsetType = UNSET
    expect_seq: ExpectSeq | UnsetType = UNSET


def start(state: State, body: Any, suites: dict[str, bn.Suite], settings: BenchSettings
          ) -> tuple[str, dict[str, Any]]:
    body = decode_body(body, StartBody)
    check_expected_seq(state, body.expect_seq)
    if state.bench_running is not None:
        run = state.benches[state.bench_running]
        raise StateConflict(f"benchmark run {run['id']} is {run['phase']}",
                            "wait for it to finish, or cancel it: POST /api/bench/cancel",
                            seq=state.seq, run=run["id"])
    chosen = given(body.suites, list(suites))
    if not chosen:
        raise InvalidRequest("field 'suites' is empty", "leave it out to run every suite")
    for sid in chosen:
        if sid not in suites:
            raise Unknown(f"unknown suite {sid!r}", f"suites: {', '.join(suites)}")
    if len(set(chosen)) != len(chosen):
        raise InvalidRequest(f"suite {next(s for s in chosen if chosen.count(s) > 1)!r} is "
                             "listed twice in 'suites'")
    teams = commands.chosen_teams(state, body.teams, "run against")
    concurrency = given(body.concurrency, settings.concurrency)
    if body.round is not UNSET:
        round_id = body.round
        if round_id is not None:
            known_round(state, round_id)
    else:
        current = state.rounds.get(state.current_round)
        round_id = state.current_round if current and current.phase == OPEN else None
    public = given(body.public, round_id is None)
    if public and round_id is not None:
        raise InvalidRequest(f"a run that feeds round {round_id!r} cannot be public: its "
                             "results are sealed until the round is revealed",
                             "send \"round\": null for an exhibition run with public accuracy")
    return ev.BENCH_STARTED, {
        "run": state.seq + 1, "suites": [suites[s].header() for s in chosen],
        "teams": list(teams), "concurrency": concurrency, "round": round_id,
        "public": public}


class ControlBody(Body):
    """Pause, resume or cancel the run in progress."""

    reason: Reason = ""
    expect_seq: ExpectSeq | UnsetType = UNSET


def control(state: State, action: str, body: Any) -> tuple[str, dict[str, Any]]:
    """Pause, resume or cancel the run in progress."""
    body = decode_body(body, ControlBody)
    check_expected_seq(state, body.expect_seq)
    if state.bench_running is None:
        raise StateConflict("no benchmark run is in progress", "start one: POST /api/bench",
                            seq=state.seq)
    run = state.benches[state.bench_running]
    if action == "pause" and run["phase"] == PAUSED:
        raise StateConflict(f"benchmark run {run['id']} is paused already", seq=state.seq)
    if action == "resume" and run["phase"] == RUNNING:
        raise StateConflict(f"benchmark run {run['id']} is running already", seq=state.seq)
    reason = body.reason.strip()[:200]
    kind = {"pause": ev.BENCH_PAUSED, "resume": ev.BENCH_RESUMED,
            "cancel": ev.BENCH_CANCELLED}[action]
    return kind, {"run": run["id"], "reason": reason}


def item_scored(state: State, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    run = state.benches[data["run"]]
    if run["phase"] not in (RUNNING, PAUSED):
        raise StateConflict(f"benchmark run {run['id']} is {run['phase']}")
    return ev.BENCH_ITEM, {**data, "public": run["public"]}


def team_failed(state: State, run_id: int, team: str, reason: str
                ) -> tuple[str, dict[str, Any]]:
    if run_id not in state.benches:
        raise KeyError(f"benchmark run {run_id}")
    return ev.BENCH_TEAM_FAILED, {"run": run_id, "team": team, "reason": reason}


def finished(state: State, run_id: int, weights: dict[str, float]
             ) -> tuple[str, dict[str, Any]]:
    run = state.benches[run_id]
    return ev.BENCH_FINISHED, {"run": run_id, "public": run["public"],
                               "results": results(run, weights)}


def results(run: dict[str, Any], weights: dict[str, float]) -> dict[str, Any]:
    """Each team's result per suite, and its benchmark score (0..100)."""
    out: dict[str, Any] = {}
    headers = {s["id"]: s for s in run["suites"]}
    for team, suites in run["progress"].items():
        per_suite = {}
        for sid, c in suites.items():
            graded = c["done"] - c["errors"]
            h = headers[sid]
            per_suite[sid] = {
                "correct": c["correct"], "total": c["total"], "done": c["done"],
                "errors": c["errors"], "category": h["category"], "baseline": h["baseline"],
                "accuracy": round(c["correct"] / graded, 4) if graded else None,
                "stderr": _round(bn.stderr(c["correct"], graded)),
            }
        score = bn.combine({s: dict(r) for s, r in per_suite.items()}, weights)
        out[team] = {"suites": per_suite, "score": score,
                     "complete": all(r["done"] == r["total"] and not r["errors"]
                                     for r in per_suite.values()),
                     "failed": run["failed"].get(team, "")}
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


class ApplyBody(Body):
    """Enter a finished run's results as values of the benchmark criterion."""

    round: Annotated[str, Meta(description="by default the round the run fed")
                     ] | UnsetType = UNSET
    count_errors_as_wrong: Annotated[bool, Meta(description="enter the results although some "
                                                "items failed or went unanswered")] = False
    expect_seq: ExpectSeq | UnsetType = UNSET


def apply_bodies(state: State, run_id: int, body: Any, settings: BenchSettings
                 ) -> tuple[str, list[dict[str, Any]]]:
    """The scores a finished run enters: one value of the benchmark criterion per team.

    Refused while any team has errors or unanswered items, unless the operator says they
    count as wrong: a failed request is never silently a wrong answer.
    """
    body = decode_body(body, ApplyBody)
    check_expected_seq(state, body.expect_seq)
    run = state.benches.get(run_id)
    if run is None:
        raise Unknown(f"unknown benchmark run {run_id}",
                      f"runs: {', '.join(map(str, state.benches)) or 'none yet'}")
    if run["phase"] != "finished":
        raise StateConflict(f"benchmark run {run_id} is {run['phase']}; only a finished run's "
                            "results can be entered", seq=state.seq)
    if run["round"] is None and body.round is UNSET:
        raise StateConflict(f"benchmark run {run_id} feeds no round: it was an exhibition run",
                            "send 'round' to enter its results into a round all the same",
                            seq=state.seq)
    round_id = known_round(state, given(body.round, "") or run["round"])
    show = state.require_show()
    crit = show.criterion(settings.criterion)
    if crit is None:
        raise StateConflict(f"this show has no criterion {settings.criterion!r} for benchmark "
                            "results", "set [bench] criterion in the show file", seq=state.seq)
    res = results(run, settings.weights)
    lax = body.count_errors_as_wrong
    short = [f"{team} ({res[team]['failed'] or _missing(res[team])})"
             for team in run["teams"] if not res[team]["complete"]]
    if short and not lax:
        raise StateConflict(f"not every team answered every item: {', '.join(short)}",
                            "run them again, or send \"count_errors_as_wrong\": true to count "
                            "errors and unanswered items as wrong", seq=state.seq)
    bodies = []
    for team in run["teams"]:
        value = res[team]["score"]["value"]
        lo, hi = crit.scale
        bodies.append({"criterion": crit.id, "team": team, "round": round_id,
                       "value": min(hi, max(lo, value)),
                       "reason": f"benchmark run {run_id}"
                                 + (" (errors counted as wrong)" if lax and short else "")})
    for b in bodies:  # every score is checked before the first is entered
        commands.enter_score(state, "operator", b)
    return round_id, bodies


def _missing(result: dict[str, Any]) -> str:
    errors = sum(r["errors"] for r in result["suites"].values())
    left = sum(r["total"] - r["done"] for r in result["suites"].values())
    return ", ".join(p for p in (f"{errors} errors" if errors else "",
                                 f"{left} unanswered" if left else "") if p)


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
        exchange: Exchange = client.exchange(body)
        try:
            await exchange.start()
            async for _ in exchange.events():
                pass
            status, error = exchange.meter.status, exchange.meter.error
        except UpstreamError as exc:
            status, error = exc.result, exc.message
        finally:
            await exchange.close()
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
            out["stderr"] = _round(bn.stderr(self.correct, graded))
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

    async def start(self, actor: str, body: Any) -> Event:
        suites = await asyncio.to_thread(available, self.settings)
        event = await self.engine.run(actor, start, body, suites, self.settings)
        self._launch(event.data["run"], suites)
        return event

    async def control(self, actor: str, action: str, body: Any) -> Event:
        event = await self.engine.run(actor, control, action, body)
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
        return event

    async def apply(self, actor: str, run_id: int, body: Any) -> list[Event]:
        _, bodies = apply_bodies(self.engine.head, run_id, body, self.settings)
        return [await self.engine.run(actor, commands.enter_score, "operator", b)
                for b in bodies]

    async def import_results(self, actor: str, body: Any) -> list[Event]:
        event, score = import_results(self.engine.head, body, self.settings)
        recorded = await self.engine.run(actor, lambda state: event)
        return [recorded, await self.engine.run(actor, commands.enter_score, "operator", score)]

    async def recover(self) -> None:
        """A run the server was running when it stopped carries on where it stopped."""
        run_id = self.engine.head.bench_running
        if run_id is None:
            return
        run = self.engine.head.benches[run_id]
        try:
            suites = await asyncio.to_thread(available, self.settings)
        except bn.SuiteError as exc:
            await self.engine.run(SERVER_ACTOR, control, "cancel",
                                  {"reason": f"cannot resume: {exc.message}"})
            return
        for header in run["suites"]:
            found = suites.get(header["id"])
            if found is None or found.digest != header["digest"]:
                why = "is gone" if found is None else "has changed since the run started"
                await self.engine.run(SERVER_ACTOR, control, "cancel",
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
        await self.engine.run(SERVER_ACTOR, finished, run_id, self.settings.weights)
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
                    SERVER_ACTOR, item_scored, {"run": run_id, "team": team,
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
        await self.engine.run(SERVER_ACTOR, team_failed, run_id, team, reason)
        self.engine.live.update_bench(run_id, team, progress.frame())



# -- results computed elsewhere: lm-evaluation-harness --------------------------------------

class TaskSpec(Body):
    """How one task of the results counts."""

    category: Literal["comprehension", "problem_solving", "writing"]
    baseline: Annotated[float, Meta(ge=0, lt=1, description="the score of guessing (0.25 for "
                                                            "four choices)")]
    language: str = ""
    metric: Annotated[str, Meta(description="the results' key; by default the first of "
                                            "acc,none, acc, exact_match,...")] = ""


class ImportBody(Body):
    """A team's results computed offline by lm-evaluation-harness."""

    team: str
    results: Annotated[dict[str, Any], Meta(description="the results JSON that "
                                                        "lm-evaluation-harness wrote")]
    tasks: Annotated[dict[str, TaskSpec], Meta(
        description='each task to count, e.g. {"kmmlu": {"category": "comprehension", '
                    '"baseline": 0.25, "language": "ko"}}')]
    round: str = ""
    reason: Reason = ""
    expect_seq: ExpectSeq | UnsetType = UNSET


METRICS = ("acc,none", "acc", "exact_match,strict-match", "exact_match,none", "exact_match")


def import_results(state: State, body: Any, settings: BenchSettings
                   ) -> tuple[tuple[str, dict[str, Any]], dict[str, Any]]:
    """A team's results computed offline by lm-evaluation-harness (its results JSON), as
    suites of this show: the bench_imported event, and the score it enters."""
    body = decode_body(body, ImportBody)
    check_expected_seq(state, body.expect_seq)
    team = known_team(state, body.team)
    found = body.results.get("results")
    if not isinstance(found, dict) or not found:
        raise InvalidRequest("'results' must be the JSON that lm-evaluation-harness wrote, with "
                             "its \"results\" object of tasks")
    samples = body.results.get("n-samples") or {}
    if not body.tasks:
        raise InvalidRequest("'tasks' is empty: name each task to count, with its category and "
                             "baseline", 'e.g. {"kmmlu": {"category": "comprehension", '
                             '"baseline": 0.25, "language": "ko"}}')
    suites: dict[str, dict[str, Any]] = {}
    for task, spec in body.tasks.items():
        where = f"tasks.{task}"
        scores = found.get(task)
        if not isinstance(scores, dict):
            raise InvalidRequest(f"task {task!r} is not in the results",
                                 f"tasks there: {', '.join(sorted(found))[:300]}")
        metric = spec.metric or next((m for m in METRICS if m in scores), None)
        value = scores.get(metric) if metric else None
        if (not isinstance(value, int | float) or isinstance(value, bool)
                or not 0 <= value <= 1):
            raise InvalidRequest(f"task {task!r} has no accuracy from 0 to 1"
                                 + (f" under {metric!r}" if metric else ""),
                                 f"name the metric in {where}.metric; it has "
                                 f"{', '.join(k for k in scores if k != 'alias')[:300]}")
        assert isinstance(metric, str)
        n = samples.get(task) if isinstance(samples, dict) else None
        n = n if isinstance(n, dict) else {}
        stderr_key = metric.replace(",", "_stderr,", 1) if "," in metric else f"{metric}_stderr"
        suites[task] = {"accuracy": float(value), "category": spec.category,
                        "baseline": float(spec.baseline), "language": spec.language,
                        "metric": metric, "items": _count(n),
                        "stderr": scores.get(stderr_key)}
    combined = bn.combine({s: {**r, "correct": r["accuracy"], "total": 1}
                           for s, r in suites.items()}, settings.weights)
    round_id = known_round(state, body.round)
    config = body.results.get("config") or {}
    source = str(config.get("model_args") or config.get("model") or "")[:200]
    event = (ev.BENCH_IMPORTED, {"team": team, "round": round_id, "suites": suites,
                                 "score": combined, "source": source,
                                 "reason": body.reason[:200]})
    crit = state.require_show().criterion(settings.criterion)
    if crit is None:
        raise StateConflict(f"this show has no criterion {settings.criterion!r} for benchmark "
                            "results", "set [bench] criterion in the show file", seq=state.seq)
    score = {"criterion": crit.id, "team": team, "round": round_id,
             "value": min(crit.scale[1], max(crit.scale[0], combined["value"])),
             "reason": "imported lm-evaluation-harness results"}
    commands.enter_score(state, "operator", score)  # checked before anything is written
    return event, score


def _count(samples: dict[str, Any]) -> int:
    value = samples.get("effective") or samples.get("original") or 0
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
