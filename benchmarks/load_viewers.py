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
import multiprocessing as mp
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from array import array
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import websockets
from _common import describe, machine, stop_on_sigterm

from showcase.showfile import sample_show_path

OPERATOR = "bench-operator-token"
SEQ = re.compile(rb'"seq":(\d+)')
MAX_VIEWERS = 20_000
MAX_EVENTS = 1_000
HERE = Path(__file__).resolve().parent


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# -- viewers (worker processes) ------------------------------------------------------


def viewer_process(url: str, count: int, pipe: Connection) -> None:
    raise_fd_limit()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us through the pipe
    try:
        import uvloop
        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(_viewers(url, count, pipe))


async def _viewers(url: str, count: int, pipe: Connection) -> None:
    seqs, times = array("q"), array("d")
    ready = asyncio.Event()
    connected = 0
    failed = 0
    gate = asyncio.Semaphore(200)
    stop = asyncio.Event()

    async def viewer() -> None:
        nonlocal connected, failed
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
                    seqs.append(int(found.group(1)))
                    times.append(now)
        except Exception:
            failed += 1
            if connected + failed == count:
                ready.set()

    tasks = [asyncio.ensure_future(viewer()) for _ in range(count)]
    await ready.wait()
    pipe.send(("ready", connected, failed))
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, pipe.recv)  # "stop"
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    pipe.send(("done", seqs.tobytes(), times.tobytes()))


# -- targets ----------------------------------------------------------------------------


class Target:
    name = ""
    proc: subprocess.Popen[str]
    ws_url = ""

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

    def __init__(self, data: Path, extra: list[str], profile: str | None = None) -> None:
        show = data.parent / "show.toml"
        show.write_text(sample_show_path().read_text(encoding="utf-8")
                        + "\n[proxy]\nhealth_interval = 0\n", encoding="utf-8")
        env = {**os.environ, "SHOWCASE_OPERATOR_TOKEN": OPERATOR, "PYTHONUNBUFFERED": "1",
               "SHOWCASE_PRESENTER_TOKEN": "bench-presenter-token",
               "SHOWCASE_JUDGE_TOKEN": "bench-judge-token-x"}
        # --profile: the server runs under cProfile and writes its stats when it stops.
        run = ("raise SystemExit(main())" if profile is None else
               "import cProfile; p = cProfile.Profile(); p.enable()\n"
               f"try: main()\nfinally: p.disable(); p.dump_stats({profile!r})")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import resource as r; s, h = r.getrlimit(r.RLIMIT_NOFILE); "
             "r.setrlimit(r.RLIMIT_NOFILE, (h, h)); from showcase.cli import main\n" + run,
             "serve", str(show), "--port", "0", "--data", str(data),
             *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
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

    async def open(self) -> None:
        self.client = httpx.AsyncClient(base_url=self.url, timeout=30,
                                        headers={"Authorization": f"Bearer {OPERATOR}"})

    async def publish(self, i: int) -> tuple[int, float, float]:
        sent = time.monotonic()
        response = await self.client.post("/api/scores", json={
            "criterion": "benchmark", "team": "lg", "value": i % 90, "reason": "load"})
        acked = time.monotonic()
        response.raise_for_status()
        return int(response.json()["seq"]), sent, acked

    async def close(self) -> None:
        await self.client.aclose()


# -- one run ------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def measure(target: Target, viewers: int, procs: int, events: int, interval: float,
            timeout: float) -> dict[str, Any]:
    started = time.monotonic()
    pipes, workers = [], []
    for n in range(procs):
        count = viewers // procs + (1 if n < viewers % procs else 0)
        parent, child = mp.Pipe()
        worker = mp.Process(target=viewer_process, args=(target.ws_url, count, child),
                            daemon=True)
        worker.start()
        pipes.append(parent)
        workers.append(worker)
    connected = failed = 0
    for pipe in pipes:
        if not pipe.poll(timeout):
            raise RuntimeError(f"viewers not connected within {timeout} s")
        _, ok, bad = pipe.recv()
        connected += ok
        failed += bad
    connect_s = time.monotonic() - started
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

    mem_before = target.memory_kib()
    cpu_before = target.cpu_seconds()
    wall_before = time.monotonic()
    published = asyncio.run(publish_all())
    time.sleep(min(2.0, interval * 4))  # the last event's fan-out
    cpu = target.cpu_seconds() - cpu_before
    wall = time.monotonic() - wall_before
    mem_after = target.memory_kib()
    for pipe in pipes:
        pipe.send("stop")
    acked = {seq: ack for seq, _, ack in published}
    sent = {seq: at for seq, at, _ in published}
    latencies: list[float] = []
    from_send: list[float] = []
    for pipe in pipes:
        _, raw_seqs, raw_times = pipe.recv()
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
        "connect_s": round(connect_s, 1), "events": events,
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
    }


def steal_idle() -> tuple[int, int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields), fields[3] + fields[4], fields[7] if len(fields) > 7 else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--targets", default="bare,showcase",
                        help="in order, from bare, bare-plain (the bare server without "
                             "permessage-deflate) and showcase")
    parser.add_argument("--profile", metavar="PATH",
                        help="run showcase under cProfile and write its stats to PATH")
    args = parser.parse_args()
    if not 1 <= args.viewers <= MAX_VIEWERS or not 1 <= args.events <= MAX_EVENTS:
        parser.error(f"at most {MAX_VIEWERS} viewers and {MAX_EVENTS} events")
    limit = raise_fd_limit()
    if args.viewers // args.procs + 100 > limit:
        parser.error(f"the open-files limit is {limit}: use more --procs")
    tmp = Path(tempfile.mkdtemp(prefix="load-viewers-"))
    print(f"machine: {describe(machine(tmp))}; open files {limit}", flush=True)
    results = []
    with stop_on_sigterm():
        for name in args.targets.split(","):
            target: Target = (Bare(8765 + os.getpid() % 1000, name == "bare")
                              if name in ("bare", "bare-plain")
                              else Showcase(tmp / f"data-{name}", [], args.profile))
            try:
                total0, idle0, steal0 = steal_idle()
                result = measure(target, args.viewers, args.procs, args.events,
                                 args.interval, args.timeout)
                total1, idle1, steal1 = steal_idle()
                span = max(1, total1 - total0)
                result["machine_idle_pct"] = round(100 * (idle1 - idle0) / span)
                result["steal_pct"] = round(100 * (steal1 - steal0) / span)
            finally:
                target.stop()
            print(result, flush=True)
            results.append(result)
    ours = results[-1]
    for bare in results[:-1]:
        if not (bare["send_p99_ms"] and ours["send_p99_ms"]):
            continue
        # From the send, not the ack: both servers answer after their fan-out, so an
        # ack-based p99 can be negative and its ratio says nothing.
        print(f"{ours['target']} / {bare['target']}: send-to-receipt p50 "
              f"x{ours['send_p50_ms'] / bare['send_p50_ms']:.2f}, "
              f"p99 x{ours['send_p99_ms'] / bare['send_p99_ms']:.2f}, "
              f"CPU per message x{ours['us_per_message'] / bare['us_per_message']:.2f}",
              flush=True)


if __name__ == "__main__":
    main()
