"""What 100 overlay pages saying hello cost the server (issue 19: < 1% of a core).

Starts ``showcase serve`` on the sample show (no health checks), opens N public WebSocket
connections as overlay pages do, and measures the server process's CPU time
(/proc/PID/stat, user + system) over fixed windows, alternating:

- idle: the N connections open, nobody says anything (keepalives only);
- hello: each connection says hello every ``--interval`` seconds (5, as the pages do),
  staggered so that the hellos are spread evenly, as independent pages are;
- hello x5: the same at one hello a second per connection, five times the real rate, so
  that the cost per hello stands out of the noise of a shared machine.

The cost of the hellos is the difference between a hello window and the idle windows.
Each condition gets ``--rounds`` windows of ``--window`` seconds; the medians are printed,
with the hellos the server counted (from ``GET /api/outputs``, every page listed).

    .venv/bin/python benchmarks/bench_outputs.py --outputs 100 --window 10 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_seconds, describe, machine, spawn, stop_on_sigterm

from showcase.core.showfile import sample_show_path

TOKEN = "bench-operator-token"


def hello(index: int, seq: int) -> str:
    page = ("lower-third", "ticker", "bench", "demo", "scoreboard")[index % 5]
    return orjson.dumps({"type": "hello", "page": page, "lang": "ko" if index % 2 else "en",
                         "seq": seq, "build": "0123456789ab",
                         "options": {"team": "lg", "lang": "ko"} if index % 2 else {},
                         "obs": "program" if index % 3 == 0 else None}).decode()


async def page(url: str, index: int, rate: dict[str, float], stop: asyncio.Event) -> None:
    """One overlay page: drains what the server sends, says hello at ``rate['every']``
    seconds (0: silent)."""
    async with websockets.connect(url, max_size=None) as ws:
        async def drain() -> None:
            async for _ in ws:
                pass
        reader = asyncio.create_task(drain())
        try:
            while not stop.is_set():
                every = rate["every"]
                if every <= 0:
                    await asyncio.sleep(0.2)
                    continue
                # stagger: page i speaks at its own phase of the interval
                await asyncio.sleep(every - (time.time() + index * every / rate["n"]) % every)
                if rate["every"] > 0 and not stop.is_set():
                    await ws.send(hello(index, 1))
        finally:
            reader.cancel()


async def measure(pid: int, seconds: float) -> float:
    """The server's CPU over ``seconds``, as a share of one core (1.0 = a whole core)."""
    before, start = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - start)


async def run(args: argparse.Namespace, pid: int, base: str) -> dict[str, list[float]]:
    url = base.replace("http://", "ws://") + "/ws"
    rate = {"every": 0.0, "n": float(args.outputs)}
    stop = asyncio.Event()
    pages = [asyncio.create_task(page(url, i, rate, stop)) for i in range(args.outputs)]
    results: dict[str, list[float]] = {"idle": [], "hello": [], "hello x5": []}
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}
                                 ) as http:
        try:
            await asyncio.sleep(3)  # every page connected and sent its snapshot
            for _ in range(args.rounds):
                for name, every in (("idle", 0.0), ("hello", args.interval),
                                    ("hello x5", args.interval / 5)):
                    rate["every"] = every
                    await asyncio.sleep(min(every, 2) if every else 1)  # settle into pace
                    results[name].append(await measure(pid, args.window))
            listed = (await http.get("/api/outputs")).json()
            print(f"listed by the server: {len(listed['outputs'])} outputs, "
                  f"{listed['unlisted']} unlisted")
        finally:
            stop.set()
            for task in pages:
                task.cancel()
            await asyncio.gather(*pages, return_exceptions=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outputs", type=int, default=100)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="bench-outputs-"))
    show = data / "show.toml"
    show.write_text(sample_show_path().read_text(encoding="utf-8")
                    + "\n[proxy]\nhealth_interval = 0\n", encoding="utf-8")
    print(describe(machine(data)), f"load average {os.getloadavg()[0]:.1f}")
    with stop_on_sigterm():
        proc, base = spawn(["serve", str(show), "--port", "0", "--data", str(data / "data")],
                           r"serving .* on (http://\S+)",
                           env={"SHOWCASE_OPERATOR_TOKEN": TOKEN})
        try:
            results = asyncio.run(run(args, proc.pid, base))
        finally:
            proc.terminate()
            proc.wait(10)
    idle = statistics.median(results["idle"])
    print(f"{args.outputs} outputs, {args.rounds} windows of {args.window:g} s each, medians:")
    for name, values in results.items():
        med = statistics.median(values)
        hellos = 0.0 if name == "idle" else args.outputs / (
            args.interval if name == "hello" else args.interval / 5)
        extra = "" if name == "idle" else (
            f"  (+{(med - idle) * 100:.2f}% over idle; {hellos:.0f} hellos/s"
            + (f", {(med - idle) / hellos * 1e6:.0f} us CPU each)" if hellos else ")"))
        print(f"  {name:9s} {med * 100:6.2f}% of a core"
              f"  [{', '.join(f'{v * 100:.2f}' for v in values)}]{extra}")


if __name__ == "__main__":
    main()
