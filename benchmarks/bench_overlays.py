"""Frames of the overlays in a real browser while five teams stream.

Starts ``showcase demo`` (the sample show, whose five simulated teams stream at their own
pace) in a fresh data directory, and opens each overlay in Debian's headless Chromium at
1920x1080, driven by Playwright. A thread keeps a live demo running: as soon as one ends,
the next starts (``POST /api/demo`` with the presenter token the demo prints).

For each page it records, over a window of ``--seconds``:

  frames    the intervals between requestAnimationFrame callbacks (a recorder injected
            before the page's own scripts; Chromium aligns them to its 60 Hz frame clock)
  long      long tasks (over 50 ms) reported by a PerformanceObserver
  busy      the main thread's busy time, and the counts of style recalculations and
            layouts, from the DevTools protocol's Performance.getMetrics

Each page is measured idle (no demo running), streaming, and streaming with the renderer's
CPU slowed down ``--throttle`` times (DevTools' CPU throttling: a slower machine, where a
page's main-thread work starts to cost frames), and each measurement is taken
twice: with the overlays of ``--before`` (a git revision; its files are served in place of
the checkout's through Playwright's request routing) and with the checkout's, alternating,
in one run. A blank page with only the recorder gives the machine's floor.

Headless Chromium on a shared CPU, without a GPU, is not OBS: read the ratios between rows
of one run, not the absolute figures.

    .venv/bin/python benchmarks/bench_overlays.py [--seconds 8] [--rounds 2] [--before REV]
        [--throttle 4] [--json]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from _common import describe, machine, stop_on_sigterm
from playwright.sync_api import Browser, BrowserContext, Route, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
FRAME_MS = 1000 / 60
PAGES = ["demo.html", "scoreboard.html", "ticker.html"]
OVERLAY_FILES = ["demo.html", "scoreboard.html", "ticker.html", "reveal.html",
                 "lower-third.html", "css/overlay.css", "js/lib/client.js", "js/lib/board.js"]
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".js": "text/javascript; charset=utf-8"}

# Injected before any of the page's scripts: every frame's interval, and long tasks.
RECORDER = """
(() => {
  const b = window.__bench = { deltas: [], long: [], last: 0, on: false };
  const frame = (t) => {
    if (!b.on) return;  // off: no callback of ours asks the page for frames
    if (b.last) b.deltas.push(t - b.last);
    b.last = t;
    requestAnimationFrame(frame);
  };
  b.start = () => { Object.assign(b, { deltas: [], long: [], last: 0, on: true });
                    requestAnimationFrame(frame); };
  b.stop = () => { b.on = false; return { deltas: b.deltas, long: b.long }; };
  try {
    new PerformanceObserver((list) => {
      if (b.on) for (const e of list.getEntries()) b.long.push(e.duration);
    }).observe({ type: "longtask", buffered: false });
  } catch (e) { /* no long task timing in this browser */ }
})();
"""
BLANK = "<!doctype html><meta charset=utf-8><title>blank</title><body></body>"


class Demo:
    """``showcase demo`` in a subprocess, with the URL and presenter token it prints."""

    def __init__(self, data: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "showcase", "demo", "--port", "0", "--data", str(data)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        assert self.proc.stdout is not None
        self.url = self.presenter = ""
        for line in self.proc.stdout:
            token = re.match(r"\s+presenter\s+(\S+)$", line)
            if token:
                self.presenter = token.group(1)
            served = re.search(r"serving .* on (http://\S+)", line)
            if served:
                self.url = served.group(1)
                break
        if not self.url or not self.presenter:
            self.stop()
            raise RuntimeError("showcase demo did not start")
        # Keep reading its output so that a full pipe never blocks the server.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Streamer(threading.Thread):
    """Keeps a live demo running: the next starts as soon as the last one has finished."""

    def __init__(self, demo: Demo) -> None:
        super().__init__(daemon=True)
        self.demo = demo
        self.streaming = threading.Event()
        self.stopping = threading.Event()
        self.started_demos = 0

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.demo.presenter}"}
        body = {"prompt": "Introduce your model to the audience in one paragraph.",
                "max_tokens": 256}
        with httpx.Client(base_url=self.demo.url, headers=headers, timeout=10) as client:
            while not self.stopping.is_set():
                if self.streaming.is_set():
                    r = client.post("/api/demo", json=body)
                    if r.status_code == 201:
                        self.started_demos += 1
                    elif r.status_code != 409:  # 409: the last one is still running
                        raise RuntimeError(r.text)
                time.sleep(0.05)

    def wait_idle(self) -> None:
        """Until the running demo, if any, has finished."""
        with httpx.Client(base_url=self.demo.url, timeout=10) as client:
            while True:
                demo = client.get("/api/demo").json()["demo"]
                if demo is None or demo["phase"] == "finished":
                    return
                time.sleep(0.1)


def old_files(revision: str) -> dict[str, bytes]:
    """The overlays' files as they were at a git revision."""
    files = {}
    for name in OVERLAY_FILES:
        shown = subprocess.run(["git", "show", f"{revision}:overlays/{name}"], cwd=ROOT,
                               capture_output=True, check=False)
        if shown.returncode == 0:
            files[name] = shown.stdout
    return files


