"""The operator console under a live demo: its CPU, how often it redraws, and how long a
server event takes to reach its screen.

Starts one ``showcase mock-team`` (every team's endpoint: 10 ms between tokens, answers
long enough to stream for the whole run) and ``showcase serve`` on a five-team show with
``frame_rate`` = F, then runs the console in this process, headless, at 160x48 (Textual
renders every frame as it would to a terminal, and throws the bytes away). For each
server frame rate F and each console redraw cap C:

  stream   a demo to all five teams; the console on its Demo screen for ``--window`` s:
           CPU seconds per second of the console's process (and per redraw), redraws a
           second, tick frames a second received
  latency  the console on its Overview while the demo goes on streaming; a score is
           corrected over HTTP every 0.3 s, and each correction is timed from the event's
           ``ts`` (the server's clock at the append) and from the press (just before the
           POST) to the redraw that shows the state at that seq

C = "uncapped" redraws at every message (what the console would do without merging).

    .venv/bin/python benchmarks/bench_console.py [--frame-rates 10,60] [--caps 20,1000]
        [--window 8] [--size 160x48] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from _common import describe, machine, spawn, stop_on_sigterm
from showcase_tui.app import ConsoleApp

OPERATOR = "bench-operator-token"
TEAMS = ["lg", "skt", "upstage", "naver", "ncai"]
SHOW = """
[show]
title_en = "Console benchmark"
frame_rate = {rate}

[[judges]]
id = "kim"
name = "Kim"

{teams}

[[criteria]]
id = "benchmark"
name_ko = "벤치마크"
name_en = "Benchmarks"
points = 100
scale = [0, 100]

[[rounds]]
id = "r1"
name_ko = "1차"
name_en = "First"
cut = {{ eliminate_bottom = 1 }}

