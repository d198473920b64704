"""Benchmark runs: items a second per team against teams answering in a fixed time.

Five mock teams (``showcase mock-team``, each its own process) answer every item in a
fixed time t (``--ttft-ms``; answers are a few tokens, so t is about the TTFT); the server
runs one benchmark run over a generated suite of ``--items`` items against all five at
once, with ``--concurrency`` c items in flight per team. A team can do at best c/t items a
second; the goal is at least 90% of that for each team, all five at once. It also reports
the server's CPU time per scored item (from /proc, utime + stime of the server process
over the run).

    .venv/bin/python benchmarks/bench_bench.py [--items 300] [--concurrency 8] [--ttft-ms 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _common import cpu_seconds, describe, machine, spawn, stop_on_sigterm

OPERATOR = "bench-operator-token"
TEAMS = ("lg", "skt", "upstage", "naver", "ncai")


def write_suite(folder: Path, items: int) -> None:
    folder.mkdir()
    lines = [json.dumps({"suite": {"id": "load", "category": "problem_solving",
                                   "language": "en", "baseline": 0, "max_tokens": 16}})]
    lines += [json.dumps({"id": f"n{i}", "prompt": f"What is {i} plus {i}?",
                          "grade": {"number": 2 * i}}) for i in range(items)]
    (folder / "load.jsonl").write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--ttft-ms", type=float, default=200)
    args = parser.parse_args()
    procs: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-bench-") as tmp, stop_on_sigterm():
        root = Path(tmp)
        write_suite(root / "suites", args.items)
        try:
            teams = ""
            for team in TEAMS:
                proc, url = spawn(["mock-team", "--port", "0", "--model", team, "--ttft-ms",
                                   str(args.ttft_ms), "--itl-ms", "0", "--accuracy", "0.8",
                                   "--answers", str(root / "suites")], r"listening on (\S+)")
                procs.append(proc)
                teams += (f'[[teams]]\nid = "{team}"\nname_ko = "{team}"\nname_en = "{team}"\n'
                          f'endpoint = "{url}"\n')
            show = root / "show.toml"
            show.write_text(f'[show]\ntitle_en = "bench"\n{teams}[bench]\nsuites = ["suites"]\n'
                            "[proxy]\nhealth_interval = 0\nmax_connections = 64\n")
            server, url = spawn(["serve", str(show), "--port", "0", "--data", str(root / "d")],
                                r"serving .* on (http://\S+)",
                                {"SHOWCASE_OPERATOR_TOKEN": OPERATOR})
            procs.append(server)
            result = run(url, server.pid, args)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)
        m = machine(root)
    print(json.dumps(result, indent=2))
    goal = 0.9 * args.concurrency / (args.ttft_ms / 1000)
    print(f"\nmachine: {describe(m)}")
    print(f"{len(TEAMS)} teams x {args.items} items, c={args.concurrency}, "
          f"t={args.ttft_ms:g} ms: best c/t = {goal / 0.9:.1f} items/s per team, "
          f"goal >= {goal:.1f}")
    for team, rate in result["items_per_second"].items():
        print(f"  {team:8} {rate:6.1f} items/s  ({rate / (goal / 0.9):.0%} of c/t)")
    print(f"  server CPU per scored item: {result['cpu_ms_per_item']:.2f} ms "
          f"(median item latency {result['latency_ms_p50']:.1f} ms)")
    return 0 if min(result["items_per_second"].values()) >= goal else 1


def run(url: str, pid: int, args: argparse.Namespace) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {OPERATOR}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        cpu0 = cpu_seconds(pid)
        started = client.post("/api/bench", json={"concurrency": args.concurrency,
                                                  "round": None})
        started.raise_for_status()
        run_id = started.json()["seq"]
        while client.get("/api/bench").json()["bench"]["phase"] != "finished":
            time.sleep(0.1)
        cpu = cpu_seconds(pid) - cpu0
        events = client.get("/api/log", params={"type": "bench_item", "limit": 5000}).json()
    items = [e for e in events["events"] if e["data"]["run"] == run_id]
    rates = {}
    for team in TEAMS:
        ts = sorted(e["ts"] for e in items if e["data"]["team"] == team)
        # From the first item back to the start: the first c items took t each.
        first = ts[0] - args.ttft_ms / 1000
        rates[team] = round(len(ts) / (ts[-1] - first), 2)
    latencies = [e["data"]["latency_ms"] for e in items]
    return {"items": len(items), "errors": sum(e["data"]["status"] != "ok" for e in items),
            "items_per_second": rates, "cpu_ms_per_item": round(1000 * cpu / len(items), 3),
            "latency_ms_p50": statistics.median(latencies),
            "latency_ms_p95": statistics.quantiles(latencies, n=20)[-1]}


if __name__ == "__main__":
    sys.exit(main())
