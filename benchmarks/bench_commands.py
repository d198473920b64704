"""Acknowledged durable commands a second through the real HTTP API.

Starts ``showcase serve`` on the sample show in a fresh data directory (a subprocess, as a
user runs it), once per path measured, and measures the paths in turns: ``front``, the
command front it ships with (commandpath.py); ``app``, the same server with
``SHOWCASE_LEAN_COMMANDS=0`` (commands through Starlette); ``before``, another checkout
of showcase (``--before DIR``, e.g. ``git worktree add /tmp/before a1d7220``) run by
the same interpreter with the same packages, so that an older design is measured in the
same run. It drives N concurrent writers of ``POST /api/scores`` for a fixed time and
counts only ``201`` answers: each is an event the server says is on disk (SQLite WAL,
``synchronous=FULL``, grouped commits). In the same run, and with the same row shape, it
measures bare sqlite3 from one process, one commit per event and grouped commits, so the
figures can be read against what the disk and SQLite allow on this machine.

    .venv/bin/python benchmarks/bench_commands.py [--seconds 10] [--connections 50]
    .venv/bin/python benchmarks/bench_commands.py --paths before,front --before /tmp/before

The load generator is ``wrk`` (``apt-get install wrk``) with a Lua script that counts the
status of every answer; ``--client python`` uses an asyncio keep-alive client instead,
``--client both`` runs both. Every loop is bounded in count and time, traffic stays on
127.0.0.1, and the server and temporary directories are removed on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from _common import describe, machine, stop_on_sigterm

ROOT = Path(__file__).resolve().parent.parent
SHOW = ROOT / "showcase" / "sample" / "show.toml"
TOKEN = "bench-operator-token-0123456789"
BODY = orjson.dumps({"criterion": "benchmark", "team": "lg", "value": 71.5, "reason": "bench"})
# The row the server appends for BODY (a correction of the same cell, every time).
ROW_DATA = orjson.dumps({"round": "r1", "criterion": "benchmark", "team": "lg", "value": 71.5,
                         "previous": 71.5, "reason": "bench"})
SERVE = ["-m", "showcase", "serve"]  # after the interpreter; before the show file and options
SERVING = re.compile(r"serving .* on (http://\S+)")
CLK_TCK = os.sysconf("SC_CLK_TCK")
MAX_SECONDS = 120  # a bound on any one measured window, whatever the command line says
GOAL_RATE = 15_000  # acknowledged durable commands a second (issue 14)
GOAL_P99_MS = 10.0  # the acknowledgement's p99

WRK_LUA = """
wrk.method = "POST"
wrk.body = [[BODY]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer TOKEN"

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) created = 0; other = 0; first_other = 0 end
function response(status, headers, body)
  if status == 201 then
    created = created + 1
  else
    other = other + 1
    if first_other == 0 then first_other = status end
  end
end
function done(summary, latency, requests)
  local c, o, f = 0, 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created"); o = o + t:get("other")
    if f == 0 then f = t:get("first_other") end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"created":%d,"other":%d,"first_other":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,"p50_us":%d,"p75_us":%d,' ..
    '"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f}\\n',
    summary.requests, summary.duration, c, o, f, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean))
end
"""


# -- measurements ------------------------------------------------------------------------


@dataclass
class Load:
    """One measured window of load against the server."""

    client: str
    seconds: float
    created: int
    errors: int  # non-201 answers plus socket errors
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    client_cpu_s: float
    server_cpu_s: float = 0.0
    server_loop_cpu_s: float = 0.0
    commits: int = 0
    appended: int = 0
    commit_seconds: float = 0.0
    machine_idle_pct: float = 0.0  # of all cores, during the window
    steal_pct: float = 0.0  # time the hypervisor gave to other guests: the machine's noise
    counters: dict[str, tuple[float, float]] = field(default_factory=dict)  # before, after
    notes: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.created / self.seconds

    @property
    def cpu_ms_per_1000(self) -> float:
        return 1000 * self.server_cpu_s / max(self.appended, 1) * 1000

    @property
    def per_fsync(self) -> float:
        return self.appended / max(self.commits, 1)


@dataclass
class Bare:
    """Bare sqlite3 appends from one process: what the disk and SQLite allow."""

    name: str
    batch: int
    appended: int
    seconds: float
    commit_p50_ms: float
    commit_p99_ms: float

    @property
    def per_second(self) -> float:
        return self.appended / self.seconds


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def bare_sqlite(directory: Path, batch: int, seconds: float) -> Bare:
    """Append rows of the server's shape, committing every ``batch`` rows, for ``seconds``."""
    path = directory / f"bare-{batch}.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, ts REAL NOT NULL, "
                 "type TEXT NOT NULL, actor TEXT NOT NULL, data BLOB NOT NULL)")
    seq = 0
    commits: list[float] = []
    started = time.perf_counter()
    deadline = started + min(seconds, MAX_SECONDS)
    try:
        while time.perf_counter() < deadline and seq < 10_000_000:
            now = time.time()
            rows = [(seq + i + 1, now, "score_entered", "operator", ROW_DATA)
                    for i in range(batch)]
            t0 = time.perf_counter()
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
            commits.append(time.perf_counter() - t0)
            seq += batch
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    name = "bare sqlite3, one commit per event" if batch == 1 else \
        f"bare sqlite3, grouped commits of {batch}"
    return Bare(name, batch, seq, elapsed, 1000 * percentile(commits, 50),
                1000 * percentile(commits, 99))


