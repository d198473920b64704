"""From a presenter's press to every screen: the latency of one reveal step.

Starts ``showcase serve`` on the sample show (in a fresh data directory), scores and
freezes round r1, connects ``--viewers`` public WebSocket viewers, then presses through
the reveal (``POST /api/reveal/goto`` with the step, alternating forward and back so the
run can be as long as wanted). For each press it times:

  ack     the press's HTTP answer (the step is on disk: the durable append)
  first   the first viewer to receive the step
  last    the last viewer to receive it (what the whole audience waits for)

Viewers and the presser share one client process; the server runs in its own. Both share
the machine's cores, which the report says.

    .venv/bin/python benchmarks/bench_reveal.py [--viewers 200] [--presses 200] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets
from _common import describe, machine, stop_on_sigterm

from showcase.core.showfile import sample_show_path

OPERATOR = "bench-operator-token"
PRESENTER = "bench-presenter-token"
JUDGE = "bench-judge-token-x"
BENCHMARK = {"lg": 71.2, "skt": 61.6, "upstage": 59.73, "naver": 55.33, "ncai": 44.4}
FEEDBACK = {"lg": 4.4, "skt": 4.3, "upstage": 4.0, "naver": 3.8, "ncai": 3.5}
SHEETS = {"lg": [88, 91, 85, 90, 87], "skt": [80, 84, 79, 83, 82],
          "upstage": [82, 78, 85, 80, 79], "naver": [75, 77, 72, 79, 74],
          "ncai": [70, 68, 73, 66, 71]}
JUDGES = ["kim", "lee", "park", "choi", "jung"]


def start_server(data: Path) -> tuple[subprocess.Popen[str], str]:
    show = data.parent / "show.toml"
    # One token enters every judge's sheet: the show file allows it (shared_judge).
    show.write_text("[tokens]\nshared_judge = true\n\n"
                    + sample_show_path().read_text(encoding="utf-8")
                    + "\n[proxy]\nhealth_interval = 0\n", encoding="utf-8")
    env = {**os.environ, "SHOWCASE_OPERATOR_TOKEN": OPERATOR,
           "SHOWCASE_PRESENTER_TOKEN": PRESENTER, "SHOWCASE_JUDGE_TOKEN": JUDGE,
           "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "showcase", "serve", str(show), "--port", "0",
                             "--data", str(data)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        found = re.search(r"serving .* on (http://\S+)", line)
        if found:
            return proc, found.group(1)
    raise RuntimeError("the server did not start")


async def prepare(client: httpx.AsyncClient) -> int:
    op = {"Authorization": f"Bearer {OPERATOR}"}
    for team, value in BENCHMARK.items():
        await client.post("/api/scores", headers=op,
                          json={"criterion": "benchmark", "team": team, "value": value})
        await client.post("/api/scores", headers=op,
                          json={"criterion": "feedback", "team": team, "value": FEEDBACK[team]})
        for judge, sheet in zip(JUDGES, SHEETS[team], strict=True):
            await client.post("/api/scores", headers={"Authorization": f"Bearer {JUDGE}"},
                              json={"criterion": "expert", "team": team, "judge": judge,
                                    "value": sheet})
    (await client.post("/api/rounds/r1/freeze", headers=op)).raise_for_status()
    script = (await client.get("/api/reveal/script", headers=op)).json()
    return int(script["total"])


async def viewer(url: str, seen: dict[int, list[float]], ready: asyncio.Event,
                 counter: list[int], total: int) -> None:
    async with websockets.connect(url.replace("http", "ws") + "/ws", max_size=None) as ws:
        await ws.recv()  # the snapshot
        counter[0] += 1
        if counter[0] == total:
            ready.set()
        async for raw in ws:
            now = time.perf_counter()
            message = orjson.loads(raw)
            if message.get("type") == "reveal_step":
                seen.setdefault(message["seq"], []).append(now)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def run(url: str, viewers: int, presses: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        total = await prepare(client)
        seen: dict[int, list[float]] = {}
        ready = asyncio.Event()
        counter = [0]
        tasks = [asyncio.create_task(viewer(url, seen, ready, counter, viewers))
                 for _ in range(viewers)]
        await asyncio.wait_for(ready.wait(), 60)
        headers = {"Authorization": f"Bearer {PRESENTER}"}
        ack, first, last = [], [], []
        step = 0
        forward = True
        for _ in range(presses):
            if step == total - 1 or (step == 17 and forward):
                forward = False  # stay before the elimination and the publication
            if step == 0:
                forward = True
            target = step + 1 if forward else step - 1
            t0 = time.perf_counter()
            r = await client.post("/api/reveal/goto", headers=headers, json={"to": target})
            t1 = time.perf_counter()
            r.raise_for_status()
            seq = r.json()["seq"]
            deadline = time.perf_counter() + 10
            while len(seen.get(seq, ())) < viewers and time.perf_counter() < deadline:
                await asyncio.sleep(0.0005)
            times = seen.get(seq, [])
            assert len(times) == viewers, f"only {len(times)} of {viewers} viewers got seq {seq}"
            ack.append((t1 - t0) * 1000)
            first.append((min(times) - t0) * 1000)
            last.append((max(times) - t0) * 1000)
            step = target
            await asyncio.sleep(0.01)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {name: {"p50": round(statistics.median(v), 2), "p99": round(pct(v, 99), 2),
                   "max": round(max(v), 2)}
            for name, v in (("ack_ms", ack), ("first_viewer_ms", first),
                            ("last_viewer_ms", last))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--viewers", type=int, default=200)
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reveal-") as tmp, stop_on_sigterm():
        data = Path(tmp) / "data"
        proc, url = start_server(data)
        try:
            result = asyncio.run(run(url, args.viewers, args.presses))
        finally:
            proc.terminate()
            proc.wait(10)
        info = machine(tmp)
    result = {"viewers": args.viewers, "presses": args.presses, "machine": info, **result}
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"machine: {describe(info)}")
    print(f"{args.presses} presses, {args.viewers} WebSocket viewers (one client process)")
    for name in ("ack_ms", "first_viewer_ms", "last_viewer_ms"):
        r = result[name]
        print(f"  {name:16} p50 {r['p50']:7.2f}   p99 {r['p99']:7.2f}   max {r['max']:7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