def serve_old(context: BrowserContext, files: dict[str, bytes]) -> None:
    def handle(route: Route) -> None:
        path = route.request.url.split("/overlays/", 1)[1].split("?", 1)[0]
        if path in files:
            route.fulfill(status=200, body=files[path],
                          headers={"content-type": TYPES[Path(path).suffix],
                                   "cache-control": "no-store"})
        else:
            route.continue_()
    context.route("**/overlays/**", handle)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def measure(browser: Browser, url: str, seconds: float,
            files: dict[str, bytes] | None, throttle: float = 1) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    try:
        if files is not None:
            serve_old(context, files)
        context.add_init_script(RECORDER)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        if url == "blank":
            page.set_content(BLANK)
        else:
            page.goto(url)
        page.wait_for_timeout(1500)  # fonts, the state, the first frames
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        if throttle != 1:  # a slower machine: DevTools' CPU throttling of this renderer
            cdp.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
            page.wait_for_timeout(1000)

        def metrics() -> dict[str, float]:
            return {m["name"]: m["value"]
                    for m in cdp.send("Performance.getMetrics")["metrics"]}

        # First the page alone: its own main-thread work, with nothing of ours asking for
        # frames. Then with the frame recorder on (which makes every frame a main-thread
        # frame, as any requestAnimationFrame loop does).
        quiet0, t0 = metrics(), time.perf_counter()
        page.wait_for_timeout(seconds * 1000)
        quiet1, wall_quiet = metrics(), time.perf_counter() - t0
        page.evaluate("__bench.start()")
        t0 = time.perf_counter()
        page.wait_for_timeout(seconds * 1000)
        bench = page.evaluate("__bench.stop()")
        wall = time.perf_counter() - t0
        nodes = page.evaluate("document.getElementsByTagName('*').length")
        assert not errors, errors
    finally:
        context.close()
    deltas: list[float] = bench["deltas"]
    frames = len(deltas)
    dropped = sum(max(0, round(d / FRAME_MS) - 1) for d in deltas)

    def used(name: str) -> float:
        return quiet1[name] - quiet0[name]

    return {
        "frames": frames,
        "fps": round(frames / wall, 1),
        "median_ms": round(statistics.median(deltas), 2) if deltas else None,
        "p95_ms": round(pct(deltas, 95), 2) if deltas else None,
        "p99_ms": round(pct(deltas, 99), 2) if deltas else None,
        "max_ms": round(max(deltas), 2) if deltas else None,
        "over_16_7": round(sum(d > FRAME_MS * 1.5 for d in deltas) / max(frames, 1), 4),
        "over_33": round(sum(d > FRAME_MS * 2.5 for d in deltas) / max(frames, 1), 4),
        "dropped": dropped,
        "dropped_share": round(dropped / max(dropped + frames, 1), 4),
        "long_tasks": len(bench["long"]),
        "long_ms": round(sum(bench["long"]), 1),
        "busy_share": round(used("TaskDuration") / wall_quiet, 4),
        "script_ms": round(used("ScriptDuration") * 1000, 1),
        "style_ms": round(used("RecalcStyleDuration") * 1000, 1),
        "layout_ms": round(used("LayoutDuration") * 1000, 1),
        "styles": int(used("RecalcStyleCount")),
        "layouts": int(used("LayoutCount")),
        "nodes": nodes,
        "seconds": round(wall + wall_quiet, 2),
    }


def merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of one measurement: frame figures pooled by median, counts summed."""
    if len(runs) == 1:
        return runs[0]
    merged: dict[str, Any] = {}
    for key in runs[0]:
        values = [r[key] for r in runs if r[key] is not None]
        if key in ("frames", "dropped", "long_tasks", "styles", "layouts"):
            merged[key] = sum(values)
        elif key in ("seconds", "long_ms", "script_ms", "style_ms", "layout_ms"):
            merged[key] = round(sum(values), 2)
        else:
            merged[key] = round(statistics.median(values), 4) if values else None
    return merged


def run(args: argparse.Namespace, url: str, streamer: Streamer) -> list[dict[str, Any]]:
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    before = old_files(args.before)
    rows: list[dict[str, Any]] = []
    with sync_playwright() as p:
        # Pages served through request routing count as public documents, whose
        # connections to 127.0.0.1 Chromium would block as local network access.
        browser = p.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-features=LocalNetworkAccessChecks"])
        try:
            plan: list[tuple[str, str, str]] = [("blank", "idle", "-")]
            for page in args.pages:
                for condition in ("idle", "streaming", f"streaming, CPU / {args.throttle:g}"):
                    for variant in ("before", "after"):
                        plan.append((page, condition, variant))
            results: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
            for _ in range(args.rounds):
                for page, condition, variant in plan:
                    if condition.startswith("streaming"):
                        streamer.streaming.set()
                        time.sleep(0.5)
                    else:
                        streamer.streaming.clear()
                        streamer.wait_idle()
                    target = "blank" if page == "blank" else f"{url}/overlays/{page}"
                    files = before if variant == "before" else None
                    slower = args.throttle if "CPU" in condition else 1
                    result = measure(browser, target, args.seconds, files, slower)
                    results.setdefault((page, condition, variant), []).append(result)
                    print(f"  {page:16} {condition:9} {variant:6} {result['median_ms']} ms "
                          f"p99 {result['p99_ms']} busy {result['busy_share']:.1%} "
                          f"dropped {result['dropped']}", file=sys.stderr, flush=True)
            streamer.streaming.clear()
            for (page, condition, variant), runs in results.items():
                rows.append({"page": page, "condition": condition, "variant": variant,
                             **merge(runs)})
        finally:
            browser.close()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| page | condition | overlays | frames | median ms | p95 ms | p99 ms | >16.7 ms "
            "| >33 ms | dropped | long tasks | main thread busy | style recalcs | layouts |")
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        lines.append(
            f"| {r['page']} | {r['condition']} | {r['variant']} | {r['frames']} "
            f"| {r['median_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['over_16_7']:.1%} "
            f"| {r['over_33']:.1%} | {r['dropped']} ({r['dropped_share']:.1%}) "
            f"| {r['long_tasks']} ({r['long_ms']} ms) | {r['busy_share']:.1%} "
            f"| {r['styles']} | {r['layouts']} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="window per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="times each is measured")
    parser.add_argument("--before", default="ef4177e",
                        help="git revision whose overlays are the 'before' (default ef4177e)")
    parser.add_argument("--pages", nargs="+", default=PAGES)
    parser.add_argument("--throttle", type=float, default=4,
                        help="CPU slow-down of the third condition (DevTools throttling)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-overlays-") as tmp, stop_on_sigterm():
        demo = Demo(Path(tmp) / "data")
        streamer = Streamer(demo)
        streamer.start()
        started = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
        load = os.getloadavg()
        try:
            rows = run(args, demo.url, streamer)
        finally:
            streamer.stopping.set()
            demo.stop()
        info = machine(tmp)
    result = {"started": started, "load_before": [round(x, 2) for x in load],
              "load_after": [round(x, 2) for x in os.getloadavg()],
              "demos": streamer.started_demos, "seconds": args.seconds, "rounds": args.rounds,
              "before": args.before, "machine": info, "rows": rows}
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"machine: {describe(info)}")
    print(f"run at {started}, load average before {result['load_before']}, "
          f"after {result['load_after']}; {streamer.started_demos} demos streamed")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
