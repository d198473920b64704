"""Added latency and CPU per stream of the proxy, against a bare pass-through and LiteLLM.

One mock team (``showcase mock-team``: 50 ms to the first token, then 20 chunks 5 ms apart,
vLLM's wire format) answers streamed chat completions for every target of one run:

- ``direct``: the client talks to the mock itself (the reference that is subtracted);
- ``bare``: a pass-through written here, a raw ASGI app on uvicorn + uvloop (as ``showcase
  serve`` runs) that forwards the POST with one shared ``httpx.AsyncClient`` and streams the
  bytes back unparsed: it measures nothing, and is the floor for a proxy built this way;
- ``showcase``: ``showcase serve`` with one team whose endpoint is the mock,
  ``POST /v1/teams/bench/chat/completions`` with the presenter's token. It checks the token,
  parses and timestamps every chunk, and records a durable ``request_measured`` event
  (SQLite, ``synchronous=FULL``) for every answer: that cost is part of what is measured;
- ``litellm``: LiteLLM's proxy in front of the same mock (``--litellm PATH``, installed
  apart, never a dependency of the project); skipped, with a message, when it is not found.

    .venv/bin/python benchmarks/bench_proxy.py [--litellm /tmp/litellm-venv/bin/litellm]
        [--requests 200] [--rounds 20] [--json out.json]

The client is this process: raw HTTP/1.1 on an asyncio protocol over uvloop (no httpx, so
the client adds as little as it can to every figure), one keep-alive connection per
concurrent stream and target. TTFT is the time from writing the request to the arrival of
the first chunk that carries content; E2E the time to the arrival of ``data: [DONE]``; both
with ``time.perf_counter``. A stream counts only if it answered 200 with all 20 content
chunks and [DONE]. Targets are interleaved: each round runs one batch per target in an order
that rotates from round to round, so that the machine's noise falls on all of them alike.
At concurrency 1 a batch is 10 requests one after another; at 32 it is 32 requests started
together. CPU per stream is the CPU time of the target's processes (every thread's
``/proc/PID/task/TID/schedstat``, in ns) over a batch divided by its streams; the figure is
the median over batches. Every loop is bounded in count and time, traffic stays on
127.0.0.1, and every process and temporary directory is removed on exit, Ctrl-C included.
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
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
OPERATOR = "bench-operator-token-0123456789"
PRESENTER = "bench-presenter-token-0123456789"
LITELLM_KEY = "sk-bench-0123456789abcdef0123456789abcdef"  # LiteLLM refuses to start without one
TEAM = "bench"
MODEL = "mock"
TTFT_MS, ITL_MS, TOKENS = 50, 5, 20
BODY = orjson.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Say something."}],
                     "stream": True, "max_tokens": TOKENS})
SHOW_TOML = """\
[show]
title_en = "Proxy benchmark"

[[teams]]
id = "bench"
name_ko = "bench"
name_en = "bench"
endpoint = "{mock}"

[proxy]
max_connections = 64
health_interval = 0
"""
LITELLM_YAML = """\
model_list:
  - model_name: mock
    litellm_params:
      model: openai/mock
      api_base: {mock}
      api_key: dummy
litellm_settings:
  num_retries: 0
  request_timeout: 60
  set_verbose: false
  json_logs: false
  turn_off_message_logging: true
  callbacks: []
general_settings:
  master_key: {key}
  disable_spend_logs: true
  disable_error_logs: true
  background_health_checks: false
"""
# What LiteLLM runs with: no database, logs at ERROR (so uvicorn logs no request), the cost
# map from the package (no fetch at start-up), no .env file read.
LITELLM_ENV = {"LITELLM_LOG": "ERROR", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
               "LITELLM_MODE": "PRODUCTION", "DISABLE_ADMIN_UI": "True"}
LITELLM_DROP_ENV = ("DATABASE_URL", "REDIS_HOST", "REDIS_URL", "OPENAI_API_KEY",
                    "LITELLM_MASTER_KEY")
BATCH_AT_1 = 10  # requests one after another in a batch at concurrency 1
SETTLE_S = 0.05  # after a batch, so that work done after [DONE] (the log's commit) counts
REQUEST_TIMEOUT_S = 30.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
MAX_REQUESTS = 5000  # a bound on --requests, whatever the command line says
MAX_ROUNDS = 500


# -- processes ---------------------------------------------------------------------------


def _schedstat_ns(pid: int) -> int:
    """CPU time of every live thread of a process, in ns (run time from schedstat)."""
    total = 0
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
    return total


def _stat_ticks(pid: int) -> int:
    """utime + stime of a process (all its threads), in clock ticks."""
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    return 0


def _descendants(pid: int) -> list[int]:
    """pid and every process under it (scans /proc: CONFIG_PROC_CHILDREN may be off)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        p = stack.pop()
        found.append(p)
        stack.extend(parents.get(p, []))
    return found


