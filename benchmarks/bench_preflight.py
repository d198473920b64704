"""How long ``showcase serve`` takes to warn about team endpoints that do not answer.

Goal (issue 20): the warnings before a show cost the crew seconds, whatever the number of
dead endpoints: every team's ``GET /models`` is asked at once, each given at most
``preflight.REACH_TIMEOUT`` (3 s). Measured through the command line, as a crew meets it:
``showcase serve --strict`` on a show of N teams whose endpoints are all dead, half
refusing connections (a closed port) and half accepting and never answering (a listener
that reads nothing), timed from the start of the process to its refusal (exit 2). The
baseline is the same command on a show with no endpoint and one warning (its criteria add
up to 105): the process's own start-up, with no endpoint to ask.

    .venv/bin/python benchmarks/bench_preflight.py [--teams 5,50] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from _common import describe, machine, stop_on_sigterm


def show_file(folder: Path, teams: int, refused: int, silent: int) -> Path:
    """A show of ``teams`` teams, half of them on the refusing port, half on the silent one
    (none when both ports are 0); its criteria add up to 105, a warning of its own."""
    lines = ['[show]\ntitle_en = "Preflight benchmark"\n']
    for i in range(teams):
        port = refused if i % 2 else silent
        endpoint = f'endpoint = "http://127.0.0.1:{port}/v1"\n' if port else ""
        lines.append(f'[[teams]]\nid = "t{i}"\nname_ko = "T{i}"\nname_en = "T{i}"\n{endpoint}')
    lines.append('[[criteria]]\nid = "b"\nname_ko = "b"\nname_en = "b"\npoints = 105\n'
                 '[[rounds]]\nid = "r1"\nname_ko = "1"\nname_en = "One"\n')
    path = folder / f"show-{teams}-{bool(refused)}.toml"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def refusal_seconds(show: Path, data: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "showcase", "serve", str(show), "--strict",
                           "--port", "0", "--data", str(data)], capture_output=True,
                          text=True, timeout=120)
    took = time.perf_counter() - start
    assert done.returncode == 2, done.stderr
    return took, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", default="5,50")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    with stop_on_sigterm(), tempfile.TemporaryDirectory() as tmp, \
            socket.socket() as closed, socket.socket() as silent:
        folder = Path(tmp)
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        silent.bind(("127.0.0.1", 0))
        silent.listen(4096)  # accepts into its backlog, never reads or answers
        refused_port, silent_port = closed.getsockname()[1], silent.getsockname()[1]
        for teams in [int(n) for n in args.teams.split(",")]:
            for label, ports in (("no endpoint", (0, 0)),
                                 ("all dead", (refused_port, silent_port))):
                show = show_file(folder, teams, *ports)
                times = []
                for run in range(args.runs):
                    took, out = refusal_seconds(show, folder / f"data-{teams}-{run}")
                    times.append(took)
                warned = out.count("WARNING")
                results.append({"teams": teams, "endpoints": label, "warnings": warned,
                                "median_s": statistics.median(times), "runs": times})
    m = machine(tempfile.gettempdir())
    if args.json:
        print(orjson.dumps({"machine": m, "results": results}).decode())
        return
    print(f"machine: {describe(m)}")
    print("| teams | endpoints | warnings | serve --strict to its refusal, median |")
    print("|---:|---|---:|---:|")
    for r in results:
        print(f"| {r['teams']} | {r['endpoints']} | {r['warnings']} | {r['median_s']:.2f} s |")


if __name__ == "__main__":
    main()
