"""The teams' endpoints as the server uses them: one client each, health checks, live demos.

A demo sends one prompt to every selected team at once, each in its own task with its own
connection pool, so a slow or dead team holds up nobody. While answers stream, text and
running figures go to the volatile channel (live.py); when a team's answer ends, one
durable ``demo_result`` records its text, its metrics and how it ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from showcase.core import commands
from showcase.core.egress import origin_of
from showcase.core.errors import Conflict, Forbidden, NotFound, ShowcaseError, Unavailable
from showcase.core.events import Event
from showcase.models.upstream import (
    ERROR,
    INTERRUPTED,
    SKIPPED,
    Exchange,
    TeamClient,
    UpstreamError,
)
from showcase.runtime.engine import Engine

log = logging.getLogger(__name__)

SERVER_ACTOR = "server"


class Teams:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.settings = engine.show.proxy
        self.egress = engine.show.egress()
        self.clients: dict[str, TeamClient] = {}
        self.models: dict[str, str] = {}  # learnt from GET /models when the show names none
        self.running: dict[str, Exchange] = {}  # the current demo's exchanges by team
        # The demos' tasks and old clients' closing run in this group while the server runs
        # (running_checks); it waits for them, or cancels them, when the server stops.
        self.tasks: asyncio.TaskGroup | None = None
        self._started: set[asyncio.Task[None]] = set()  # the group's, to cancel at the end
        self._retired: list[TeamClient] = []  # replaced while no group ran: closed at the end
        self.health_checks = 0
        self.failures: dict[str, int] = {}  # consecutive failed health checks per team

    # -- clients -----------------------------------------------------------------

    def client(self, team_id: str) -> TeamClient:
        """The team's client; a new one if the show file changed its endpoint."""
        ts = self.engine.committed.teams.get(team_id)
        if ts is None:
            raise NotFound(f"unknown team {team_id!r}",
                           f"teams: {', '.join(self.engine.committed.teams)}")
        if not ts.team.endpoint:
            raise Conflict(f"team {team_id!r} has no endpoint in the show file",
                           seq=self.engine.committed.seq)
        if not self.reachable(ts.team.endpoint):
            # Added under an older policy (a wider allowed_hosts, or none at all).
            raise Forbidden(f"the endpoint of team {team_id!r} is on a host this show "
                            "file does not allow", "add its host to [proxy] allowed_hosts "
                            "(docs/security.md) and restart")
        found = self.clients.get(team_id)
        if found is None or found.team != ts.team:
            if found is None:
                pass
            elif self.tasks is None:
                self._retired.append(found)
            else:
                self._background(found.aclose(), f"close-{team_id}")
            key = self.egress.key_of(team_id, ts.team.api_key_env, os.environ)
            found = self.clients[team_id] = TeamClient(ts.team, self.settings, key)
        return found

    def reachable(self, endpoint: str) -> bool:
        """Whether the egress policy lets the server call ``endpoint`` now."""
        return self.egress.allows_host(origin_of(endpoint)[1])

    async def model_of(self, team_id: str) -> str:
        """The model name to ask for: the show file's, else the first that /models lists."""
        client = self.client(team_id)
        if client.team.model:
            return client.team.model
        if team_id not in self.models:
            await self.check(team_id)
        return self.models.get(team_id, "")

    async def aclose(self) -> None:
        for client in [*self._retired, *self.clients.values()]:
            await client.aclose()
        self._retired.clear()

    @contextlib.asynccontextmanager
    async def running_checks(self) -> AsyncIterator[Teams]:
        """Health checks, demos and old clients' closing in one task group for as long as
        the server runs; when it stops, what is still running is cancelled and waited for
        (a demo cut short is recorded as interrupted at the next start: ``recover``)."""
        await self.recover()
        try:
            async with asyncio.TaskGroup() as tasks:
                self.tasks = tasks
                if self.settings.health_interval:
                    self._background(self.health_loop(), "health-checks")
                try:
                    yield self
                finally:
                    self.tasks = None
                    for task in list(self._started):
                        task.cancel()
        finally:
            await self.aclose()

    def _background(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``work`` in the teams' task group; a failure is logged, never raised into
        the group, where it would stop the server with it."""
        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("%s failed", name)

        assert self.tasks is not None, "the teams' task group runs only while the server does"
        task = self.tasks.create_task(guarded(), name=name)
        self._started.add(task)
        task.add_done_callback(self._started.discard)

    # -- health ------------------------------------------------------------------

    async def health_loop(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.check_all()
            except Exception:
                log.exception("health check failed")
            await asyncio.sleep(max(0.0, self.settings.health_interval
                                    - (time.monotonic() - started)))

    async def check_all(self) -> None:
        teams = [t for t, ts in self.engine.committed.teams.items()
                 if ts.team.endpoint and self.reachable(ts.team.endpoint)]
        results = await asyncio.gather(*(self.check(t) for t in teams))
        self.health_checks += 1
        for team, check in zip(teams, results, strict=True):
            recorded = self.engine.head.telemetry.get(team)
            before = recorded.health if recorded is not None else None
            failures = self.failures[team] = 0 if check["up"] else self.failures.get(team, 0) + 1
            if before is not None and before["up"] and failures == 1:
                continue  # one failed check is not "down" on air: the next one decides
            self.engine.live.update_health(team, check)
            if before is None or before["up"] != check["up"]:
                # Only changes are logged; the latency of every check goes out live.
                with contextlib.suppress(Conflict):  # another node recorded it first
                    await self.engine.run(SERVER_ACTOR, commands.team_health, team, check)

    async def check(self, team_id: str) -> dict[str, Any]:
        client = self.client(team_id)
        check = await client.check()
        if check.get("model") and not client.team.model:
            self.models[team_id] = check["model"]
        check.pop("model", None)
        return check

    def is_down(self, team_id: str) -> str:
        """Why a team is known to be down, or '' when it is up or not checked yet."""
        t = self.engine.head.telemetry.get(team_id)
        if t is None or t.health is None or t.health["up"]:
            return ""
        return t.health.get("error") or "its endpoint is down"

    # -- demos -------------------------------------------------------------------

    async def start_demo(self, actor: str, body: Any, *, key: str = "",
                         timeout: float | None = None) -> Event:
        """Start a demo; its teams are asked once its event is durable. With ``key`` (the
        caller's Idempotency-Key), a retry gets the first answer and starts nothing more;
        with ``timeout``, a 503 once the log has not confirmed it in time (engine.run)."""
        if self.tasks is None:  # before the server started or once it stops: record nothing
            raise Unavailable("the server is not running its teams' tasks",
                              "try again once it has (re)started")
        return await self.engine.run(actor, commands.start_demo, body, key=key,
                                     timeout=timeout, then=self._launch_demo)

    def _launch_demo(self, event: Event) -> None:
        data = event.data
        if self.tasks is None:
            # Durable only once the server was stopping: the next start records it as
            # interrupted (recover).
            log.warning("demo %d recorded as the server stopped: not started", data["demo"])
            return
        self.engine.live.start_demo(data["demo"], data["teams"])
        for team in data["teams"]:
            self._background(self._answer(data, team), f"demo-{team}")

    async def cancel_demo(self, actor: str, body: Any, *, key: str = "",
                          timeout: float | None = None) -> Event:
        """Cancel the running demo; as ``start_demo``, once with a key."""
        return await self.engine.run(actor, commands.cancel_demo, body, key=key,
                                     timeout=timeout, then=self._stop_demo)

    def _stop_demo(self, event: Event) -> None:
        reason = event.data["reason"] or f"cancelled by {event.actor}"
        for exchange in list(self.running.values()):
            exchange.stop(reason)

    async def _answer(self, demo: dict[str, Any], team: str) -> None:
        demo_id = demo["demo"]
        live = self.engine.live
        result: dict[str, Any]
        exchange: Exchange | None = None
        try:
            if self.is_down(team):
                # The reason stays in the operator's team_health; this event is public.
                result = {"status": SKIPPED, "metrics": None, "text": "",
                          "error": "skipped: its endpoint was down at the last health check"}
            else:
                live.update_team(demo_id, team, status="connecting")
                messages = ([{"role": "system", "content": demo["system"]}]
                            if demo["system"] else [])
                messages.append({"role": "user", "content": demo["prompt"]})
                body = {"model": await self.model_of(team), "messages": messages,
                        "stream": True, "stream_options": {"include_usage": True},
                        "max_tokens": demo["max_tokens"], "temperature": demo["temperature"]}
                async with self.client(team).exchange(body) as exchange:
                    self.running[team] = exchange
                    result = await self._stream(demo_id, team, exchange)
        except asyncio.CancelledError:
            raise  # the server is stopping; the next start records the demo as interrupted
        except ShowcaseError as exc:
            result = {"status": ERROR, "error": exc.message, "text": "",
                      "metrics": exchange.meter.result() if exchange else None}
        except Exception as exc:
            log.exception("demo %d: team %s failed", demo_id, team)
            result = {"status": ERROR, "error": f"internal error: {type(exc).__name__}",
                      "metrics": exchange.meter.result() if exchange else None, "text": ""}
        finally:
            if exchange is not None and self.running.get(team) is exchange:
                del self.running[team]
        live.update_team(demo_id, team, status=result["status"], error=result["error"],
                         **_live_metrics(result.get("metrics")))
        await self.engine.run(SERVER_ACTOR, commands.demo_result, demo_id, team, result)

    async def _stream(self, demo_id: int, team: str, exchange: Exchange) -> dict[str, Any]:
        live = self.engine.live
        meter = exchange.meter
        try:
            await exchange.start()
        except UpstreamError as exc:
            return {"status": exc.result, "error": exc.message, "metrics": meter.result(),
                    "text": ""}
        live.update_team(demo_id, team, status="waiting")
        async for _raw, new in exchange.events():
            if new is not None:
                live.update_team(demo_id, team, new[0], status="streaming",
                                 **meter.running(time.perf_counter()))
        await exchange.count()
        return {"status": meter.status, "error": meter.error, "metrics": meter.result(),
                "text": meter.answer(), "text_truncated": meter.text_truncated}

    async def recover(self) -> None:
        """A demo the server was running when it stopped ends as interrupted."""
        running = self.engine.head.demo_running
        if running is None:
            return
        demo = self.engine.head.demos[running]
        for team in demo["teams"]:
            if team not in demo["results"]:
                await self.engine.run(
                    SERVER_ACTOR, commands.demo_result, running, team,
                    {"status": INTERRUPTED, "error": "the server stopped during the demo",
                     "metrics": None, "text": ""})


def _live_metrics(metrics: dict[str, Any] | None) -> dict[str, Any]:
    if not metrics:
        return {}
    return {"ttft_ms": metrics["ttft_ms"], "tokens": metrics["output_tokens"],
            "decode_tps": metrics["decode_tps"], "elapsed_ms": metrics["e2e_ms"]}