[proxy]
health_interval = 1
health_timeout = 0.5
"""


def start_server(folder: Path, mock: str, rate: float) -> tuple[subprocess.Popen[str], str]:
    teams = "\n".join(f'[[teams]]\nid = "{t}"\nname_ko = "{t}"\nname_en = "{t.upper()}"\n'
                      f'endpoint = "{mock}/v1"\n' for t in TEAMS)
    show = folder / f"show-{rate:g}.toml"
    show.write_text(SHOW.format(rate=rate, teams=teams), encoding="utf-8")
    return spawn(["serve", str(show), "--port", "0", "--data", str(folder / f"data-{rate:g}")],
                 r"serving .* on (http://\S+)",
                 {"SHOWCASE_OPERATOR_TOKEN": OPERATOR,
                  "SHOWCASE_PRESENTER_TOKEN": "bench-presenter-token"})


async def wait_for(predicate: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the console did not get there")
        await asyncio.sleep(0.05)


async def measure(url: str, console_fps: float, window: float,
                  size: tuple[int, int] = (160, 48)) -> dict[str, Any]:
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {OPERATOR}"},
                          timeout=10)
    for value, team in enumerate(TEAMS):
        client.post("/api/scores", json={"criterion": "benchmark", "team": team,
                                         "value": 50 + value}).raise_for_status()
    app = ConsoleApp(url, OPERATOR, frame_rate=console_fps)
    async with app.run_test(size=size) as pilot:
        await wait_for(lambda: app.model.connected and app.model.state is not None)
        await pilot.press("2")
        demo = client.post("/api/demo", json={"prompt": "Talk for a while.",
                                              "max_tokens": 4096})
        demo.raise_for_status()
        await wait_for(lambda: any(lane.status == "streaming" for lane in app.model.lanes.values()))
        await asyncio.sleep(1.0)

        # stream: the Demo screen while five answers stream
        cpu0, wall0 = time.process_time(), time.perf_counter()
        redraws0, ticks0 = app.redraws, app.model.ticks
        await asyncio.sleep(window)
        cpu1, wall1 = time.process_time(), time.perf_counter()
        elapsed = wall1 - wall0
        redraws = app.redraws - redraws0
        stream = {"cpu_per_s": round((cpu1 - cpu0) / elapsed, 3),
                  "cpu_ms_per_redraw": round((cpu1 - cpu0) * 1000 / max(redraws, 1), 1),
                  "redraws_per_s": round((app.redraws - redraws0) / elapsed, 1),
                  "ticks_per_s": round((app.model.ticks - ticks0) / elapsed, 1),
                  "chars_per_team": round(statistics.mean(
                      len(lane.text) for lane in app.model.lanes.values()))}

        # latency: the Overview while the demo goes on; a correction every 0.3 s
        await pilot.press("1")
        await asyncio.sleep(0.5)
        from_event, from_press = [], []
        for n in range(int(window / 0.3)):
            team = TEAMS[n % len(TEAMS)]
            t_press = time.time()
            answer = await asyncio.to_thread(
                client.post, "/api/scores", json={"criterion": "benchmark", "team": team,
                                                  "value": 10 + n, "reason": "benchmark"})
            answer.raise_for_status()
            seq = answer.json()["seq"]
            await wait_for(lambda seq=seq: any(s >= seq for s, _ in app.drawn_seq), 10)
            await wait_for(lambda seq=seq: seq in app.model.events, 10)
            shown = min(t for s, t in app.drawn_seq if s >= seq)
            from_event.append((shown - app.model.events[seq]["ts"]) * 1000)
            from_press.append((shown - t_press) * 1000)
            await asyncio.sleep(0.3)
        client.post("/api/demo/cancel", json={})
    client.close()
    return {"console_fps": console_fps, **stream,
            "event_to_screen_ms_p50": round(statistics.median(from_event), 1),
            "event_to_screen_ms_max": round(max(from_event), 1),
            "press_to_screen_ms_p50": round(statistics.median(from_press), 1),
            "corrections": len(from_event)}


async def main_async(rates: list[float], caps: list[float], window: float,
                     size: tuple[int, int]) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="bench-console-"))
    mock, mock_url = spawn(["mock-team", "--port", "0", "--ttft-ms", "50", "--itl-ms", "10",
                            "--tokens", "100000"], r"listening on (http://\S+)/v1")
    results = []
    try:
        for rate in rates:
            for cap in caps:
                run_dir = folder / f"fps-{rate:g}-cap-{cap:g}"
                run_dir.mkdir()
                server, url = start_server(run_dir, mock_url, rate)
                try:
                    result = await measure(url, cap, window, size)
                finally:
                    server.terminate()
                    server.wait(10)
                results.append({"server_frame_rate": rate, **result})
                print(orjson.dumps(results[-1]).decode(), file=sys.stderr, flush=True)
    finally:
        mock.terminate()
        mock.wait(10)
    return {"machine": machine(folder), "window_s": window, "size": list(size),
            "load_average": os.getloadavg(), "runs": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frame-rates", default="10,60", help="server frame rates to try")
    parser.add_argument("--caps", default="20,1000", help="console redraw caps (1000: none)")
    parser.add_argument("--window", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--size", default="160x48", help="the console's terminal size")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with stop_on_sigterm():
        width, height = (int(n) for n in args.size.split("x"))
        report = asyncio.run(main_async([float(r) for r in args.frame_rates.split(",")],
                                        [float(c) for c in args.caps.split(",")], args.window,
                                        (width, height)))
    if args.json:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return
    print(f"machine: {describe(report['machine'])}; {report['window_s']} s windows at "
          f"{args.size}; load average at the end {report['load_average'][0]:.1f}")
    print(f"{'server fps':>10} {'cap':>6} {'CPU s/s':>8} {'ms/redraw':>9} {'redraws/s':>9} "
          f"{'ticks/s':>8} "
          f"{'event→screen p50':>17} {'max':>7} {'press→screen p50':>17}")
    for r in report["runs"]:
        cap = "none" if r["console_fps"] >= 1000 else f"{r['console_fps']:g}"
        print(f"{r['server_frame_rate']:>10g} {cap:>6} {r['cpu_per_s']:>8.3f} "
              f"{r['cpu_ms_per_redraw']:>9.1f} {r['redraws_per_s']:>9.1f} {r['ticks_per_s']:>8.1f} "
              f"{r['event_to_screen_ms_p50']:>14.1f} ms {r['event_to_screen_ms_max']:>4.1f} ms"
              f" {r['press_to_screen_ms_p50']:>14.1f} ms")


if __name__ == "__main__":
    main()