class Proc:
    """A process under test (or the mock), started in a session of its own."""

    def __init__(self, name: str, argv: list[str], log_path: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env if env is not None else dict(os.environ)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.pids: list[int] = []

    def start(self, ready: re.Pattern[str] | None, health: str = "",
              timeout: float = 60) -> None:
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                         env=self.env, cwd=ROOT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if ready is not None and not self.url:
                found = ready.search(self.log_path.read_text(errors="replace"))
                if found:
                    self.url = found.group(1)
            if self.url and (not health or _ok(self.url + health)):
                self.pids = _descendants(self.proc.pid)
                return
            time.sleep(0.1)
        tail = self.log_path.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"{self.name} did not start ({' '.join(self.argv)}):\n{tail}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu_ns(self) -> int:
        return sum(_schedstat_ns(p) for p in self.pids)

    def cpu_ticks(self) -> int:
        return sum(_stat_ticks(p) for p in self.pids)

    def threads(self) -> int:
        return sum(len(os.listdir(f"/proc/{p}/task")) for p in self.pids
                   if os.path.isdir(f"/proc/{p}/task"))

    def sockets(self) -> int:
        """Open sockets of the process tree (listening ones included)."""
        count = 0
        for p in self.pids:
            with contextlib.suppress(OSError):
                for fd in os.listdir(f"/proc/{p}/fd"):
                    with contextlib.suppress(OSError):
                        count += os.readlink(f"/proc/{p}/fd/{fd}").startswith("socket:")
        return count

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # uvicorn's (and the mock's) graceful stop
        try:
            self.proc.wait(timeout=8)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only ours
            self.proc.wait(timeout=8)


def _ok(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)
    return False


def _get_json(url: str, token: str = "") -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"}
                                     if token else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return orjson.loads(response.read())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the bare pass-through (runs in its own process: --serve-bare URL) --------------------


def serve_bare(upstream: str) -> int:
    """Forward POSTs to ``upstream``/chat/completions; stream the bytes back, unparsed."""
    import httpx
    import uvicorn
    import uvloop

    client: httpx.AsyncClient | None = None

    async def app(scope: dict[str, Any], receive: Callable[..., Any],
                  send: Callable[..., Any]) -> None:
        nonlocal client
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    client = httpx.AsyncClient(
                        base_url=upstream.rstrip("/") + "/", trust_env=False, timeout=60,
                        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if client is not None:
                        await client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert client is not None and scope["type"] == "http"
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        request = client.build_request("POST", "chat/completions", content=body,
                                       headers={"content-type": "application/json"})
        response = await client.send(request, stream=True)
        try:
            kind = response.headers.get("content-type", "text/event-stream").encode("latin-1")
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [(b"content-type", kind)]})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))

    async def serve() -> None:
        async def announce() -> None:
            while not server.started and not server.should_exit:
                await asyncio.sleep(0.02)
            port = sock.getsockname()[1]
            print(f"bare pass-through listening on http://127.0.0.1:{port}", flush=True)

        task = asyncio.create_task(announce())
        await server.serve(sockets=[sock])
        await task

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve())
    return 0


# -- the client --------------------------------------------------------------------------


