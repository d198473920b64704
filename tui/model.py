"""What the console knows about the show: the operator state, live telemetry, the event log.

Pure: no I/O, no Textual. The connection (``client.py``) feeds it messages and answers; the
screens read it. The state is the server's operator view: each event message carries the
change it makes (a JSON Patch, protocol 6.1), applied here without knowing what the event
means, so the console never folds events nor re-reads the state after each one. Every
change bumps a version number, so a screen repaints only when something it shows has
changed, and at most at the console's own frame rate, however many messages arrive (tick
frames are merged here, not queued).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

#: Events kept for the log screen: plenty for a show's last hour, bounded for a long day.
EVENT_BUFFER = 2000

def apply_patch(doc: Any, ops: list[Json]) -> Any:
    """``doc`` with an event's patch applied (RFC 6902 ``add``, ``replace``, ``remove`` on
    JSON Pointer paths), in place where it can be; returns the new document. Raises
    ValueError for an operation that does not fit the document."""
    for op in ops:
        path = str(op.get("path", ""))
        if path == "":
            doc = op.get("value")
            continue
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
        target = doc
        try:
            for part in parents:
                target = target[int(part)] if isinstance(target, list) else target[part]
            if isinstance(target, list):
                index = len(target) if last == "-" else int(last)
                if op["op"] == "remove":
                    del target[index]
                elif op["op"] == "add":
                    target.insert(index, op["value"])
                else:
                    target[index] = op["value"]
            elif op["op"] == "remove":
                del target[last]
            else:
                target[last] = op["value"]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ValueError(f"patch operation {op!r} does not fit the state") from exc
    return doc


LANE_FIELDS = ("status", "chars", "ttft_ms", "tokens", "decode_tps", "elapsed_ms", "error")


@dataclass
class Lane:
    """One team's answer in the live demo, as the tick frames built it."""

    status: str = "waiting"
    text: str = ""
    chars: int = 0
    ttft_ms: float | None = None
    tokens: int = 0
    decode_tps: float | None = None
    elapsed_ms: float | None = None
    error: str = ""

    def merge(self, data: Json) -> None:
        for name in LANE_FIELDS:
            if name in data:
                setattr(self, name, data[name])


@dataclass
class Effects:
    """What a message asks the connection to do next."""

    state: bool = False  # re-read /api/state: a patch did not fit (something was missed)
    script: bool = False  # re-read /api/reveal/script
    demo: bool = False  # re-read /api/demo: a tick frame was missed
    bench: bool = False  # re-read /api/bench: a run's first frame was missed
    reload_log: bool = False  # the show was replaced: read the log again


@dataclass
class Versions:
    """Counters that screens compare with what they last drew."""

    state: int = 0
    live: int = 0
    events: int = 0
    connection: int = 0

    def total(self) -> int:
        return self.state + self.live + self.events + self.connection


