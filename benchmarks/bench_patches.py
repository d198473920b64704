"""CPU per event of preparing each view's message, with its patch, against the code before.

Since issue 14 each event message carries the change it makes to its view's state (a JSON
Patch), computed once per view per event when the event is committed. Before, a message
was built from the event alone. This runs the same measurements on both, in the same run,
alternating: the code of this checkout, and the code at ``--base`` (exported with ``git
archive`` into a temporary folder and put first on ``PYTHONPATH`` of a child process).

Per event, on events already in memory (the engine's commit path, without the log):

  fold       ``State.apply`` alone
  messages   ``State.apply`` + the message of each of the four views (before: built from
             the event; now: ``Views.commit_batch``, which builds the sections a batch's
             events may change once per view, diffs them and serialises each message once)
  fan-out    ``messages`` + ``Hub.publish`` to 25 subscribers of each view (queued)

``messages`` and ``fan-out`` are measured with the events committed in batches of 1, 8 and
50 (``b1``, ``b8``, ``b50``): what the log's grouped fsync makes of 1, 8 and 50 concurrent
writers. Code that prepares each event alone (``--base a1d7220``, or the per-event patches
of ``--base f61fed3``) does the same work whatever the batch.

over two workloads: ``scores`` (score_entered and corrections, as bench_replay.py makes
them: sealed for every view but the operator's, whose live standings they change) and
``public`` (request_measured: public, each changes every view's telemetry). And the start-up
replay of a ``--replay``-event log (``Engine.open`` + ``close``), which the change must not
slow down.

    .venv/bin/python benchmarks/bench_patches.py [--events 3000] [--repeat 5] [--base a1d7220]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import describe, machine, stop_on_sigterm

ROOT = Path(__file__).resolve().parent.parent
SUBSCRIBERS = 25  # per view, for the fan-out measurement
# Events per committed batch: what the log groups into one fsync under 1, 8 and 50
# concurrent writers (each writer has one command in flight).
BATCHES = (1, 8, 50)


# -- the child: measure the code on PYTHONPATH ------------------------------------------


def public_events(show: Any, count: int, first_seq: int) -> list[Any]:
    """``count`` request_measured events, as the proxy writes them, round the teams."""
    from showcase.core import events as ev
    from showcase.core.events import Event

    teams = [t.id for t in show.teams]
    out = []
    for i in range(count):
        metrics = {"ttft_ms": 120.0 + (i * 37) % 90, "tpot_ms": 18.5, "itl_ms_p50": 18.0,
                   "itl_ms_p99": 25.0, "itl_ms_max": 31.0, "e2e_ms": 640.0 + i % 50,
                   "output_tokens": 24, "tokens_estimated": False, "prompt_tokens": 9,
                   "decode_tps": 40.0 + (i * 13) % 30, "e2e_tps": 37.5, "chunks": 24,
                   "bytes": 6100, "finish_reason": "length", "done": True}
        out.append(Event(first_seq + i, 1_790_000_000.0 + i, ev.REQUEST_MEASURED,
                         "server:proxy", {"team": teams[i % len(teams)], "source": "proxy",
                                          "actor": "presenter", "status": "ok", "error": "",
                                          "metrics": metrics}))
    return out


def workloads(count: int) -> dict[str, list[Any]]:
    from bench_replay import make_events

    from showcase.core.showfile import load_show, sample_show_path

    show = load_show(sample_show_path())
    scores = make_events(show, count + 1)
    return {"scores": scores, "public": scores[:1] + public_events(show, count, 2)}


def fresh_events(events: list[Any]) -> list[Any]:
    """Copies without prepared messages: each timed pass prepares them anew."""
    from showcase.core.events import Event

    return [Event(e.seq, e.ts, e.type, e.actor, e.data) for e in events]


def make_pass(kind: str, events: list[Any], size: int = 1) -> Callable[[], float]:
    """One timed pass over ``events`` (after the first, which configures the show),
    committed in batches of ``size`` as the engine does: fold the batch, then prepare its
    messages (``Views.commit_batch``: each view's patch once per batch), then publish.
    Code without ``commit_batch`` prepares each event alone, whatever the size."""
    from showcase.core.events import VIEWS
    from showcase.core.state import State
    from showcase.runtime.fanout import Hub

    try:
        from showcase.core.patches import Views
    except ImportError:
        Views = None  # the code before: messages from the event alone

    def run() -> float:
        fresh = fresh_events(events)
        state = State()
        state.apply(fresh[0])
        views = Views(state) if Views is not None else None
        batched = hasattr(views, "commit_batch")
        hub = Hub(queue_limit=len(fresh) + 1)
        subs = [hub.subscribe(view) for view in VIEWS for _ in range(SUBSCRIBERS)]
        todo = fresh[1:]
        gc.collect()
        started = time.process_time()
        for start in range(0, len(todo), size):
            batch = todo[start:start + size]
            for event in batch:
                state.apply(event)
            if kind == "fold":
                continue
            if batched:
                for event, wires in zip(batch, views.commit_batch(state, batch), strict=True):
                    event.prepare(wires)
            elif views is not None:  # the per-event patches, prepared one by one
                for event in batch:
                    event.prepare(views.commit(state, event))
            for event in batch:
                if kind == "messages":
                    for view in VIEWS:
                        event.wire(view)
                else:
                    hub.publish(event.seq, event.wire)
        spent = time.process_time() - started
        assert all(len(sub) == len(todo) for sub in subs) or kind != "fan-out"
        return spent / len(todo)
    return run


def replay_pass(data_dir: Path) -> Callable[[], float]:
    from showcase.core.showfile import load_show, sample_show_path
    from showcase.runtime.engine import Engine

    show = load_show(sample_show_path())

    def run() -> float:
        gc.collect()
        started = time.perf_counter()
        Engine(show, data_dir).open().close()
        return time.perf_counter() - started
    return run


def child(args: argparse.Namespace) -> int:
    from bench_replay import build

    import showcase
    from showcase.core.showfile import load_show, sample_show_path

    out: dict[str, Any] = {"code": str(Path(showcase.__file__).parent)}
    if args.child == "events":
        for name, events in workloads(args.events).items():
            run = make_pass("fold", events)
            run()  # warm-up
            out[f"{name}/fold"] = [run() for _ in range(args.passes)]
            for kind in ("messages", "fan-out"):
                for size in BATCHES:
                    run = make_pass(kind, events, size)
                    run()
                    out[f"{name}/{kind} b{size}"] = [run() for _ in range(args.passes)]
        print(json.dumps(out))
        return 0
    # The replay in a process of its own: the heap the workloads leave behind would slow
    # the allocations of a replay after them.
    with tempfile.TemporaryDirectory(prefix="showcase-patches-") as tmp:
        build(Path(tmp), load_show(sample_show_path()), args.replay)
        run = replay_pass(Path(tmp))
        run()
        out["replay"] = [run() for _ in range(args.passes)]
    print(json.dumps(out))
    return 0


# -- the parent: both sides, alternating -------------------------------------------------


def run_side(code_root: Path, args: argparse.Namespace, what: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    done = subprocess.run([sys.executable, __file__, "--child", what, "--events",
                           str(args.events), "--replay", str(args.replay), "--passes", "3"],
                          env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000, help="events a workload (3000)")
    parser.add_argument("--replay", type=int, default=20_000, help="events replayed (20000)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds of both sides (5)")
    parser.add_argument("--base", default="a1d7220", help="the code before (a1d7220)")
    parser.add_argument("--child", choices=("events", "replay"), help=argparse.SUPPRESS)
    parser.add_argument("--passes", type=int, default=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 10 <= args.events <= 100_000 or not 2 <= args.replay <= 200_000:
        parser.error("--events must be 10..100000 and --replay 2..200000")
    if args.child:
        return child(args)
    repeat = max(1, min(args.repeat, 20))
    with stop_on_sigterm(), tempfile.TemporaryDirectory(prefix="showcase-base-") as tmp:
        base = Path(tmp)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.base, "showcase"],
                                 capture_output=True, check=True, timeout=60).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True, timeout=60)
        sides = {"before": base, "now": ROOT}
        runs: dict[str, dict[str, list[float]]] = {side: {} for side in sides}
        for i in range(repeat):
            for side, root in (sides.items() if i % 2 == 0 else reversed(sides.items())):
                for what in ("events", "replay"):
                    got = run_side(root, args, what)
                    assert got.pop("code") == str(root / "showcase"), "measured the wrong code"
                    for key, values in got.items():
                        runs[side].setdefault(key, []).extend(values)
            print(f"round {i + 1}/{repeat} done", file=sys.stderr, flush=True)
        print(f"machine: {describe(machine(tmp))}")
        print(f"before = {args.base}, now = this checkout; {repeat} rounds x 3 passes, "
              f"medians; CPU time (process_time) per event")
        print(f"\n{'':<26}{'before':>12}{'now':>12}{'now - before':>15}{'now / before':>14}")
        for key in runs["now"]:
            old, new = statistics.median(runs["before"][key]), statistics.median(runs["now"][key])
            unit, scale = ("s", 1.0) if key == "replay" else ("us", 1e6)
            label = f"replay {args.replay:,} events" if key == "replay" else key
            print(f"{label:<26}{old * scale:>10.1f}{unit}{new * scale:>10.1f}{unit}"
                  f"{(new - old) * scale:>13.1f}{unit}{new / old:>13.2f}x")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