@dataclass(slots=True)
class Sample:
    """One streamed request as the client saw it (perf_counter seconds)."""

    t0: float = 0.0
    first: float | None = None  # first chunk with content
    done: float | None = None  # data: [DONE]
    end: float | None = None  # the response complete (chunked terminator)
    chunks: int = 0
    status: int = 0
    error: str = ""
    got_bytes: bool = False
    retried: bool = False

    @property
    def good(self) -> bool:
        return (not self.error and self.status == 200 and self.first is not None
                and self.done is not None and self.chunks == TOKENS)

    @property
    def ttft_ms(self) -> float:
        assert self.first is not None
        return 1000 * (self.first - self.t0)

    @property
    def e2e_ms(self) -> float:
        assert self.done is not None
        return 1000 * (self.done - self.t0)


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection carrying one streamed request at a time."""

    def __init__(self) -> None:
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport
        self.lost = False
        self.used = False
        self.sample = Sample()
        self.future: asyncio.Future[Sample] | None = None
        self.buf = bytearray()
        self.sse = bytearray()
        self.state = "idle"
        self.left = 0
        self.keep = True
        self.body_head = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.state == "eof":
            self._finish("")
        elif self.future is not None and not self.future.done():
            self._finish("connection closed mid-answer" if self.sample.got_bytes
                         else "connection closed before an answer")

    def request(self, data: bytes) -> asyncio.Future[Sample]:
        self.future = asyncio.get_running_loop().create_future()
        self.sample = Sample()
        self.state, self.left, self.keep, self.body_head = "head", 0, True, b""
        self.buf.clear()
        self.sse.clear()
        self.used = True
        self.sample.t0 = time.perf_counter()
        self.transport.write(data)
        return self.future

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if self.future is None or self.future.done():
            return
        self.sample.got_bytes = True
        self.buf += data
        try:
            self._parse(now)
        except Exception as exc:  # a malformed answer ends the connection
            self._finish(f"unreadable answer: {exc!r}"[:200])
            self.transport.close()

    def _parse(self, now: float) -> None:
        buf = self.buf
        if self.state == "head":
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
            del buf[:end + 4]
            self.sample.status = int(lines[0].split()[1])
            headers = {k.strip().lower(): v.strip()
                       for k, _, v in (line.partition(":") for line in lines[1:])}
            self.keep = headers.get("connection", "").lower() != "close"
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self.state = "size"
            elif "content-length" in headers:
                self.state, self.left = "length", int(headers["content-length"])
            else:
                self.state, self.keep = "eof", False
        while buf or self.state in ("length",):
            if self.state == "size":
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(buf[:end]).split(b";")[0], 16)
                del buf[:end + 2]
                self.state, self.left = ("trailer", 0) if size == 0 else ("data", size)
            elif self.state == "data":
                take = min(len(buf), self.left)
                self._body(bytes(buf[:take]), now)
                del buf[:take]
                self.left -= take
                if self.left:
                    return
                self.state = "crlf"
            elif self.state == "crlf":
                if len(buf) < 2:
                    return
                del buf[:2]
                self.state = "size"
            elif self.state == "trailer":
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                empty = end == 0
                del buf[:end + 2]
                if empty:
                    self._finish("")
                    return
            elif self.state == "length":
                take = min(len(buf), self.left)
                self._body(bytes(buf[:take]), now)
                del buf[:take]
                self.left -= take
                if not self.left:
                    self._finish("")
                return
            elif self.state == "eof":
                self._body(bytes(buf), now)
                buf.clear()
                return
            else:
                return

    def _body(self, data: bytes, now: float) -> None:
        if len(self.body_head) < 300:
            self.body_head += data[:300]
        sse = self.sse
        sse += data
        if b"\r" in sse:
            sse[:] = sse.replace(b"\r\n", b"\n")
        while (end := sse.find(b"\n\n")) >= 0:
            event = bytes(sse[:end])
            del sse[:end + 2]
            for line in event.split(b"\n"):
                if line.startswith(b"data:"):
                    self._data(line[5:].strip(), now)

    def _data(self, data: bytes, now: float) -> None:
        s = self.sample
        if data == b"[DONE]":
            s.done = now
            return
        obj = orjson.loads(data)
        if not isinstance(obj, dict):
            return
        if "error" in obj:
            s.error = f"error in the stream: {str(obj['error'])[:150]}"
        choices = obj.get("choices")
        if choices and isinstance(choices[0], dict):
            delta = choices[0].get("delta") or {}
            if isinstance(delta, dict) and delta.get("content"):
                if s.first is None:
                    s.first = now
                s.chunks += 1

    def _finish(self, error: str) -> None:
        s = self.sample
        s.end = time.perf_counter()
        if error and not s.error:
            s.error = error
        if not s.error and s.status != 200:
            s.error = f"HTTP {s.status}: {self.body_head[:200]!r}"
        self.state = "idle"
        if not self.keep and self.transport is not None:
            self.transport.close()
        if self.future is not None and not self.future.done():
            self.future.set_result(s)


@dataclass
class Batch:
    concurrency: int
    round: int
    position: int  # where in the round's order this target ran
    streams: int
    good: int
    seconds: float
    cpu_ms: float  # the target's processes over the batch (+ SETTLE_S)
    mock_cpu_ms: float
    client_cpu_ms: float
    ticks: int = 0  # utime+stime of the target's processes over the batch: a cross-check

    @property
    def cpu_ms_per_stream(self) -> float:
        return self.cpu_ms / max(self.streams, 1)


@dataclass
class Target:
    name: str
    port: int
    path: str
    proc: Proc | None  # None for direct: its cost is the mock's
    token: str = PRESENTER
    conns: list[_Conn] = field(default_factory=list)
    samples: dict[int, list[Sample]] = field(default_factory=dict)
    batches: list[Batch] = field(default_factory=list)
    reconnects: int = 0
    retries: int = 0
    sent: int = 0  # requests sent, warm-up included
    errors: Counter[str] = field(default_factory=Counter)
    idle_cpu_ms_per_s: float = 0.0
    measured: dict[int, tuple[int, int]] = field(default_factory=dict)  # c: sent before, after

    @property
    def request(self) -> bytes:
        return (f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Authorization: Bearer {self.token}\r\nContent-Type: application/json\r\n"
                f"Accept: text/event-stream\r\nContent-Length: {len(BODY)}\r\n\r\n"
                ).encode() + BODY

    def cpu_ns(self) -> int:
        return self.proc.cpu_ns() if self.proc is not None else 0

    async def connect(self, i: int) -> _Conn:
        while len(self.conns) <= i:
            self.conns.append(_Conn())
            self.conns[-1].lost = True
        conn = self.conns[i]
        if conn.lost:
            if conn.transport is not None:
                self.reconnects += 1
            loop = asyncio.get_running_loop()
            _, conn = await loop.create_connection(_Conn, "127.0.0.1", self.port)
            self.conns[i] = conn
        return conn

    async def one(self, i: int) -> Sample:
        conn = await self.connect(i)
        reused = conn.used
        sample = await self._send(conn)
        if reused and sample.error == "connection closed before an answer":
            # The server closed an idle keep-alive connection as we wrote: once more, anew.
            self.retries += 1
            conn = await self.connect(i)
            sample = await self._send(conn)
            sample.retried = True
        if sample.error:
            self.errors[sample.error[:80]] += 1
        elif not sample.good:
            self.errors[f"incomplete: status {sample.status}, {sample.chunks} chunks, "
                        f"done {sample.done is not None}"] += 1
        return sample

    async def _send(self, conn: _Conn) -> Sample:
        self.sent += 1
        future = conn.request(self.request)
        try:
            return await asyncio.wait_for(asyncio.shield(future), REQUEST_TIMEOUT_S)
        except TimeoutError:
            conn.transport.close()
            conn.sample.error = f"no complete answer in {REQUEST_TIMEOUT_S:g} s"
            return conn.sample

    async def run(self, concurrency: int, streams: int) -> list[Sample]:
        for i in range(concurrency):  # open (or reopen) the connections first, untimed
            await self.connect(i)
        left = streams

        async def worker(i: int) -> list[Sample]:
            nonlocal left
            out = []
            while left > 0:
                left -= 1
                out.append(await self.one(i))
            return out

        results = await asyncio.gather(*(worker(i) for i in range(concurrency)))
        return [s for r in results for s in r]

    def close(self) -> None:
        for conn in self.conns:
            if conn.transport is not None and not conn.lost:
                conn.transport.close()


def machine_ticks() -> list[int]:
    """The machine's CPU ticks: user nice system idle iowait irq softirq steal."""
    return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def percentile(values: list[float], pct: float) -> float:
    """Nearest rank, as bench_commands.py."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


async def measure(targets: list[Target], mock: Proc, concurrency: int, rounds: int,
                  streams: int, warmup: int, log: Callable[[str], None]) -> dict[str, float]:
    """Warm up, then ``rounds`` rounds of one batch per target in rotating order."""
    for target in targets:
        for _ in range(warmup):
            await target.run(concurrency, streams)
    for target in targets:  # warm-up failures are reported, but not as the run's errors
        if target.errors:
            log(f"  ! {target.name} warm-up: {dict(target.errors)}")
            target.errors.clear()
        target.samples[concurrency] = []
    sent = {target.name: target.sent for target in targets}
    ticks0 = machine_ticks()
    started = time.perf_counter()
    for r in range(rounds):
        order = targets[r % len(targets):] + targets[:r % len(targets)]
        for position, target in enumerate(order):
            cpu0, mock0, client0 = target.cpu_ns(), mock.cpu_ns(), time.process_time()
            ticks_before = target.proc.cpu_ticks() if target.proc else 0
            t0 = time.perf_counter()
            samples = await target.run(concurrency, streams)
            seconds = time.perf_counter() - t0
            await asyncio.sleep(SETTLE_S)
            client = time.process_time() - client0
            cpu, mock_cpu = target.cpu_ns() - cpu0, mock.cpu_ns() - mock0
            batch_ticks = (target.proc.cpu_ticks() if target.proc else 0) - ticks_before
            target.samples[concurrency].extend(samples)
            target.batches.append(Batch(concurrency, r, position, len(samples),
                                        sum(s.good for s in samples), seconds, cpu / 1e6,
                                        mock_cpu / 1e6, 1000 * client, batch_ticks))
        if (r + 1) % max(1, rounds // 4) == 0:
            log(f"  c={concurrency}: round {r + 1}/{rounds} "
                f"({time.perf_counter() - started:.0f} s)")
    ticks = [a - b for a, b in zip(machine_ticks(), ticks0, strict=True)]
    for target in targets:
        target.measured[concurrency] = (sent[target.name], target.sent)
    return {"seconds": time.perf_counter() - started,
            "idle_pct": 100 * (ticks[3] + ticks[4]) / max(sum(ticks), 1),
            "steal_pct": 100 * ticks[7] / max(sum(ticks), 1)}


# -- the run -----------------------------------------------------------------------------


@dataclass
class Row:
    """One target at one concurrency: the figures of the report."""

    target: str
    concurrency: int
    streams: int
    good: int
    ttft_p50: float
    ttft_p90: float
    ttft_p99: float
    e2e_p50: float
    e2e_p90: float
    e2e_p99: float
    cpu_ms_per_stream: float  # median over batches
    cpu_ms_per_stream_total: float  # all batches' CPU / all their streams
    mock_cpu_ms_per_stream: float
    client_cpu_ms_per_stream: float
    ticks_cpu_ms_per_stream: float  # all batches' utime+stime / all their streams
    added_ttft_p50: float = float("nan")
    added_e2e_p50: float = float("nan")
    added_ttft_p99: float = float("nan")


def summarize(target: Target, concurrency: int) -> Row:
    samples = target.samples.get(concurrency, [])
    good = [s for s in samples if s.good]
    ttft = [s.ttft_ms for s in good]
    e2e = [s.e2e_ms for s in good]
    batches = [b for b in target.batches if b.concurrency == concurrency]
    streams = sum(b.streams for b in batches)
    return Row(target.name, concurrency, len(samples), len(good),
               percentile(ttft, 50), percentile(ttft, 90), percentile(ttft, 99),
               percentile(e2e, 50), percentile(e2e, 90), percentile(e2e, 99),
               statistics.median(b.cpu_ms_per_stream for b in batches) if batches else 0.0,
               sum(b.cpu_ms for b in batches) / max(streams, 1),
               sum(b.mock_cpu_ms for b in batches) / max(streams, 1),
               sum(b.client_cpu_ms for b in batches) / max(streams, 1),
               1000 * sum(b.ticks for b in batches) / CLK_TCK / max(streams, 1))


def recorded(url: str, measured: dict[int, tuple[int, int]]) -> dict[str, Any]:
    """The request_measured events of the showcase server: count, statuses, chunks, the
    TTFT and E2E it measured itself (from writing the request upstream) and its own wait
    for a connection (queue_ms) in each measured phase."""
    events: list[dict[str, Any]] = []
    since = 0
    for _ in range(1000):
        page = _get_json(f"{url}/api/log?type=request_measured&since={since}&limit=5000",
                         OPERATOR)
        if not page["events"]:
            break
        events.extend(page["events"])
        since = page["events"][-1]["seq"]
    metrics = [e["data"]["metrics"] for e in events]
    phases = {}
    for c, (start, end) in measured.items():  # events are in the order the answers ended
        mine = metrics[start:end]
        ttft = [m["ttft_ms"] for m in mine if m.get("ttft_ms") is not None]
        e2e = [m["e2e_ms"] for m in mine if m.get("e2e_ms") is not None]
        # The proxy's own wait for a pooled connection, kept out of the team's TTFT and E2E.
        queue = [m["queue_ms"] for m in mine if m.get("queue_ms") is not None]
        phases[c] = {"events": len(mine), "ttft_ms_p50": percentile(ttft, 50),
                     "e2e_ms_p50": percentile(e2e, 50),
                     "queue_ms_p50": percentile(queue, 50),
                     "queue_ms_p99": percentile(queue, 99)}
    return {"events": len(events),
            "statuses": dict(Counter(e["data"]["status"] for e in events)),
            "chunks": dict(Counter(m.get("chunks") for m in metrics)), "phases": phases}


def start_all(workdir: Path, litellm: str | None,
              log: Callable[[str], None]) -> tuple[Proc, list[Target]]:
    """The mock, then every target's process; returns the mock and the targets."""
    py = sys.executable
    mock = Proc("mock", [py, "-m", "showcase", "mock-team", "--port", "0", "--dialect", "vllm",
                         "--model", MODEL, "--ttft-ms", str(TTFT_MS), "--itl-ms", str(ITL_MS),
                         "--tokens", str(TOKENS)], workdir / "mock.log")
    mock.start(re.compile(r"listening on (http://\S+)/v1"))
    mock_v1 = mock.url + "/v1"
    log(f"mock team pid {mock.pid} at {mock_v1}")
    targets = [Target("direct", int(mock.url.rsplit(":", 1)[1]), "/v1/chat/completions", None)]
    try:
        bare = Proc("bare", [py, str(Path(__file__).resolve()), "--serve-bare", mock_v1],
                    workdir / "bare.log")
        targets.append(Target("bare", 0, "/v1/chat/completions", bare))
        bare.start(re.compile(r"listening on (http://\S+)"))
        targets[-1].port = int(bare.url.rsplit(":", 1)[1])
        log(f"bare pass-through pid {bare.pid} at {bare.url}")

        show = workdir / "show.toml"
        show.write_text(SHOW_TOML.format(mock=mock_v1))
        env = {**os.environ, "SHOWCASE_OPERATOR_TOKEN": OPERATOR,
               "SHOWCASE_PRESENTER_TOKEN": PRESENTER, "PYTHONUNBUFFERED": "1"}
        server = Proc("showcase", [py, "-m", "showcase", "serve", str(show), "--host",
                                   "127.0.0.1", "--port", "0", "--data",
                                   str(workdir / "data")], workdir / "showcase.log", env)
        targets.append(Target("showcase", 0, f"/v1/teams/{TEAM}/chat/completions", server))
        server.start(re.compile(r"serving .* on (http://\S+)"), "/healthz")
        targets[-1].port = int(server.url.rsplit(":", 1)[1])
        log(f"showcase serve pid {server.pid} at {server.url}")

        if litellm:
            port = _free_port()
            config = workdir / "litellm.yaml"
            config.write_text(LITELLM_YAML.format(mock=mock_v1, key=LITELLM_KEY))
            env = {k: v for k, v in os.environ.items() if k not in LITELLM_DROP_ENV}
            proc = Proc("litellm", [litellm, "--config", str(config), "--host", "127.0.0.1",
                                    "--port", str(port), "--num_workers", "1"],
                        workdir / "litellm.log", {**env, **LITELLM_ENV})
            targets.append(Target("litellm", port, "/v1/chat/completions", proc, LITELLM_KEY))
            proc.url = f"http://127.0.0.1:{port}"
            proc.start(None, "/health/liveliness", timeout=120)
            log(f"litellm pid {proc.pid} at {proc.url} ({len(proc.pids)} process(es), "
                f"{proc.threads()} threads)")
    except BaseException:
        for target in targets:
            if target.proc is not None:
                target.proc.stop()
        mock.stop()
        raise
    return mock, targets


