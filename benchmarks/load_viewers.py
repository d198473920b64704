"""N WebSocket viewers from several processes: from an event's append to every receipt.

For each target in turn (by default a bare ``websockets.broadcast()`` server, then
``showcase serve``, in the same run and with the same load generator):

1. start the target in its own process on loopback;
2. open ``--viewers`` WebSocket connections, split over ``--procs`` worker processes
   (at most 200 connecting at a time per process), and wait until every one has its
   first message;
3. append ``--events`` events ``--interval`` seconds apart: on showcase a command
   (``POST /api/scores``, the public view receives a ``sealed`` message); on the bare
   server a message sent on ``/publish``. The acknowledgement (the 201, or the bare
   server's "ok") is the event's append time;
4. every viewer stamps each message on receipt (``time.monotonic()``, one clock for all
   processes of the machine); latency = receipt - acknowledgement, over every viewer and
   every event (negative where a viewer got it before the publisher read the answer);
5. the target's CPU time (utime + stime from /proc/PID/stat) over the event phase, divided
   by the messages delivered, and its memory (VmRSS, VmHWM from /proc/PID/status).

Bounded: loopback only, at most 20,000 viewers, 1,000 events and ``--timeout`` seconds a
target. The load generator shares the machine's cores with the target, which the figures
include: compare targets within one run, not with another machine.

    ulimit -n 65536   # where the hard limit allows; the script raises the soft limit itself
    .venv/bin/python benchmarks/load_viewers.py --viewers 10000 --procs 4 --events 40
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing as mp
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import websockets
from _common import describe, machine, stop_on_sigterm

from showcase.core.showfile import sample_show_path

OPERATOR = "bench-operator-token"
SEQ = re.compile(rb'"seq":(\d+)')
TICK = b'"type":"tick"'

MAX_VIEWERS = 30_000
MAX_FILL = 10_000  # long events appended before the viewers connect (--fill)
MAX_EVENTS = 1_000
HERE = Path(__file__).resolve().parent


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# -- viewers (worker processes) ------------------------------------------------------


def viewer_process(url: str, count: int, pipe: Connection, gate: int) -> None:
    raise_fd_limit()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us through the pipe
    try:
        import uvloop
        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(_viewers(url, count, pipe, gate))


async def _viewers(url: str, count: int, pipe: Connection, gate_size: int) -> None:
    seqs, times = array("q"), array("d")
    ready = asyncio.Event()
    connected = 0
    failed = 0
    errors: dict[str, int] = {}
    # at most gate_size handshakes at a time; 0: all at once (--burst)
    gate: Any = asyncio.Semaphore(gate_size) if gate_size else contextlib.nullcontext()
    stop = asyncio.Event()
    orders: list[array[int]] = []  # each viewer's seqs, in the order they arrived
    ticks: list[list[int]] = []  # each viewer's count of live tick frames
    gaps = array("d")  # time between a viewer's tick frames, within a demo (< 1 s)

    async def viewer() -> None:
        nonlocal connected, failed
        mine = array("q")
        orders.append(mine)
        tick = [0]
        ticks.append(tick)
        last_tick = 0.0
        try:
            async with gate:
                ws = await websockets.connect(url, max_size=None, ping_interval=None,
                                              open_timeout=120, close_timeout=1)
                await ws.recv()  # the snapshot: this viewer is in
            connected += 1
            if connected + failed == count:
                ready.set()
            async for message in ws:
                now = time.monotonic()
                data = message.encode() if isinstance(message, str) else message
                found = SEQ.search(data, 0, 40)
                if found:
                    seq = int(found.group(1))
                    seqs.append(seq)
                    times.append(now)
                    mine.append(seq)
                elif TICK in data[:32]:
                    tick[0] += 1
                    if now - last_tick < 1.0:
                        gaps.append(now - last_tick)
                    last_tick = now
        except Exception as exc:
            if not stop.is_set():
                failed += 1
                name = type(exc).__name__
                errors[name] = errors.get(name, 0) + 1
                if connected + failed == count:
                    ready.set()

    tasks = [asyncio.ensure_future(viewer()) for _ in range(count)]
    await ready.wait()
    pipe.send(("ready", connected, failed, errors))
    loop = asyncio.get_running_loop()
    _, published = await loop.run_in_executor(None, pipe.recv)  # ("stop", published seqs)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    # Every viewer saw the same order if each saw exactly the published seqs, in order.
    wanted = set(published)
    same = sum(1 for order in orders if [s for s in order if s in wanted] == published)
    pipe.send(("done", seqs.tobytes(), times.tobytes(), same, [t[0] for t in ticks],
               gaps.tobytes()))


# -- targets ----------------------------------------------------------------------------


class Target:
    name = ""
    proc: subprocess.Popen[str]
    ws_url = ""

    @property
    def ws_urls(self) -> list[str]:
        """Where viewers connect: worker process n takes ws_urls[n % len]."""
        return [self.ws_url]

    def prepare(self) -> dict[str, Any]:
        """Before any viewer connects (stuck viewers, a fill phase): figures to report."""
        return {}

    def sample(self) -> dict[str, float]:
        """Counters read every half second during the event phase (showcase's /metrics)."""
        return {}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_kib(self) -> dict[str, int]:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return {k: int(re.search(rf"^{k}:\s+(\d+) kB", status, re.M).group(1))  # type: ignore[union-attr]
                for k in ("VmRSS", "VmHWM")}

    async def publish(self, i: int) -> tuple[int, float, float]:
        """Append event i: (seq, time sent, time acknowledged)."""
        raise NotImplementedError

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None


class Bare(Target):
    name = "bare websockets.broadcast()"

    def __init__(self, port: int, deflate: bool = True) -> None:
        if not deflate:
            self.name += " without permessage-deflate"
        self.proc = subprocess.Popen([sys.executable, str(HERE / "broadcast_server.py"),
                                      "--port", str(port), *([] if deflate else ["--no-deflate"])],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.proc.stdout.readline()
        self.ws_url = f"ws://127.0.0.1:{port}/ws"
        self.publisher: Any = None

    async def open(self) -> None:
        self.publisher = await websockets.connect(self.ws_url.replace("/ws", "/publish"))

    async def publish(self, i: int) -> tuple[int, float, float]:
        seq = 1_000_000 + i
        message = f'{{"seq":{seq},"ts":{time.time():.6f},"type":"sealed","data":{{}}}}'
        sent = time.monotonic()
        await self.publisher.send(message)
        await self.publisher.recv()
        return seq, sent, time.monotonic()

    async def close(self) -> None:
        await self.publisher.close()


class Showcase(Target):
    name = "showcase serve"

    def __init__(self, data: Path, extra: list[str], profile: str | None = None,
                 stuck: int = 0, fill: int = 0, demo: bool = False) -> None:
        self.stuck = stuck
        self.fill = fill
        self.demo = demo
        if demo:
            self.name = "showcase demo (five simulated teams streaming)"
        self.stuck_sockets: list[socket.socket] = []
        if stuck:
            self.name += f" + {stuck} stuck viewers"
        show = data.parent / "show.toml"
        data.parent.mkdir(parents=True, exist_ok=True)
        show.write_text(sample_show_path().read_text(encoding="utf-8")
                        + "\n[proxy]\nhealth_interval = 0\n", encoding="utf-8")
        env = {**os.environ, "SHOWCASE_OPERATOR_TOKEN": OPERATOR, "PYTHONUNBUFFERED": "1",
               "SHOWCASE_PRESENTER_TOKEN": "bench-presenter-token"}
        # --profile: the server runs under cProfile and writes its stats when it stops.
        run = ("raise SystemExit(main())" if profile is None else
               "import cProfile; p = cProfile.Profile(); p.enable()\n"
               f"try: main()\nfinally: p.disable(); p.dump_stats({profile!r})")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import resource as r; s, h = r.getrlimit(r.RLIMIT_NOFILE); "
             "r.setrlimit(r.RLIMIT_NOFILE, (h, h)); from showcase.cli import main\n" + run,
             *(["demo"] if demo else ["serve", str(show)]), "--port", "0", "--data", str(data),
             # every viewer comes from this machine's address: no per-address limit
             "--max-connections-per-address", "0", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            found = re.search(r"serving .* on (http://\S+)", line)
            if found:
                self.url = found.group(1)
                break
        else:
            raise RuntimeError("showcase did not start")
        self.ws_url = self.url.replace("http://", "ws://") + "/ws"
        self.client: Any = None
        # the demo makes its own tokens (it prints them, and keeps them in its data dir)
        self.token = (json.loads((data / "tokens.json").read_text())["operator"] if demo
                      else OPERATOR)

    async def open(self) -> None:
        self.client = httpx.AsyncClient(base_url=self.url, timeout=30,
                                        headers={"Authorization": f"Bearer {self.token}"})

    async def publish(self, i: int) -> tuple[int, float, float]:
        if self.demo:
            return await self._start_demo(i)
        sent = time.monotonic()
        response = await self.client.post("/api/scores", json={
            "criterion": "benchmark", "team": "lg", "value": i % 90, "reason": "load"})
        acked = time.monotonic()
        response.raise_for_status()
        return int(response.json()["seq"]), sent, acked

    async def close(self) -> None:
        await self.client.aclose()

    async def _start_demo(self, i: int) -> tuple[int, float, float]:
        """The next demo, once the one before has ended: the event is its demo_started."""
        deadline = time.monotonic() + 60
        while True:
            sent = time.monotonic()
            response = await self.client.post("/api/demo", json={
                "prompt": f"Demo {i}: explain in three sentences why sovereign AI matters."})
            acked = time.monotonic()
            if response.status_code != 409 or acked > deadline:
                response.raise_for_status()
                return int(response.json()["seq"]), sent, acked
            await asyncio.sleep(0.1)  # still running

    def sample(self) -> dict[str, float]:
        return {name: self.metric(f"showcase_{name}") for name in
                ("subscriber_backlog_max", "live_frames_total", "subscriber_resyncs_total")}

    def metric(self, name: str) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=30).text
        found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        if found is None:
            raise RuntimeError(f"/metrics has no {name}")
        return float(found.group(1))

    def prepare(self) -> dict[str, Any]:
        """Before the viewers connect: ``stuck`` operator connections with a 4 KiB receive
        buffer that read nothing after the handshake, then ``fill`` long events (500
        Korean characters of reason, ~1.6 KB on the operator view), enough to take every
        stuck viewer past its bound (its queue dropped for a snapshot it never reads).
        A run without stuck viewers gets the same fill, so that RSS compares like with
        like: the log's recent history in memory grows with the fill either way."""
        if not self.fill:
            return {}
        host, port = self.url.removeprefix("http://").split(":")
        for _ in range(self.stuck):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # no autotuning
            sock.connect((host, int(port)))
            key = base64.b64encode(os.urandom(16)).decode()
            sock.sendall((f"GET /ws?token={OPERATOR} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                          "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                          ).encode())
            if sock.recv(12) != b"HTTP/1.1 101":
                raise RuntimeError("a stuck viewer's handshake was refused")
            self.stuck_sockets.append(sock)
        started = time.monotonic()
        with httpx.Client(base_url=self.url, timeout=30,
                          headers={"Authorization": f"Bearer {OPERATOR}"}) as client:
            for i in range(self.fill):
                client.post("/api/scores", json={
                    "criterion": "benchmark", "team": "lg", "value": i % 90,
                    "reason": f"{i} " + "가" * 490}).raise_for_status()
        resyncs = int(self.metric("showcase_subscriber_resyncs_total"))
        if resyncs < self.stuck:
            raise RuntimeError(f"{self.fill} long events took {resyncs} of {self.stuck} stuck "
                               "viewers past their bound: raise --fill")
        return {"stuck": self.stuck, "fill_events": self.fill,
                "fill_s": round(time.monotonic() - started, 1), "resyncs": resyncs,
                "backlog_max": int(self.metric("showcase_subscriber_backlog_max")),
                "rss_mib_after_fill": round(self.memory_kib()["VmRSS"] / 1024, 1)}

    def stop(self) -> None:
        for sock in self.stuck_sockets:
            sock.close()
        super().stop()


class RedisServer:
    """A private redis-server, durable as a show runs it (AOF, fsync on every write)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(folder),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Cluster(Target):
    """Several ``showcase serve --redis`` nodes on one Redis: viewers spread over them,
    events appended on each in turn; CPU and memory are the nodes' sums."""

    def __init__(self, tmp: Path, nodes: int) -> None:
        self.redis = RedisServer(tmp / "redis")
        self.nodes: list[Showcase] = []
        try:
            for n in range(nodes):
                self.nodes.append(Showcase(tmp / f"node-{n}" / "data",
                                           ["--redis", self.redis.url]))
        except BaseException:
            self.stop()  # the nodes and the Redis started so far
            raise
        self.name = f"{nodes} x showcase serve --redis"
        self.proc = self.nodes[0].proc

    @property
    def ws_urls(self) -> list[str]:
        return [node.ws_url for node in self.nodes]

    def cpu_seconds(self) -> float:
        return sum(node.cpu_seconds() for node in self.nodes)

    def memory_kib(self) -> dict[str, int]:
        each = [node.memory_kib() for node in self.nodes]
        return {k: sum(m[k] for m in each) for k in ("VmRSS", "VmHWM")}

    async def open(self) -> None:
        for node in self.nodes:
            await node.open()

    async def publish(self, i: int) -> tuple[int, float, float]:
        return await self.nodes[i % len(self.nodes)].publish(i)

    async def close(self) -> None:
        for node in self.nodes:
            await node.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.redis.stop()


# -- one run ------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def measure(target: Target, viewers: int, procs: int, events: int, interval: float,
            timeout: float, gate: int = 200) -> dict[str, Any]:
    prepared = target.prepare()
    rss_connect0 = target.memory_kib()["VmRSS"]
    started = time.monotonic()
    pipes, workers = [], []
    urls = target.ws_urls
    for n in range(procs):
        count = viewers // procs + (1 if n < viewers % procs else 0)
        parent, child = mp.Pipe()
        worker = mp.Process(target=viewer_process,
                            args=(urls[n % len(urls)], count, child, gate), daemon=True)
        worker.start()
        pipes.append(parent)
        workers.append(worker)
    connected = failed = 0
    errors: dict[str, int] = {}
    for pipe in pipes:
        if not pipe.poll(timeout):
            raise RuntimeError(f"viewers not connected within {timeout} s")
        _, ok, bad, why = pipe.recv()
        connected += ok
        failed += bad
        for name, n in why.items():
            errors[name] = errors.get(name, 0) + n
    connect_s = time.monotonic() - started
    hwm_connect = target.memory_kib()["VmHWM"]
    time.sleep(1.0)  # let the connect burst settle before measuring

    async def publish_all() -> list[tuple[int, float, float]]:
        await target.open()
        try:
            out = []
            for i in range(events):
                out.append(await target.publish(i))
                await asyncio.sleep(interval)
            return out
        finally:
            await target.close()

    samples: list[dict[str, float]] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.5):
            with contextlib.suppress(httpx.HTTPError):
                samples.append(target.sample())

    mem_before = target.memory_kib()
    first = target.sample()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu_before = target.cpu_seconds()
    wall_before = time.monotonic()
    published = asyncio.run(publish_all())
    time.sleep(min(2.0, interval * 4))  # the last event's fan-out
    cpu = target.cpu_seconds() - cpu_before
    wall = time.monotonic() - wall_before
    sampling.set()
    sampler.join()
    last = target.sample()
    mem_after = target.memory_kib()
    for pipe in pipes:
        pipe.send(("stop", sorted(seq for seq, _, _ in published)))
    acked = {seq: ack for seq, _, ack in published}
    sent = {seq: at for seq, at, _ in published}
    latencies: list[float] = []
    from_send: list[float] = []
    same_order = 0
    ticks: list[int] = []
    gaps = array("d")
    for pipe in pipes:
        _, raw_seqs, raw_times, same, their_ticks, raw_gaps = pipe.recv()
        same_order += same
        ticks += their_ticks
        gaps.frombytes(raw_gaps)
        seqs, times = array("q"), array("d")
        seqs.frombytes(raw_seqs)
        times.frombytes(raw_times)
        for s, t in zip(seqs, times, strict=True):
            if s in acked:
                latencies.append(t - acked[s])
                from_send.append(t - sent[s])
    for worker in workers:
        worker.join(10)
    latencies.sort()
    from_send.sort()
    delivered = len(latencies)
    ack_ms = sorted((a - s) * 1000 for _, s, a in published)
    return {
        "target": target.name, "viewers": connected, "failed": failed,
        **({"errors": errors} if errors else {}),
        "connect_s": round(connect_s, 1), "events": events,
        "same_order": same_order,
        "delivered": delivered, "expected": connected * events,
        "p50_ms": round(pct(latencies, 0.50) * 1000, 1) if latencies else None,
        "p99_ms": round(pct(latencies, 0.99) * 1000, 1) if latencies else None,
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
        "send_p50_ms": round(pct(from_send, 0.50) * 1000, 1) if from_send else None,
        "send_p99_ms": round(pct(from_send, 0.99) * 1000, 1) if from_send else None,
        "ack_p50_ms": round(pct(ack_ms, 0.5), 2), "ack_max_ms": round(ack_ms[-1], 2),
        "cpu_s": round(cpu, 2), "wall_s": round(wall, 1),
        "us_per_message": round(cpu / delivered * 1e6, 2) if delivered else None,
        "messages_per_cpu_s": round(delivered / cpu) if cpu else None,
        "rss_mib_before": round(mem_before["VmRSS"] / 1024, 1),
        "rss_mib_after": round(mem_after["VmRSS"] / 1024, 1),
        "hwm_mib": round(mem_after["VmHWM"] / 1024, 1),
        "rss_mib_before_viewers": round(rss_connect0 / 1024, 1),
        **live_figures(first, last, samples, ticks, wall, sorted(gaps)),
        "hwm_mib_connect": round(hwm_connect / 1024, 1),
        **prepared,
    }


