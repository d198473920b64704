"""``showcase provenance MODEL_A MODEL_B``: the check from the command line.

Prints a verdict per component with its evidence and the sentences a presenter reads (or
the whole report as JSON with ``--json``), and a progress bar on stderr while a large model
is read.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, TextIO

import orjson

from showcase.provenance import components as cp

if TYPE_CHECKING:  # numpy, scipy and safetensors load when a check runs, not for --help
    from showcase.provenance.check import Report

BAR = 28
#: Below this many bytes to read the check takes about a second: no bar.
BAR_FROM = 64 * 2**20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_a", metavar="MODEL_A", help=(
        "the model in question: a folder of safetensors (one file or shards with "
        "model.safetensors.index.json, config.json and tokenizer.json beside), or one file"))
    parser.add_argument("model_b", metavar="MODEL_B", help="the reference model, the same way")
    parser.add_argument("--component", choices=tuple(cp.CHOICES), default="all", help=(
        "what to compare: the vision encoder, the language model (with its embeddings and "
        "tokenizer), or all (default)"))
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")


def run_provenance(args: argparse.Namespace) -> int:
    from showcase.provenance.check import check

    bar = _Bar(sys.stderr)
    started = time.monotonic()
    report = check(args.model_a, args.model_b, args.component, progress=bar)
    bar.close()
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(render(report, time.monotonic() - started))
    return 0


def render(report: Report, seconds: float) -> str:
    lines = [f"{report.model_a}  (in question)", f"  against {report.model_b}  (reference)"]
    for side, declared in (("A", report.declared_a), ("B", report.declared_b)):
        if declared:
            lines.append(f"  {side} declares: " + ", ".join(f"{k} {v}" for k, v in
                                                            declared.items()))
    lines.append(f"  read {report.bytes_read / 2**20:,.1f} MiB in {seconds:.1f} s")
    for c in report.components:
        lines += ["", f"{cp.NAMES[c.component][0]}: {c.verdict.upper()} ({c.decided_by})",
                  f"  EN  {c.en}", f"  KO  {c.ko}"]
        lines += [f"  - {line}" for line in c.evidence]
    return "\n".join(lines)


class _Bar:
    """Bytes read so far: redrawn in place on a terminal, a line per tenth otherwise."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.started = time.monotonic()
        self.shown = -1
        self.total = 0

    def __call__(self, done: int, total: int) -> None:
        self.total = total
        if total < BAR_FROM:
            return
        tenth = 10 * done // total
        if not self.tty and tenth == self.shown:
            return
        self.shown = tenth
        filled = BAR * done // total
        rate = done / max(time.monotonic() - self.started, 1e-9) / 2**20
        text = (f"[{'#' * filled}{'.' * (BAR - filled)}] {done / 2**30:.2f}/"
                f"{total / 2**30:.2f} GiB  {rate:,.0f} MiB/s")
        self.out.write(("\r" + text.ljust(70)) if self.tty else text + "\n")
        self.out.flush()

    def close(self) -> None:
        if self.tty and self.total >= BAR_FROM:
            self.out.write("\n")
            self.out.flush()
