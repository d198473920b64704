"""Does the show stay responsive while a provenance check reads gigabytes? (issue 18, item 5)

Two Llama-shaped BF16 models of about ``--gib`` GiB each (bench_provenance.py's shapes, B
a fine-tune of A), written once to ``--dir`` (not timed). A real ``showcase serve`` on a
free port with the models under its ``[provenance]`` roots. Then, each of ``--runs`` times:

  idle    GET /api/state (the operator's view) back to back on one keep-alive connection
          for ``--seconds`` seconds, nothing else running
  check   POST /api/provenance (A against B, the full check with the permutation test),
          then the same GETs back to back until the check is recorded
  apart   the same check as ``showcase provenance A B`` in a process of its own, and the
          same GETs until it exits: what the CPU the check takes costs the server, without
          sharing its GIL (on a machine with few cores, most of the difference)

and the latency of each GET: p50, p99 and the worst, idle and during the check, and their
ratio. The check runs in a worker thread of the server (provenance/runs.py); what it costs
the event loop is the GIL it holds between numpy's calls.

    .venv/bin/python benchmarks/bench_provenance_show.py [--gib 0.5] [--runs 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import describe, machine, spawn, stop_on_sigterm
from bench_provenance import write_models

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from showcase.core.showfile import sample_show_path

TOKEN = "bench-operator-token"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def gets(client: httpx.Client, until: float | None = None, check: str | None = None
         ) -> tuple[list[float], dict[str, object]]:
    """GET /api/state back to back, in ms; until a time, or until ``check`` is recorded."""
    out: list[float] = []
    run: dict[str, object] = {}
    while True:
        started = time.perf_counter()
        client.get("/api/state").raise_for_status()
        out.append((time.perf_counter() - started) * 1000)
        if until is not None and time.monotonic() >= until:
            return out, run
        if check is not None and len(out) % 25 == 0:
            runs = client.get("/api/provenance").json()["runs"]
            run = next(r for r in runs if r["id"] == check)
            if run["status"] != "running":
                return out, run


def figures(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "p50": statistics.median(ms), "p99": percentile(ms, 99),
            "max": max(ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gib", type=float, default=0.5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="bench-provshow-"))
    print(describe(machine(folder)))
    started = time.monotonic()
    a, b = write_models(folder / "models", args.gib)
    print(f"models written in {time.monotonic() - started:.0f} s: "
          f"{sum(f.stat().st_size for f in a.glob('*.safetensors')) / 2**30:.2f} GiB each")
    show = folder / "show.toml"
    show.write_text(sample_show_path().read_text(encoding="utf-8") + f"""
[proxy]
health_interval = 0

[provenance]
roots = ["{folder / 'models'}"]
weights = {{ lg = "{a}" }}
references = {{ reference = "{b}" }}
""", encoding="utf-8")
    data = folder / f"data-{os.getpid()}"
    proc, url = spawn(["serve", str(show), "--port", "0", "--data", str(data)],
                      r"serving .* on (http://\S+)",
                      env={"SHOWCASE_OPERATOR_TOKEN": TOKEN})
    idle_runs, busy_runs, apart_runs = [], [], []
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=30) as client:
            gets(client, until=time.monotonic() + 1)  # warm up
            for n in range(args.runs):
                idle, _ = gets(client, until=time.monotonic() + args.seconds)
                answer = client.post("/api/provenance", json={"team": "lg",
                                                              "reference": "reference"})
                answer.raise_for_status()
                t0 = time.monotonic()
                busy, run = gets(client, check=answer.json()["check"])
                took = time.monotonic() - t0
                cli = subprocess.Popen([sys.executable, "-m", "showcase", "provenance", str(a),
                                        str(b)], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
                t1 = time.monotonic()
                apart: list[float] = []
                while cli.poll() is None:
                    apart += gets(client, until=time.monotonic() + 0.5)[0]
                took_apart = time.monotonic() - t1
                i, c, p = figures(idle), figures(busy), figures(apart)
                idle_runs.append(i)
                busy_runs.append(c)
                apart_runs.append(p)
                print(f"run {n + 1}: idle p50 {i['p50']:.2f} p99 {i['p99']:.2f} max "
                      f"{i['max']:.1f} ms ({i['n']} GETs) | during the check ({took:.1f} s, "
                      f"{run.get('status')}, {run.get('verdict')}): p50 {c['p50']:.2f} p99 "
                      f"{c['p99']:.2f} max {c['max']:.1f} ms ({c['n']} GETs) | beside the "
                      f"CLI's ({took_apart:.1f} s): p50 {p['p50']:.2f} p99 {p['p99']:.2f} "
                      f"max {p['max']:.1f} ms ({p['n']} GETs)")
    finally:
        proc.terminate()
        proc.wait(10)
    for name, runs in (("check in the server", busy_runs), ("check in its own process",
                                                            apart_runs)):
        med = {k: (statistics.median(r[k] for r in idle_runs),
                   statistics.median(r[k] for r in runs)) for k in ("p50", "p99", "max")}
        print(f"median of runs, idle -> {name}: " + "; ".join(
            f"{k} {i:.2f} -> {c:.2f} ms ({c / i:.1f}x)" for k, (i, c) in med.items()))


if __name__ == "__main__":
    with stop_on_sigterm():
        main()
