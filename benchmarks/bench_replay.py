"""Start-up replay of a long event log into the show's state.

Builds a data directory whose log holds ``--events`` realistic events (the sample show's
``show_configured``, then ``score_entered`` events made by the real command code against
the state: values, judges' sheets and corrections with a reason, for every team and
criterion of round r1), then times, over several repetitions after one warm-up:

  rows     SQLite rows only, no decoding (what the storage costs)
  read     ``SQLiteLog.read`` into a list: rows, ``orjson.loads``, ``Event``
  fold     ``State.apply`` over events already in memory
  replay   read + fold + the history deque, as ``Engine.open`` does
  open     ``Engine(show, dir).open()`` + ``close()``: the whole start-up

    .venv/bin/python benchmarks/bench_replay.py [--events 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import describe, machine, stop_on_sigterm

from showcase.core import commands
from showcase.core import events as ev
from showcase.core.events import Event
from showcase.core.showfile import Show, load_show, sample_show_path
from showcase.core.state import State
from showcase.log.sqlite import LOG_FILE, SQLiteLog
from showcase.runtime.engine import HISTORY, Engine

GOAL_SECONDS = 1.0  # for 100,000 events


def make_events(show: Show, count: int) -> list[Event]:
    """``count`` events: the show file, then scores entered and corrected through the commands."""
    ts = 1_790_000_000.0
    first = Event(1, ts, ev.SHOW_CONFIGURED, "showfile", {"config": show.config()})
    state = State()
    state.apply(first)
    out = [first]
    teams = [t.id for t in show.teams]
    judges = [j.id for j in show.judges]
    cells: list[tuple[str, str, str | None]] = []
    for crit in show.criteria:
        for team in teams:
            if crit.source == "judges":
                cells.extend((crit.id, team, judge) for judge in judges)
            else:
                cells.append((crit.id, team, None))
    scales = {c.id: c.scale for c in show.criteria}
    i = 0
    while len(out) < count:
        criterion, team, judge = cells[i % len(cells)]
        lo, hi = scales[criterion]
        # Alternating values a quarter of the scale apart, so that every re-entry is a change.
        step = (i // len(cells)) % 2
        value = round(lo + (hi - lo) * (0.5 + 0.25 * step) - (i % 7) * 0.01, 2)
        body: dict[str, Any] = {"criterion": criterion, "team": team, "value": value}
        role, actor = "operator", "operator:bench"
        if judge is not None:
            body["judge"] = judge
            role, actor = "judge", f"judge:{judge}"
        if i >= len(cells):
            body["reason"] = "re-marked after the appeal of round r1"
        event_type, data = commands.enter_score(state, role, body)
        event = Event(state.seq + 1, ts + 0.01 * len(out), event_type, actor, data)
        state.apply(event)
        out.append(event)
        i += 1
    return out


def build(data_dir: Path, show: Show, count: int) -> None:
    events = make_events(show, count)
    with SQLiteLog(data_dir) as log:
        for start in range(0, len(events), 10_000):
            log.append_now(events[start:start + 10_000])


# -- the measurements --------------------------------------------------------------------


def rows_only(data_dir: Path) -> int:
    conn = sqlite3.connect(data_dir / LOG_FILE)
    try:
        rows = conn.execute("SELECT seq, ts, type, actor, data FROM events WHERE seq > ? "
                            "ORDER BY seq", (0,)).fetchall()
    finally:
        conn.close()
    return len(rows)


def read_only(data_dir: Path) -> int:
    with SQLiteLog(data_dir, exclusive=False) as log:
        return len(list(log.read()))


def fold_only(events: list[Event]) -> int:
    state = State()
    for event in events:
        state.apply(event)
    return state.seq


def replay(data_dir: Path) -> int:
    """What Engine.open does with the log: apply each event and keep the recent ones."""
    state = State()
    history: deque[Event] = deque(maxlen=HISTORY)
    with SQLiteLog(data_dir, exclusive=False) as log:
        for event in log.read():
            state.apply(event)
            history.append(event)
    return state.seq


def engine_open(show: Show, data_dir: Path) -> int:
    engine = Engine(show, data_dir).open()
    try:
        return engine.committed.seq
    finally:
        engine.close()


def timed(fn: Callable[[], int], repeat: int, expect: int) -> list[float]:
    """Seconds per call, after one untimed warm-up call; each call must see every event."""
    got = fn()
    if got != expect:
        raise RuntimeError(f"{fn} saw {got} events, expected {expect}")
    times = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        got = fn()
        times.append(time.perf_counter() - started)
        if got != expect:
            raise RuntimeError(f"{fn} saw {got} events, expected {expect}")
    return times


# -- report ------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events in the log (100000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed repetitions (5)")
    args = parser.parse_args()
    if not 2 <= args.events <= 2_000_000:
        parser.error("--events must be 2..2000000")
    repeat = max(1, min(args.repeat, 50))
    show = load_show(sample_show_path())

    with stop_on_sigterm(), tempfile.TemporaryDirectory(prefix="showcase-replay-") as tmp:
        data_dir = Path(tmp) / "data"
        started = time.perf_counter()
        build(data_dir, show, args.events)
        size = (data_dir / LOG_FILE).stat().st_size
        print(f"built a log of {args.events:,} events ({size / 1e6:.1f} MB) in "
              f"{time.perf_counter() - started:.1f} s; {repeat} timed runs after a warm-up",
              flush=True)
        with SQLiteLog(data_dir, exclusive=False) as log:
            in_memory = list(log.read())
        n = args.events
        results = [
            ("rows", "SQLite rows only, no decoding",
             timed(lambda: rows_only(data_dir), repeat, n)),
            ("read", "SQLiteLog.read into a list (rows + orjson + Event)",
             timed(lambda: read_only(data_dir), repeat, n)),
            ("fold", "State.apply over events in memory",
             timed(lambda: fold_only(in_memory), repeat, n)),
            ("replay", "read + fold + history, as Engine.open does",
             timed(lambda: replay(data_dir), repeat, n)),
            ("open", "Engine(show, dir).open() + close()",
             timed(lambda: engine_open(show, data_dir), repeat, n)),
        ]
        print(f"\nmachine: {describe(machine(data_dir))}\n")
        print(f"{'':<8}{'what':<52}{'median':>9}{'min':>9}{'max':>9}{'events/s':>12}")
        for key, what, times in results:
            med = statistics.median(times)
            print(f"{key:<8}{what:<52}{med:>8.3f}s{min(times):>8.3f}s{max(times):>8.3f}s"
                  f"{n / med:>12,.0f}")
        read = statistics.median(results[1][2])
        whole = statistics.median(results[4][2])
        goal = GOAL_SECONDS * n / 100_000
        print(f"\nwhole start-up {whole:.3f} s for {n:,} events = {whole / read:.1f}x reading and "
              f"decoding alone; goal <= {goal:.2f} s: {'met' if whole <= goal else 'NOT met'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; the temporary data directory is gone", file=sys.stderr)
        sys.exit(130)