# -- the server ----------------------------------------------------------------------------


class ServerProcess:
    """``showcase serve`` on a free port with a data directory of its own."""

    def __init__(self, workdir: Path, path: str = "front", source: Path = ROOT) -> None:
        # "front": commands answered by commandpath.py; "app": by Starlette; "before": the
        # checkout in ``source``, as it ships
        self.path = path
        self.source = source
        self.data = workdir / f"data-{path}"
        self.log_path = workdir / f"server-{path}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 30) -> None:
        env = {**os.environ, "SHOWCASE_OPERATOR_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1",
               "SHOWCASE_LEAN_COMMANDS": "0" if self.path == "app" else "1",
               # the source's showcase before the installed one (an editable install's)
               "PYTHONPATH": str(self.source)}
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, *SERVE, str(SHOW), "--host", "127.0.0.1",
                 "--port", "0", "--data", str(self.data)],
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.source,
                start_new_session=True,  # Ctrl-C reaches us, and we stop the server in order
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            found = SERVING.search(self.log_path.read_text(errors="replace"))
            if found:
                self.url = found.group(1)
                break
            time.sleep(0.05)
        if not self.url:
            self.stop()
            raise RuntimeError("the server did not start:\n" + self.log_path.read_text())
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                health = json.loads(http("GET", self.url + "/healthz")[1])
                if health.get("ok"):
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("GET /healthz did not answer ok")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu(self) -> tuple[float, float]:
        """CPU seconds (user + system) of the whole process, and of its main (event loop) thread."""
        total = _stat_cpu(Path(f"/proc/{self.pid}/stat"))
        loop = _stat_cpu(Path(f"/proc/{self.pid}/task/{self.pid}/stat"))
        return total, loop

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for line in http("GET", self.url + "/metrics")[1].decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # uvicorn's graceful stop
        try:
            self.proc.wait(timeout=8)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=8)


def machine_ticks() -> list[int]:
    """The first line of /proc/stat: user nice system idle iowait irq softirq steal ..."""
    return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def _stat_cpu(path: Path) -> float:
    fields = path.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# -- load generators -----------------------------------------------------------------------


