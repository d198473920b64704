"""What every benchmark needs: a description of the machine, and clean-up on SIGTERM."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def machine(data_dir: str | Path) -> dict[str, str]:
    """CPU, kernel, Python, and the filesystem the data directory is on."""
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    df = subprocess.run(["df", "-T", str(data_dir)], capture_output=True, text=True,
                        timeout=10).stdout.splitlines()
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "kernel": platform.release(),
            "python": platform.python_version(), "tmp": str(data_dir),
            "fs": df[-1].split()[1] if len(df) > 1 else "?"}


def describe(m: dict[str, str]) -> str:
    return (f"{m['nproc']} x {m['cpu']}, Linux {m['kernel']}, Python {m['python']}, "
            f"data dir on {m['fs']} ({m['tmp']})")


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM (and Ctrl-C, already) unwinds through the finally blocks that clean up."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def spawn(args: list[str], pattern: str, env: dict[str, str] | None = None
          ) -> tuple[subprocess.Popen[str], str]:
    """``python -m showcase ARGS``, once its output matches ``pattern``: the process and
    the pattern's first group (the URL it serves on)."""
    proc = subprocess.Popen([sys.executable, "-m", "showcase", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    assert proc.stdout is not None
    for line in proc.stdout:
        found = re.search(pattern, line)
        if found:
            return proc, found.group(1)
    raise RuntimeError(f"showcase {args[0]} did not start")


def cpu_seconds(pid: int) -> float:
    """A process's user + system CPU time so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
