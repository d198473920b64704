"""Durable audience votes a second accepted by one ``showcase serve`` on SQLite.

Starts ``showcase serve`` on the sample show in a fresh data directory (a subprocess, as a
user runs it), opens voting over the API (no pause before a vote, limits out of the way:
every request comes from 127.0.0.1), then, through the public API only:

1. ``POST /api/vote/session`` for each of ``--sessions`` voters;
2. ``GET /api/vote/battle`` ``--votes`` times per session (battles handed out a second);
3. ``POST /api/vote`` for every battle, from ``--connections`` keep-alive connections,
   each sending its next vote as soon as the last is answered: votes a second answered
   ``201`` (each durable in votes.sqlite3: WAL, ``synchronous=FULL``, grouped commits)
   and the latency of each acknowledgement.

Finally it checks, through ``GET /api/rounds/r1/voting``, that the server counted exactly
the votes it acknowledged. The client is a small asyncio HTTP/1.1 client (uvloop when
installed) running on the same machine as the server, so on a small machine the two
share its cores: the figure is a floor for the server alone.

    .venv/bin/python benchmarks/bench_votes.py [--sessions 2000] [--votes 10]
        [--connections 64] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_seconds, describe, machine, spawn, stop_on_sigterm

from showcase.core.showfile import sample_show_path

TOKEN = "operator-token-for-bench"
TEAMS = ["lg", "skt", "upstage", "naver", "ncai"]
Request = tuple[str, str, dict[str, str], bytes]  # method, path, headers, body


def pool(prompts: int = 20) -> list[dict[str, Any]]:
    return [{"id": f"p{p}", "text": f"Prompt {p}: explain something in a paragraph.",
             "answers": {t: f"An answer of about a paragraph to prompt {p}, number {i}. " * 4
                         for i, t in enumerate(TEAMS)}} for p in range(prompts)]


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str,
                    request: Request) -> tuple[int, bytes]:
    method, path, headers, body = request
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{head}"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return int(status_line[9:12]), await reader.readexactly(length)


async def _run(url: str, requests: list[Request], connections: int
               ) -> tuple[list[tuple[int, bytes]], list[float], float]:
    """Send every request, ``connections`` at a time on keep-alive connections; the
    answers in request order, the latency of each, and the wall time."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    answers: list[tuple[int, bytes]] = [(0, b"")] * len(requests)
    latencies = [0.0] * len(requests)
    cursor = iter(range(len(requests)))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for i in cursor:
                sent = time.perf_counter()
                answers[i] = await _exchange(reader, writer, f"{host}:{port}", requests[i])
                latencies[i] = time.perf_counter() - sent
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(connection() for _ in range(connections))), 600)
    return answers, latencies, time.perf_counter() - started


def run(url: str, requests: list[Request], connections: int
        ) -> tuple[list[tuple[int, bytes]], list[float], float]:
    runner: Callable[..., Any] = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop
        runner = uvloop.run
    return runner(_run(url, requests, connections))  # type: ignore[no-any-return]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def one_run(url: str, args: argparse.Namespace, pid: int) -> dict[str, Any]:
    json_type = {"content-type": "application/json"}
    sessions, _, _ = run(url, [("POST", "/api/vote/session", json_type, b"{}")]
                         * args.sessions, args.connections)
    ids = [json.loads(body)["session"] for status, body in sessions if status == 201]
    asks = [("GET", "/api/vote/battle", {"x-vote-session": s}, b"")
            for s in ids for _ in range(args.votes)]
    battles, _, handed_s = run(url, asks, args.connections)
    votes: list[Request] = []
    for (_, _, headers, _), (status, body) in zip(asks, battles, strict=True):
        battle = json.loads(body)["battle"] if status == 200 else None
        if battle:
            votes.append(("POST", "/api/vote", {**json_type, **headers},
                          json.dumps({"battle": battle, "choice": "a"}).encode()))
    cpu = cpu_seconds(pid)
    answers, latencies, voted_s = run(url, votes, args.connections)
    cpu = cpu_seconds(pid) - cpu
    accepted = [lat for (status, _), lat in zip(answers, latencies, strict=True)
                if status == 201]
    refused = {status for status, _ in answers if status != 201}
    return {"sessions": len(ids), "battles_per_s": len(asks) / handed_s,
            "votes": len(votes), "accepted": len(accepted), "refused": sorted(refused),
            "votes_per_s": len(accepted) / voted_s, "server_cpu_s": cpu,
            "p50_ms": 1000 * percentile(accepted, 50), "p99_ms": 1000 * percentile(accepted, 99),
            "max_ms": 1000 * max(accepted)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--votes", type=int, default=10, help="votes per session")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-votes-"))
    proc = None
    results = []
    with stop_on_sigterm():
        try:
            show = workdir / "show.toml"
            show.write_text(sample_show_path().read_text(encoding="utf-8")
                            + "\n[proxy]\nhealth_interval = 0\n", encoding="utf-8")
            for n in range(args.runs):  # a fresh server and data directory per run
                proc, url = spawn(["serve", str(show), "--port", "0", "--data",
                                   str(workdir / f"data{n}")], r"serving .* on (http://\S+)",
                                  env={"SHOWCASE_OPERATOR_TOKEN": TOKEN})
                body = json.dumps({"prompts": pool(), "min_seconds": 0,
                                   "per_session": 100_000,
                                   "per_address_per_minute": 1_000_000}).encode()
                opened, _, _ = run(url, [("POST", "/api/rounds/r1/voting/open",
                                          {"authorization": f"Bearer {TOKEN}",
                                           "content-type": "application/json"}, body)], 1)
                assert opened[0][0] == 201, opened
                result = one_run(url, args, proc.pid)
                _, raw = run(url, [("GET", "/api/rounds/r1/voting", {}, b"")], 1)[0][0]
                result["counted_by_server"] = json.loads(raw)["votes"]
                assert result["counted_by_server"] == result["accepted"], result
                results.append(result)
                print(json.dumps(result), flush=True)
                proc.terminate()
                proc.wait(30)
                proc = None
        finally:
            if proc is not None:
                proc.kill()
                proc.wait()
            shutil.rmtree(workdir, ignore_errors=True)
    rates = [r["votes_per_s"] for r in results]
    print(f"\nmachine: {describe(machine(tempfile.gettempdir()))}")
    print(f"load: {args.sessions} sessions x {args.votes} votes, {args.connections} "
          f"connections, {args.runs} runs, client on the same machine (pid {os.getpid()})")
    print(f"votes/s accepted (durable), median of runs: {statistics.median(rates):,.0f} "
          f"(runs: {', '.join(f'{r:,.0f}' for r in rates)})")
    print(f"p99 acknowledgement, median of runs: "
          f"{statistics.median(r['p99_ms'] for r in results):.1f} ms; p50 "
          f"{statistics.median(r['p50_ms'] for r in results):.1f} ms")
    print(f"server CPU per 1,000 votes: "
          f"{statistics.median(1000 * r['server_cpu_s'] / r['accepted'] for r in results):.3f} s")
    print(f"battles handed out/s, median: "
          f"{statistics.median(r['battles_per_s'] for r in results):,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