def _litellm_version(path: str) -> str:
    python = Path(path).parent / "python"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([str(python), "-c", "import importlib.metadata as m; "
                              "print(m.version('litellm'))"],
                             capture_output=True, text=True, timeout=60)
        return out.stdout.strip() or "?"
    return "?"


def run(args: argparse.Namespace) -> dict[str, Any]:
    from _common import machine

    def log(line: str) -> None:
        print(line, flush=True)

    with tempfile.TemporaryDirectory(prefix="showcase-bench-proxy-") as tmp:
        workdir = Path(tmp)
        mock, targets = start_all(workdir, args.litellm, log)
        try:
            idle0 = {t.name: t.cpu_ns() for t in targets}
            time.sleep(2)
            for t in targets:
                t.idle_cpu_ms_per_s = (t.cpu_ns() - idle0[t.name]) / 1e6 / 2
            runner: Callable[..., Any] = asyncio.run
            with contextlib.suppress(ImportError):
                import uvloop
                runner = uvloop.run
            phases: dict[int, dict[str, float]] = {}

            async def go() -> None:
                try:
                    for c in args.concurrency:
                        streams = BATCH_AT_1 if c == 1 else c
                        rounds = (max(1, args.requests // BATCH_AT_1) if c == 1
                                  else args.rounds)
                        log(f"concurrency {c}: {rounds} rounds of {streams} streams per "
                            f"target, after {args.warmup} warm-up batch(es) each ...")
                        phases[c] = await measure(targets, mock, c, rounds, streams,
                                                  args.warmup, log)
                finally:
                    for t in targets:
                        t.close()

            runner(go())
            time.sleep(0.5)
            server = next(t for t in targets if t.name == "showcase")
            assert server.proc is not None
            checks = {
                "recorded": recorded(server.proc.url, server.measured),
                "mock_stats": _get_json(mock.url + "/mock/stats"),
                "sockets": {t.name: t.proc.sockets() for t in targets if t.proc},
                "threads": {t.name: t.proc.threads() for t in targets if t.proc},
                "healthz": _get_json(server.proc.url + "/healthz"),
            }
            m = machine(workdir)
        finally:
            for target in targets:
                if target.proc is not None:
                    target.proc.stop()
            mock.stop()
    rows = [summarize(t, c) for c in args.concurrency for t in targets]
    for c in args.concurrency:
        direct = next(r for r in rows if r.concurrency == c and r.target == "direct")
        for r in rows:
            if r.concurrency == c:
                r.added_ttft_p50 = r.ttft_p50 - direct.ttft_p50
                r.added_e2e_p50 = r.e2e_p50 - direct.e2e_p50
                r.added_ttft_p99 = r.ttft_p99 - direct.ttft_p99
    return {
        "machine": m, "started_utc": args.started,
        "litellm": _litellm_version(args.litellm) if args.litellm else None,
        "mock": {"ttft_ms": TTFT_MS, "itl_ms": ITL_MS, "tokens": TOKENS},
        "phases": phases, "rows": [vars(r) for r in rows], "checks": checks,
        "targets": {t.name: {"sent": t.sent, "reconnects": t.reconnects, "retries": t.retries,
                             "errors": dict(t.errors), "idle_cpu_ms_per_s": t.idle_cpu_ms_per_s}
                    for t in targets},
        "batches": {t.name: [dict(vars(b), cpu_ms_per_stream=b.cpu_ms_per_stream)
                             for b in t.batches] for t in targets},
    }


# -- report ------------------------------------------------------------------------------


def goals(result: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    rows = {(r["target"], r["concurrency"]): r for r in result["rows"]}
    out: list[tuple[str, str, bool | None]] = []
    one = rows.get(("showcase", 1))
    if one:
        out.append(("added TTFT p50 at 1 stream <= 3 ms",
                    f"{one['added_ttft_p50']:.2f} ms", one["added_ttft_p50"] <= 3))
    many, peer = rows.get(("showcase", 32)), rows.get(("litellm", 32))
    if many and peer:
        limit = peer["added_ttft_p50"] / 10
        out.append(("added TTFT p50 at 32 streams <= 1/10 of LiteLLM's",
                    f"{many['added_ttft_p50']:.2f} ms against {limit:.2f} ms "
                    f"(LiteLLM adds {peer['added_ttft_p50']:.2f} ms)",
                    many["added_ttft_p50"] <= limit))
    elif many:
        out.append(("added TTFT p50 at 32 streams <= 1/10 of LiteLLM's",
                    "not checked: LiteLLM did not run", None))
    for c in sorted({r["concurrency"] for r in result["rows"]}):
        row = rows.get(("showcase", c))
        if row:
            out.append((f"CPU <= 8 ms per 20-chunk stream at {c} stream(s)",
                        f"{row['cpu_ms_per_stream']:.2f} ms", row["cpu_ms_per_stream"] <= 8))
    return out


def report(result: dict[str, Any]) -> None:
    from _common import describe

    print(f"\nmachine: {describe(result['machine'])}; client, mock and every proxy share "
          f"its {result['machine']['nproc']} cores")
    print(f"mock: {TTFT_MS} ms to the first token, then {TOKENS} chunks {ITL_MS} ms apart"
          + (f"; LiteLLM {result['litellm']}" if result["litellm"] else "; LiteLLM not run"))
    for c, phase in result["phases"].items():
        rows = [r for r in result["rows"] if r["concurrency"] == c]
        print(f"\nconcurrency {c}: {phase['seconds']:.0f} s, machine idle "
              f"{phase['idle_pct']:.0f} %, steal {phase['steal_pct']:.1f} %")
        print(f"{'target':<10}{'streams':>8}{'ok':>6}{'TTFT p50':>10}{'p90':>8}{'p99':>8}"
              f"{'E2E p50':>9}{'p90':>8}{'p99':>8}{'+TTFT':>8}{'+E2E':>8}{'+TTFT99':>9}"
              f"{'cpu/str':>9}{'total':>7}{'stat':>6}{'mock':>6}{'client':>7}")
        print(f"{'':<10}{'':>8}{'':>6}{'ms':>10}{'ms':>8}{'ms':>8}{'ms':>9}{'ms':>8}{'ms':>8}"
              f"{'p50 ms':>8}{'p50 ms':>8}{'ms':>9}{'ms':>9}{'ms':>7}{'ms':>6}{'ms':>6}{'ms':>7}")
        for r in rows:
            print(f"{r['target']:<10}{r['streams']:>8}{r['good']:>6}{r['ttft_p50']:>10.2f}"
                  f"{r['ttft_p90']:>8.2f}{r['ttft_p99']:>8.2f}{r['e2e_p50']:>9.2f}"
                  f"{r['e2e_p90']:>8.2f}{r['e2e_p99']:>8.2f}{r['added_ttft_p50']:>8.2f}"
                  f"{r['added_e2e_p50']:>8.2f}{r['added_ttft_p99']:>9.2f}"
                  f"{r['cpu_ms_per_stream']:>9.2f}{r['cpu_ms_per_stream_total']:>7.2f}"
                  f"{r['ticks_cpu_ms_per_stream']:>6.2f}"
                  f"{r['mock_cpu_ms_per_stream']:>6.2f}{r['client_cpu_ms_per_stream']:>7.2f}")
        show = next((r for r in rows if r["target"] == "showcase"), None)
        for other in ("bare", "litellm"):
            o = next((r for r in rows if r["target"] == other), None)
            if show and o and min(o["added_ttft_p50"], o["added_e2e_p50"],
                                  o["cpu_ms_per_stream"]) > 0:
                print(f"  showcase / {other}: added TTFT p50 "
                      f"{show['added_ttft_p50'] / o['added_ttft_p50']:.2f}x, added E2E p50 "
                      f"{show['added_e2e_p50'] / o['added_e2e_p50']:.2f}x, CPU per stream "
                      f"{show['cpu_ms_per_stream'] / o['cpu_ms_per_stream']:.2f}x")
    print()
    for name, t in result["targets"].items():
        notes = [f"{t['sent']} requests sent (warm-up included)",
                 f"idle CPU {t['idle_cpu_ms_per_s']:.2f} ms/s"]
        if t["reconnects"] or t["retries"]:
            notes.append(f"{t['reconnects']} reconnects, {t['retries']} retries")
        print(f"{name}: " + "; ".join(notes))
        for error, count in t["errors"].items():
            print(f"    ! {count} x {error}")
    checks = result["checks"]
    rec = checks["recorded"]
    sent = result["targets"]["showcase"]["sent"]
    print(f"showcase log: {rec['events']} request_measured events for {sent} proxied requests, "
          f"statuses {rec['statuses']}, chunks {rec['chunks']}; healthz {checks['healthz']}")
    for c, phase in rec["phases"].items():
        print(f"  as showcase measured them (from its send upstream), c={c}: TTFT p50 "
              f"{phase['ttft_ms_p50']:.2f} ms, E2E p50 {phase['e2e_ms_p50']:.2f} ms, "
              f"its own queue p50 {phase['queue_ms_p50']:.2f} ms, p99 "
              f"{phase['queue_ms_p99']:.2f} ms ({phase['events']} events)")
    print(f"mock after the run: {checks['mock_stats']}; requests sent to it through all "
          f"targets: {sum(t['sent'] for t in result['targets'].values())}")
    print(f"open sockets after the run: {checks['sockets']}; threads: {checks['threads']}")
    print()
    for name, value, met in goals(result):
        verdict = "not checked" if met is None else ("met" if met else "NOT met")
        print(f"goal: {name}: {value}: {verdict}")


# -- main --------------------------------------------------------------------------------


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-bare":
        return serve_bare(sys.argv[2])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--litellm", default=shutil.which("litellm"),
                        help="the litellm executable (default: litellm on PATH; none: skip)")
    parser.add_argument("--requests", type=int, default=200,
                        help="requests per target at concurrency 1 (200)")
    parser.add_argument("--rounds", type=int, default=20,
                        help="rounds of 32 (or N) concurrent streams per target (20)")
    parser.add_argument("--concurrency", default="1,32",
                        help="comma-separated concurrencies (1,32)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="untimed batches per target before each concurrency (2)")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if not all(1 <= c <= 256 for c in args.concurrency):
        parser.error("--concurrency: each from 1 to 256")
    if not 1 <= args.requests <= MAX_REQUESTS or not 1 <= args.rounds <= MAX_ROUNDS:
        parser.error(f"--requests 1..{MAX_REQUESTS}, --rounds 1..{MAX_ROUNDS}")
    args.warmup = max(0, min(args.warmup, 10))
    if args.no_litellm:
        args.litellm = None
    elif args.litellm and shutil.which(args.litellm) is None:
        print(f"LiteLLM skipped: {args.litellm} is not an executable", file=sys.stderr)
        args.litellm = None
    elif not args.litellm:
        print("LiteLLM skipped: no litellm executable (install it apart, e.g. python3 -m venv "
              "/tmp/litellm-venv && /tmp/litellm-venv/bin/pip install 'litellm[proxy]', "
              "then pass --litellm /tmp/litellm-venv/bin/litellm)", file=sys.stderr)
    args.started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    from _common import stop_on_sigterm

    with stop_on_sigterm():
        result = run(args)
    report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; the processes and temporary files are gone", file=sys.stderr)
        sys.exit(130)