@dataclass
class ShowModel:
    state: Json | None = None
    state_seq: int = -1
    last_seq: int | None = None  # the last seq received on the stream
    health: dict[str, Json] = field(default_factory=dict)
    telemetry: dict[str, Json] = field(default_factory=dict)
    demo_id: int | None = None
    lanes: dict[str, Lane] = field(default_factory=dict)
    script: Json | None = None
    bench_live_id: int | None = None
    bench_live: dict[str, Json] = field(default_factory=dict)  # team -> its latest tick entry
    events: dict[int, Json] = field(default_factory=dict)
    connection: str = "connecting"  # connecting, connected, reconnecting, refused
    connection_detail: str = ""
    attempts: int = 0
    versions: Versions = field(default_factory=Versions)
    messages: int = 0  # stream messages received, ticks included
    ticks: int = 0

    # -- feeding ---------------------------------------------------------------

    def apply_message(self, message: Json) -> Effects:
        """One stream message (protocol 6.1), in order. An event's ``patch`` is applied to
        the state as it comes: the server folded the event, the console does not."""
        self.messages += 1
        kind = message.get("type")
        seq = message.get("seq")
        if seq is None:
            if kind == "tick":
                self.ticks += 1
                return self.apply_tick(message.get("data") or {})
            return Effects()  # keepalive, or a volatile type this console does not know
        effects = Effects()
        if kind == "snapshot":
            data = message.get("data") or {}
            if self.last_seq is not None and seq < self.last_seq:
                # A fresh data directory behind the same URL: what we held is another show.
                self.events.clear()
                self.script = None
                effects.reload_log = True
            self.state_seq = -1  # the snapshot wins over any state read before it
            self._set_state(data.get("state"), seq)
            effects.script = self._wants_script()
        elif kind != "sealed":
            self.add_events([message])
            effects.state = not self._apply_patch(seq, message.get("patch"))
            if kind in ("round_frozen", "round_unfrozen", "show_configured"):
                effects.script = True
                self.script = None
        if kind == "snapshot":
            self.last_seq = seq  # a snapshot says where the stream is, even behind us
        else:
            self.last_seq = seq if self.last_seq is None else max(self.last_seq, seq)
        self.versions.connection += 1
        return effects

    def _apply_patch(self, seq: int, patch: list[Json] | None) -> bool:
        """Bring the state to ``seq`` with the event's patch; False when it cannot (the
        state is missing, or something between was missed): then read it whole."""
        if self.state is not None and seq <= self.state_seq:
            return True  # the state was read after this event: it has it already
        if self.state is None or seq != self.state_seq + 1 or patch is None:
            return False
        try:
            self.state = apply_patch(self.state, patch)
        except ValueError:
            return False
        self.state_seq = seq
        self.telemetry = dict(self.state.get("telemetry") or {})
        self.versions.state += 1
        return True

    def apply_state(self, answer: Json) -> bool:
        """A ``GET /api/state`` answer; kept only if it is newer than what we hold."""
        seq = int(answer.get("seq", -1))
        live = answer.get("live") or {}
        if live.get("health"):
            self.health.update(live["health"])
            self.versions.live += 1
        if seq < self.state_seq:
            return False
        self._set_state(answer.get("state"), seq)
        return True

    def _set_state(self, state: Json | None, seq: int) -> None:
        if state is None:
            return
        self.state = state
        self.state_seq = seq
        self.telemetry = dict(state.get("telemetry") or {})
        self.versions.state += 1

    def apply_tick(self, data: Json) -> Effects:
        """Merge a tick frame (protocol 6.8). Asks for ``/api/demo`` when a frame was missed."""
        effects = Effects()
        if data.get("full"):
            self.health = dict(data.get("health") or {})
        elif data.get("health"):
            self.health.update(data["health"])
        for team, figures in (data.get("telemetry") or {}).items():
            self.telemetry[team] = figures
        demo = data.get("demo")
        if demo:
            if data.get("full") or demo.get("start") or demo.get("id") != self.demo_id:
                self.demo_id = demo.get("id")
                self.lanes = {}
            for team, piece in (demo.get("teams") or {}).items():
                lane = self.lanes.setdefault(team, Lane())
                lane.merge(piece)
                text = piece.get("text", "")
                at = piece.get("at", 0)
                if data.get("full") or (at == 0 and not lane.text):
                    lane.text = text
                elif at == len(lane.text):
                    lane.text += text
                elif at + len(text) <= len(lane.text):
                    pass  # a frame we have already (a resync raced it)
                else:
                    effects.demo = True
        bench = data.get("bench")
        if bench:
            if data.get("full") or bench.get("start") or bench.get("id") != self.bench_live_id:
                if not (data.get("full") or bench.get("start")):
                    effects.bench = True  # a new run whose first frame we missed
                self.bench_live_id = bench.get("id")
                self.bench_live = {}
            for team, entry in (bench.get("teams") or {}).items():
                self.bench_live[team] = dict(entry)  # each entry comes whole (17.4)
        self.versions.live += 1
        return effects

    def apply_bench(self, answer: Json) -> None:
        """A ``GET /api/bench`` answer: the live progress of the latest run (the run itself
        is in the state, which each event's patch keeps up to date)."""
        live = answer.get("live")
        if live:
            self.bench_live_id = live.get("id")
            self.bench_live = {t: dict(e) for t, e in (live.get("teams") or {}).items()}
        self.versions.live += 1

    def apply_demo(self, answer: Json) -> None:
        """A ``GET /api/demo`` answer, to catch up on text after a missed frame."""
        live = answer.get("live")
        demo = answer.get("demo") or {}
        if not live:
            return
        if live.get("id") != self.demo_id:
            self.demo_id = live.get("id")
            self.lanes = {}
        results = demo.get("results") or {} if demo.get("id") == self.demo_id else {}
        for team, data in (live.get("teams") or {}).items():
            lane = self.lanes.setdefault(team, Lane())
            lane.merge(data)
            text = data.get("text") or (results.get(team) or {}).get("text") or ""
            if len(text) >= len(lane.text):
                lane.text = text
        self.versions.live += 1

    def apply_script(self, answer: Json | None) -> None:
        self.script = answer
        self.versions.state += 1

    def add_events(self, events: Iterable[Json]) -> None:
        for event in events:
            seq = event.get("seq")
            if isinstance(seq, int):
                self.events[seq] = event
        if len(self.events) > EVENT_BUFFER:
            for seq in sorted(self.events)[: len(self.events) - EVENT_BUFFER]:
                del self.events[seq]
        self.versions.events += 1

    def set_connection(self, status: str, detail: str = "") -> None:
        self.connection = status
        self.connection_detail = detail
        self.versions.connection += 1

    def _wants_script(self) -> bool:
        reveal = self.reveal()
        return reveal is not None and (self.script is None
                                       or self.script.get("round") != self.round_id())

    def wants_script(self) -> bool:
        return self._wants_script()

    # -- reading ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.connection == "connected"

    @property
    def seq(self) -> int | None:
        known = [s for s in (self.last_seq, self.state_seq) if s is not None and s >= 0]
        return max(known) if known else None

    def title(self) -> str:
        show = ((self.state or {}).get("show") or {}).get("show") or {}
        return str(show.get("title_en") or "showcase")

    def precision(self) -> int:
        show = ((self.state or {}).get("show") or {}).get("show") or {}
        return int(show.get("precision", 2))

    def teams(self) -> list[Json]:
        return list((self.state or {}).get("teams") or [])

    def team(self, team_id: str) -> Json:
        for team in self.teams():
            if team["id"] == team_id:
                return team
        return {"id": team_id, "name_en": team_id, "name_ko": team_id, "status": "?"}

    def team_name(self, team_id: str) -> str:
        return str(self.team(team_id).get("name_en") or team_id)

    def criteria(self) -> list[Json]:
        return list((((self.state or {}).get("show") or {}).get("criteria")) or [])

    def judges(self) -> list[Json]:
        return list((((self.state or {}).get("show") or {}).get("judges")) or [])

    def round_id(self) -> str:
        return str((self.state or {}).get("current_round") or "")

    def rounds(self) -> list[Json]:
        return list((self.state or {}).get("rounds") or [])

    def round(self, round_id: str | None = None) -> Json | None:
        wanted = round_id or self.round_id()
        for rnd in (self.state or {}).get("rounds") or []:
            if rnd["id"] == wanted:
                return dict(rnd)
        return None

    def reveal(self) -> Json | None:
        rnd = self.round()
        return None if rnd is None else rnd.get("reveal")

    def steps(self) -> list[Json]:
        if self.script is None or self.script.get("round") != self.round_id():
            return []
        return list(self.script.get("steps") or [])

    def step_text(self, n: int) -> Json | None:
        """Step ``n`` of the current round's script (1-based), or None."""
        steps = self.steps()
        return steps[n - 1] if 1 <= n <= len(steps) else None

    def next_step(self) -> Json | None:
        reveal = self.reveal()
        if reveal is None:
            return None
        return self.step_text(int(reveal["step"]) + 1)

    def demo(self) -> Json | None:
        demo = (self.state or {}).get("demo")
        return demo if isinstance(demo, dict) else None

    def demo_running(self) -> int | None:
        running = (self.state or {}).get("demo_running")
        return running if isinstance(running, int) else None

    def bench(self) -> Json | None:
        run = (self.state or {}).get("bench")
        return run if isinstance(run, dict) else None

    def bench_entry(self, team: str) -> Json:
        """A team's live progress in the latest run: the tick frames' entry where there is
        one, else what the run's counts say."""
        run = self.bench() or {}
        if self.bench_live_id == run.get("id") and team in self.bench_live:
            return self.bench_live[team]
        suites = (run.get("progress") or {}).get(team) or {}
        done = sum(c.get("done", 0) for c in suites.values())
        total = sum(c.get("total", 0) for c in suites.values())
        status = "failed" if team in (run.get("failed") or {}) else {
            "running": "running", "paused": "paused", "cancelled": "cancelled",
            "finished": "finished"}.get(str(run.get("phase")), "")
        return {"status": status, "done": done, "total": total,
                "errors": sum(c.get("errors", 0) for c in suites.values()), "ips": None,
                "eta_s": None, "reason": (run.get("failed") or {}).get(team, "")}

    def recent_events(self, limit: int = EVENT_BUFFER) -> list[Json]:
        """Newest first."""
        return [self.events[s] for s in sorted(self.events, reverse=True)[:limit]]


# -- words -------------------------------------------------------------------------
