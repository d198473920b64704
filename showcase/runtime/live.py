"""The volatile channel: live telemetry, coalesced into ``tick`` frames.

Streaming text, running latency and health change many times a second; none of it is
logged as it changes (what must survive is logged when each answer ends). Changes are
merged here and published at most ``frame_rate`` times a second, one serialisation per
frame for every connection, so the cost grows with viewers x frame rate, not with
viewers x tokens. A frame carries only what changed since the previous one; a
connection that joins gets ``full_frame()`` after its snapshot.

Text is sent as ``{"at": offset, "text": new}``: a client appends when ``at`` equals the
length it holds, and otherwise knows it missed a frame (GET /api/demo has it all).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson

from showcase.runtime.fanout import Hub

MAX_LIVE_TEXT = 64 * 1024  # characters of each team's answer kept for late joiners


class Live:
    def __init__(self, hub: Hub, frame_rate: float) -> None:
        self.hub = hub
        self.interval = 1.0 / frame_rate
        self.health: dict[str, dict[str, Any]] = {}
        self.demo: dict[str, Any] | None = None  # {"id", "teams": {team: {...}}}
        self._changed_health: set[str] = set()
        self._telemetry: dict[str, dict[str, Any]] = {}  # rolling figures changed since last frame
        self._changed_teams: dict[str, int] = {}  # team -> text offset of the first unsent char
        self._demo_reset = False
        self.bench: dict[str, Any] | None = None  # {"id", "teams": {team: progress}}
        self._changed_bench: set[str] = set()
        self._bench_reset = False
        self._wake = asyncio.Event()
        self.frames = 0

    # -- updates (cheap; nothing is sent here) -----------------------------------

    def start_demo(self, demo_id: int, teams: list[str]) -> None:
        self.demo = {"id": demo_id, "teams": {
            team: {"status": "waiting", "text": "", "chars": 0, "ttft_ms": None, "tokens": 0,
                   "decode_tps": None, "elapsed_ms": None, "error": ""}
            for team in teams}}
        self._changed_teams = {team: 0 for team in teams}
        self._demo_reset = True
        self._wake.set()

    def update_team(self, demo_id: int, team: str, text: str = "",
                    **fields: Any) -> None:
        if self.demo is None or self.demo["id"] != demo_id or team not in self.demo["teams"]:
            return
        entry = self.demo["teams"][team]
        if text:
            self._changed_teams.setdefault(team, entry["chars"])
            entry["chars"] += len(text)
            if len(entry["text"]) < MAX_LIVE_TEXT:
                entry["text"] += text[:MAX_LIVE_TEXT - len(entry["text"])]
        else:
            self._changed_teams.setdefault(team, entry["chars"])
        entry.update(fields)
        self._wake.set()

    def update_health(self, team: str, check: dict[str, Any]) -> None:
        public = {"up": check["up"], "latency_ms": check["latency_ms"]}
        if self.health.get(team) == public:
            return
        self.health[team] = public
        self._changed_health.add(team)
        self._wake.set()

    def update_telemetry(self, team: str, summary: dict[str, Any]) -> None:
        """A team's rolling figures changed (a logged answer): every screen gets them in the
        next frame, instead of every screen asking for the state again."""
        self._telemetry[team] = summary
        self._wake.set()

    def start_bench(self, run_id: int, progress: dict[str, dict[str, Any]]) -> None:
        """A benchmark run starts (or resumes after a restart): its progress per team."""
        self.bench = {"id": run_id, "teams": progress}
        self._changed_bench = set(progress)
        self._bench_reset = True
        self._wake.set()

    def update_bench(self, run_id: int, team: str, progress: dict[str, Any]) -> None:
        """A team's progress in a run: done, total, rate and ETA (public-safe already)."""
        if self.bench is None or self.bench["id"] != run_id:
            return
        self.bench["teams"][team] = progress
        self._changed_bench.add(team)
        self._wake.set()

    # -- frames ------------------------------------------------------------------

    def current(self) -> dict[str, Any]:
        """What is live now, for GET /api/state."""
        return {"health": self.health, "demo": self.demo, "bench": self.bench}

    def full_frame(self) -> bytes | None:
        """Everything live now, for a connection that has just joined."""
        if self.demo is None and not self.health and self.bench is None:
            return None
        data: dict[str, Any] = {"full": True, "health": self.health}
        if self.bench is not None:
            data["bench"] = self.bench
        if self.demo is not None:
            data["demo"] = {"id": self.demo["id"], "teams": {
                team: {**_fields(entry), "at": 0, "text": entry["text"]}
                for team, entry in self.demo["teams"].items()}}
        return orjson.dumps({"seq": None, "type": "tick", "data": data})

    def _frame(self) -> bytes | None:
        data: dict[str, Any] = {}
        if self._telemetry:
            data["telemetry"], self._telemetry = self._telemetry, {}
        if self._changed_health:
            data["health"] = {t: self.health[t] for t in self._changed_health}
            self._changed_health = set()
        if self.demo is not None and (self._changed_teams or self._demo_reset):
            teams = {}
            for team, at in self._changed_teams.items():
                entry = self.demo["teams"][team]
                held = len(entry["text"])
                teams[team] = {**_fields(entry), "at": at,
                               "text": entry["text"][at:] if at < held else ""}
            data["demo"] = {"id": self.demo["id"], "teams": teams}
            if self._demo_reset:
                data["demo"]["start"] = True
            self._changed_teams = {}
            self._demo_reset = False
        if self.bench is not None and (self._changed_bench or self._bench_reset):
            data["bench"] = {"id": self.bench["id"], "teams": {
                t: self.bench["teams"][t] for t in self._changed_bench}}
            if self._bench_reset:
                data["bench"]["start"] = True
            self._changed_bench = set()
            self._bench_reset = False
        if not data:
            return None
        return orjson.dumps({"seq": None, "type": "tick", "data": data})

    def flush(self) -> None:
        frame = self._frame()
        if frame is not None:
            self.frames += 1
            self.hub.publish(None, lambda view: frame)

    async def run(self) -> None:
        """Publish a frame as soon as something changes, then at most once an interval,
        on a fixed cadence while changes keep coming: the time a frame takes to go out
        to every viewer does not stretch the interval (it did: 10 frames a second were
        8.4 with 1,000 viewers during a demo; docs/performance.md, issue 8)."""
        loop = asyncio.get_running_loop()
        due = 0.0  # when the next frame may go out
        while True:
            await self._wake.wait()
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._wake.clear()
            started = loop.time()
            self.flush()
            # on time: the next slot of the cadence; late by a whole interval or idle:
            # a new cadence from now, never two frames in one interval
            due = due + self.interval if due + self.interval > started else (
                started + self.interval)

    @contextlib.asynccontextmanager
    async def running(self) -> Any:
        task = asyncio.create_task(self.run(), name="live-frames")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _fields(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "text"}