def live_figures(first: dict[str, float], last: dict[str, float],
                 samples: list[dict[str, float]], ticks: list[int], wall: float,
                 gaps: list[float]) -> dict[str, Any]:
    """Tick frames the server sent in the event phase, what share each viewer got and
    the time between a viewer's frames; the longest queue any subscriber had in the
    half-second samples."""
    if not first:
        return {}
    frames = last["live_frames_total"] - first["live_frames_total"]
    out: dict[str, Any] = {
        "backlog_max_sampled": max((s["subscriber_backlog_max"] for s in samples), default=0),
        "resyncs_in_phase": int(last["subscriber_resyncs_total"]
                                - first["subscriber_resyncs_total"])}
    if frames:
        share = sorted(t / frames for t in ticks)
        out.update({"server_frames": int(frames), "server_fps": round(frames / wall, 2),
                    "viewer_frames_min_share": round(share[0], 3),
                    "viewer_frames_median_share": round(share[len(share) // 2], 3)})
    if gaps:
        out.update({"frame_gap_p50_ms": round(pct(gaps, 0.5) * 1000, 1),
                    "frame_gap_p99_ms": round(pct(gaps, 0.99) * 1000, 1)})
    return out


def steal_idle() -> tuple[int, int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields), fields[3] + fields[4], fields[7] if len(fields) > 7 else 0


def make_target(name: str, args: argparse.Namespace, tmp: Path, run: int) -> Target:
    if name in ("bare", "bare-plain"):
        return Bare(8765 + (os.getpid() + run) % 1000, name == "bare")
    if name == "showcase-redis":
        return Cluster(tmp / f"cluster-{run}", args.nodes)
    if name == "showcase-demo":
        return Showcase(tmp / f"demo-{run}" / "data", [], args.profile, demo=True)
    return Showcase(tmp / f"data-{name}-{run}", [], args.profile,
                    stuck=args.stuck if name == "showcase-stuck" else 0, fill=args.fill)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--targets", default="bare,showcase",
                        help="in order, from bare, bare-plain (the bare server without "
                             "permessage-deflate), showcase, showcase-stuck (showcase with "
                             "--stuck viewers past their bound before the viewers connect) "
                             "showcase-redis (--nodes nodes on a private Redis) and "
                             "showcase-demo (showcase demo: its events are demos, one after "
                             "another, with five simulated teams streaming tick frames)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the targets in turns this many times (1)")
    parser.add_argument("--stuck", type=int, default=1,
                        help="stuck viewers of the showcase-stuck target (1)")
    parser.add_argument("--fill", type=int, default=0,
                        help="long events appended before the viewers connect, on the "
                             "showcase targets (showcase-stuck needs enough of them to take "
                             "its stuck viewers past their bound; ~3,000 here)")
    parser.add_argument("--nodes", type=int, default=3,
                        help="nodes of the showcase-redis target (3)")
    parser.add_argument("--burst", action="store_true",
                        help="every viewer of a process connects at once, not 200 at a time")
    parser.add_argument("--profile", metavar="PATH",
                        help="run showcase under cProfile and write its stats to PATH")
    args = parser.parse_args()
    if not 1 <= args.viewers <= MAX_VIEWERS or not 1 <= args.events <= MAX_EVENTS:
        parser.error(f"at most {MAX_VIEWERS} viewers and {MAX_EVENTS} events")
    if (not 0 <= args.stuck <= 100 or not 1 <= args.nodes <= 5 or not 1 <= args.repeat <= 5
            or not 0 <= args.fill <= MAX_FILL):
        parser.error(f"--stuck 0..100, --nodes 1..5, --repeat 1..5, --fill 0..{MAX_FILL}")
    if "showcase-stuck" in args.targets.split(",") and not (args.stuck and args.fill):
        parser.error("showcase-stuck needs --stuck N and --fill M (e.g. --stuck 5 --fill 3000)")
    names = args.targets.split(",")
    unknown = set(names) - {"bare", "bare-plain", "showcase", "showcase-stuck", "showcase-redis",
                            "showcase-demo"}
    if unknown:
        parser.error(f"unknown target {sorted(unknown)[0]!r}")
    limit = raise_fd_limit()
    if args.viewers // args.procs + 100 > limit:
        parser.error(f"the open-files limit is {limit}: use more --procs")
    per_server = args.viewers // (args.nodes if names == ["showcase-redis"] else 1)
    if per_server + 200 > limit:
        parser.error(f"the open-files limit is {limit}: a server cannot hold {per_server} "
                     "viewers (spread them over --nodes with showcase-redis)")
    tmp = Path(tempfile.mkdtemp(prefix="load-viewers-"))
    print(f"machine: {describe(machine(tmp))}; open files {limit}", flush=True)
    results = []
    with stop_on_sigterm():
        for run in range(args.repeat):
            for name in names:
                target = make_target(name, args, tmp, run)
                try:
                    total0, idle0, steal0 = steal_idle()
                    result = measure(target, args.viewers, args.procs, args.events,
                                     args.interval, args.timeout, 0 if args.burst else 200)
                    total1, idle1, steal1 = steal_idle()
                    span = max(1, total1 - total0)
                    result["machine_idle_pct"] = round(100 * (idle1 - idle0) / span)
                    result["steal_pct"] = round(100 * (steal1 - steal0) / span)
                finally:
                    target.stop()
                result["run"] = run + 1
                result["kind"] = name
                print(result, flush=True)
                results.append(result)
    summarise(results)


def summarise(results: list[dict[str, Any]]) -> None:
    """Ratios within each run: showcase against the bare servers, stuck against not."""
    for run in sorted({r["run"] for r in results}):
        mine = {r["kind"]: r for r in results if r["run"] == run}
        ours = mine.get("showcase")
        for kind in ("bare", "bare-plain"):
            bare = mine.get(kind)
            if ours and bare and bare["send_p99_ms"] and ours["send_p99_ms"]:
                # From the send, not the ack: both servers answer after their fan-out, so
                # an ack-based p99 can be negative and its ratio says nothing.
                print(f"run {run}: {ours['target']} / {bare['target']}: send-to-receipt p50 "
                      f"x{ours['send_p50_ms'] / bare['send_p50_ms']:.2f}, "
                      f"p99 x{ours['send_p99_ms'] / bare['send_p99_ms']:.2f}, "
                      f"CPU per message x{ours['us_per_message'] / bare['us_per_message']:.2f}",
                      flush=True)
        stuck = mine.get("showcase-stuck")
        if ours and stuck and ours["send_p99_ms"] and stuck["send_p99_ms"]:
            extra = (f"; after the fill the stuck run's RSS was {stuck['rss_mib_after_fill']} "
                     f"MiB against {ours['rss_mib_after_fill']}, at the end "
                     f"{stuck['rss_mib_after']} against {ours['rss_mib_after']}"
                     if "rss_mib_after_fill" in ours else "")
            print(f"run {run}: with {stuck['stuck']} stuck viewers / without: the others' "
                  f"send-to-receipt p50 x{stuck['send_p50_ms'] / ours['send_p50_ms']:.2f}, "
                  f"p99 x{stuck['send_p99_ms'] / ours['send_p99_ms']:.2f}{extra}", flush=True)
    for r in results:
        if r["same_order"] != r["viewers"] or r["delivered"] != r["expected"]:
            print(f"run {r['run']} {r['target']}: {r['same_order']} of {r['viewers']} viewers "
                  f"saw every event in the published order; {r['delivered']} of "
                  f"{r['expected']} messages delivered", flush=True)


if __name__ == "__main__":
    main()