def run_wrk(url: str, workdir: Path, connections: int, seconds: float) -> Load:
    script = workdir / "post.lua"
    script.write_text(WRK_LUA.replace("BODY", BODY.decode()).replace("TOKEN", TOKEN))
    seconds = min(seconds, MAX_SECONDS)
    with open(workdir / "wrk.out", "wb") as out:
        proc = subprocess.Popen(
            ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
             "--timeout", "5s", "-s", str(script), url + "/api/scores"],
            stdout=out, stderr=subprocess.STDOUT)
        try:
            _, status, usage = _wait4(proc, seconds + 30)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    text = (workdir / "wrk.out").read_text()
    found = re.search(r"^BENCH (\{.*\})$", text, re.M)
    if status != 0 or found is None:
        raise RuntimeError(f"wrk failed (status {status}):\n{text}")
    r = json.loads(found.group(1))
    errors = r["other"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
    load = Load("wrk", r["duration_us"] / 1e6, r["created"], errors, r["p50_us"] / 1000,
                r["p75_us"] / 1000, r["p90_us"] / 1000, r["p99_us"] / 1000,
                r["p999_us"] / 1000, r["max_us"] / 1000, usage.ru_utime + usage.ru_stime)
    if r["other"]:
        load.notes.append(f"{r['other']} answers were not 201 (first: {r['first_other']})")
    for kind in ("connect", "read", "write", "timeout"):
        if r[kind]:
            load.notes.append(f"{r[kind]} socket {kind} errors")
    return load


def _wait4(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, int, Any]:
    """Wait for a child and return its resource usage (wrk's CPU time), within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return pid, proc.returncode, usage
        time.sleep(0.05)
    raise TimeoutError("wrk did not finish in time")


class _Writer(asyncio.Protocol):
    """One keep-alive connection that sends the next command as soon as one is answered."""

    def __init__(self, request: bytes, stats: dict[str, Any], deadline: float) -> None:
        self.request = request
        self.stats = stats
        self.deadline = deadline
        self.buffer = bytearray()
        self.sent = 0.0
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self._send()

    def _send(self) -> None:
        if time.perf_counter() >= self.deadline:
            self.transport.close()
            return
        self.sent = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            found = re.search(rb"content-length:\s*(\d+)", head)
            length = int(found.group(1)) if found else 0
            if len(self.buffer) < end + 4 + length:
                return
            status = int(self.buffer[9:12])
            del self.buffer[: end + 4 + length]
            now = time.perf_counter()
            if status == 201:
                self.stats["latencies"].append(now - self.sent)
            else:
                self.stats["other"] += 1
                self.stats["first_other"] = self.stats["first_other"] or status
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.stats["socket_errors"] += 1
        if not self.closed.done():
            self.closed.set_result(None)


async def _python_load(url: str, connections: int, seconds: float) -> dict[str, Any]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    request = (f"POST /api/scores HTTP/1.1\r\nHost: {host}:{port}\r\n"
               f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(BODY)}\r\n\r\n").encode() + BODY
    stats: dict[str, Any] = {"latencies": [], "other": 0, "first_other": 0, "socket_errors": 0}
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    deadline = started + min(seconds, MAX_SECONDS)
    writers = []
    for _ in range(connections):
        _, writer = await loop.create_connection(
            lambda: _Writer(request, stats, deadline), host, int(port))
        writers.append(writer)
    await asyncio.wait_for(asyncio.gather(*(w.closed for w in writers)), seconds + 30)
    stats["elapsed"] = time.perf_counter() - started
    return stats


def run_python(url: str, connections: int, seconds: float) -> Load:
    runner: Callable[..., Any] = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop
        runner = uvloop.run
    cpu = time.process_time()
    stats = runner(_python_load(url, connections, seconds))
    cpu = time.process_time() - cpu
    lat = stats["latencies"]
    ms = [1000 * x for x in lat]
    load = Load("python", stats["elapsed"], len(lat), stats["other"] + stats["socket_errors"],
                percentile(ms, 50), percentile(ms, 75), percentile(ms, 90), percentile(ms, 99),
                percentile(ms, 99.9), max(ms, default=float("nan")), cpu)
    if stats["other"]:
        load.notes.append(f"{stats['other']} answers were not 201 (first: {stats['first_other']})")
    if stats["socket_errors"]:
        load.notes.append(f"{stats['socket_errors']} connections failed")
    return load


def measure(server: ServerProcess, workdir: Path, client: str, connections: int,
            seconds: float) -> Load:
    before_m, before_cpu, before_ticks = server.metrics(), server.cpu(), machine_ticks()
    if client == "wrk":
        load = run_wrk(server.url, workdir, connections, seconds)
    else:
        load = run_python(server.url, connections, seconds)
    load.client = f"{client} {server.path}"
    after_ticks, after_cpu, after_m = machine_ticks(), server.cpu(), server.metrics()
    ticks = [a - b for a, b in zip(after_ticks, before_ticks, strict=True)]
    load.machine_idle_pct = 100 * (ticks[3] + ticks[4]) / max(sum(ticks), 1)
    load.steal_pct = 100 * ticks[7] / max(sum(ticks), 1)
    load.server_cpu_s = after_cpu[0] - before_cpu[0]
    load.server_loop_cpu_s = after_cpu[1] - before_cpu[1]
    load.counters = {name: (before_m[name], after_m[name]) for name in (
        "showcase_log_commits_total", "showcase_log_appended_total", "showcase_seq")}
    load.commits = int(after_m["showcase_log_commits_total"]
                       - before_m["showcase_log_commits_total"])
    load.appended = int(after_m["showcase_log_appended_total"]
                        - before_m["showcase_log_appended_total"])
    load.commit_seconds = (after_m["showcase_log_commit_seconds_total"]
                           - before_m["showcase_log_commit_seconds_total"])
    if load.appended < load.created:
        load.notes.append(f"the log appended {load.appended} events for {load.created} 201s")
    return load


# -- report --------------------------------------------------------------------------------


def report(args: argparse.Namespace, bare: list[Bare], loads: list[Load]) -> None:
    m = machine(tempfile.gettempdir())
    print(f"\nmachine: {describe(m)}")
    print(f"load: {args.connections} connections, {args.seconds:g} s a window after "
          f"{args.warmup:g} s of warm-up, {args.repeat} window(s) per client\n")
    print(f"{'baseline (one process)':<44}{'appends/s':>11}{'commit p50':>12}{'commit p99':>12}")
    for b in bare:
        print(f"{b.name:<44}{b.per_second:>11,.0f}{b.commit_p50_ms:>10.2f}ms"
              f"{b.commit_p99_ms:>10.2f}ms")
    per_event = next(b for b in bare if b.batch == 1).per_second
    grouped = next(b for b in bare if b.batch != 1).per_second
    print()
    head = (f"{'server path, POST /api/scores':<26}{'cmds/s':>9}{'p50':>8}{'p90':>8}{'p99':>8}"
            f"{'p99.9':>8}{'errors':>7}{'srv cpu':>9}{'loop cpu':>9}{'ev/fsync':>9}"
            f"{'load cpu':>9}{'idle':>6}{'steal':>6}{'/grouped':>9}{'/1-per-ev':>10}")
    print(head)
    print(f"{'':<26}{'':>9}{'ms':>8}{'ms':>8}{'ms':>8}{'ms':>8}{'':>7}{'ms/1k':>9}"
          f"{'ms/1k':>9}{'':>9}{'% core':>9}{'%':>6}{'%':>6}")
    numbers: dict[str, int] = {}
    for load in loads:
        i = numbers[load.client] = numbers.get(load.client, 0) + 1
        loop_per_k = 1e6 * load.server_loop_cpu_s / max(load.appended, 1)
        print(f"{f'{load.client} #{i}':<26}{load.per_second:>9,.0f}{load.p50_ms:>8.2f}"
              f"{load.p90_ms:>8.2f}{load.p99_ms:>8.2f}{load.p999_ms:>8.2f}{load.errors:>7}"
              f"{load.cpu_ms_per_1000:>9.0f}{loop_per_k:>9.0f}{load.per_fsync:>9.1f}"
              f"{100 * load.client_cpu_s / load.seconds:>9.0f}"
              f"{load.machine_idle_pct:>6.0f}{load.steal_pct:>6.1f}"
              f"{load.per_second / grouped:>9.2f}{load.per_second / per_event:>10.2f}")
        for note in load.notes:
            print(f"    ! {note}")
    print(f"\n{'/metrics over each window':<26}{'log_commits_total':>24}"
          f"{'log_appended_total':>24}{'ev/fsync':>9}{'ms/commit':>10}")
    numbers = {}
    for load in loads:
        i = numbers[load.client] = numbers.get(load.client, 0) + 1
        c0, c1 = load.counters["showcase_log_commits_total"]
        a0, a1 = load.counters["showcase_log_appended_total"]
        print(f"{f'{load.client} #{i}':<26}{f'{c0:,.0f} -> {c1:,.0f}':>24}"
              f"{f'{a0:,.0f} -> {a1:,.0f}':>24}{load.per_fsync:>9.1f}"
              f"{1000 * load.commit_seconds / max(load.commits, 1):>10.2f}")
    for client in dict.fromkeys(load.client for load in loads):
        mine = [load for load in loads if load.client == client]
        rate = statistics.median(x.per_second for x in mine)
        p50 = statistics.median(x.p50_ms for x in mine)
        p99 = statistics.median(x.p99_ms for x in mine)
        errors = sum(x.errors for x in mine)
        goal = rate >= GOAL_RATE and p99 <= GOAL_P99_MS and errors == 0
        print(f"\n{client}, median of {len(mine)}: {rate:,.0f} commands/s, p50 {p50:.2f} ms, "
              f"p99 {p99:.2f} ms, {errors} errors; server CPU "
              f"{statistics.median(x.cpu_ms_per_1000 for x in mine):.0f} ms per 1000 commands, "
              f"{statistics.median(x.per_fsync for x in mine):.1f} events per fsync; "
              f"{rate / grouped:.2f}x bare grouped, {rate / per_event:.2f}x bare one-per-event")
        print(f"goal (>= {GOAL_RATE:,} commands/s, p99 <= {GOAL_P99_MS:g} ms, no errors): "
              f"{'met' if goal else 'NOT met'}")
    for client in dict.fromkeys(x.client.split()[0] for x in loads):
        for other in ("before", "app"):
            front = [x for x in loads if x.client == f"{client} front"]
            them = [x for x in loads if x.client == f"{client} {other}"]
            if not (front and them):
                continue
            ratios = [a.per_second / b.per_second for a, b in zip(front, them, strict=False)]
            p99s = [a.p99_ms / b.p99_ms for a, b in zip(front, them, strict=False)]
            cpu = [a.cpu_ms_per_1000 / b.cpu_ms_per_1000
                   for a, b in zip(front, them, strict=False)]
            print(f"\n{client}, front against {other}, windows taken in turns: "
                  f"commands/s {statistics.median(ratios):.2f}x "
                  f"({', '.join(f'{r:.2f}' for r in ratios)}), p99 "
                  f"{statistics.median(p99s):.2f}x, server CPU per command "
                  f"{statistics.median(cpu):.2f}x "
                  f"({', '.join(f'{r:.2f}' for r in cpu)})")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": m, "connections": args.connections, "seconds": args.seconds,
            "bare": [dict(vars(b), per_second=b.per_second) for b in bare],
            "loads": [dict(vars(x), per_second=x.per_second, per_fsync=x.per_fsync,
                           cpu_ms_per_1000=x.cpu_ms_per_1000) for x in loads],
        }, indent=2))


# -- main ----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="length of a window (10)")
    parser.add_argument("--warmup", type=float, default=3, help="warm-up before measuring (3)")
    parser.add_argument("--connections", type=int, default=50, help="concurrent writers (50)")
    parser.add_argument("--repeat", type=int, default=3, help="measured windows per client (3)")
    parser.add_argument("--client", choices=("wrk", "python", "both"), default="wrk",
                        help="load generator (wrk; python if wrk is not installed)")
    parser.add_argument("--baseline-seconds", type=float, default=3,
                        help="length of each bare sqlite3 measurement (3)")
    parser.add_argument("--paths", default="front,app",
                        help="command paths to measure, windows taken in turns: front "
                             "(showcase serve as shipped), app (SHOWCASE_LEAN_COMMANDS=0: "
                             "through Starlette), before (showcase serve from --before) "
                             "(front,app)")
    parser.add_argument("--before", type=Path,
                        help="a checkout of an earlier showcase, for --paths before")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    paths = list(dict.fromkeys(p.strip() for p in args.paths.split(",") if p.strip()))
    if not paths or not set(paths) <= {"front", "app", "before"}:
        parser.error("--paths takes front, app and before, comma-separated")
    if "before" in paths and (args.before is None
                              or not (args.before / "showcase" / "cli.py").exists()):
        parser.error("--paths before needs --before DIR, a checkout of showcase "
                     "(git worktree add /tmp/before COMMIT)")
    if not 1 <= args.connections <= 1000 or not 0 < args.seconds <= MAX_SECONDS:
        parser.error(f"--connections 1..1000 and --seconds up to {MAX_SECONDS}")
    args.repeat = max(1, min(args.repeat, 10))
    clients = ["wrk", "python"] if args.client == "both" else [args.client]
    if "wrk" in clients and shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk); using the Python client",
              file=sys.stderr)
        clients = ["python"]

    with stop_on_sigterm(), tempfile.TemporaryDirectory(prefix="showcase-bench-") as tmp:
        workdir = Path(tmp)
        print(f"bare sqlite3 baselines ({args.baseline_seconds:g} s each) ...", flush=True)
        bare = [bare_sqlite(workdir, 1, args.baseline_seconds),
                bare_sqlite(workdir, args.connections, args.baseline_seconds)]
        servers = [ServerProcess(workdir, path,
                                 args.before.resolve() if path == "before" else ROOT)
                   for path in paths]
        try:
            for server in servers:
                server.start()
                status, body = http("POST", server.url + "/api/scores", BODY)
                if status != 201:
                    raise RuntimeError(f"POST /api/scores answered {status}: {body!r}")
                print(f"server ({server.path} path) pid {server.pid} at {server.url}; "
                      f"first command: {body.decode()}", flush=True)
            loads = []
            for client in clients:
                for server in servers:
                    print(f"{client} {server.path}: warm-up {args.warmup:g} s ...", flush=True)
                    measure(server, workdir, client, args.connections, args.warmup)
                for i in range(args.repeat):  # the paths in turns, so that drift hits both
                    for server in servers:
                        load = measure(server, workdir, client, args.connections, args.seconds)
                        print(f"{load.client} #{i + 1}: {load.per_second:,.0f} commands/s, "
                              f"p99 {load.p99_ms:.2f} ms, {load.errors} errors", flush=True)
                        loads.append(load)
            for server in servers:
                health = json.loads(http("GET", server.url + "/healthz")[1])
                if not health.get("ok"):
                    raise RuntimeError(f"the server is unhealthy after the run: {health}")
        finally:
            for server in servers:
                server.stop()
        report(args, bare, loads)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; the server and temporary files are gone", file=sys.stderr)
        sys.exit(130)
