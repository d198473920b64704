"""``showcase bench``: run suites against one endpoint from the command line, no server.

For a team rehearsing before the show: the same suites, the same client, the same grading
and the same score as a run in the server, with a progress bar while it runs and the
results table at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import orjson

from showcase.bench import suites as bn
from showcase.bench.runs import Progress, ask
from showcase.core.errors import ShowcaseError
from showcase.core.showfile import ID_RE, ProxySettings, Team
from showcase.models.upstream import OK, TeamClient

BAR = 28


def run_bench(args: argparse.Namespace) -> int:
    if not ID_RE.match(args.team):
        raise ShowcaseError(f"--team {args.team!r} is not a valid id (lower-case letters, "
                            "digits, '-' or '_')")
    if not args.url.startswith(("http://", "https://")):
        raise ShowcaseError(f"--url must be an http:// or https:// base URL, not {args.url!r}")
    if not 1 <= args.concurrency <= 64:
        raise ShowcaseError(f"--concurrency must be from 1 to 64, not {args.concurrency}")
    if not 0 <= args.retries <= 10:
        raise ShowcaseError(f"--retries must be from 0 to 10, not {args.retries}")
    if args.key_env and args.key_env not in os.environ:
        raise ShowcaseError(f"--key-env {args.key_env}: that environment variable is not set")
    suites = bn.load_suites(suite_paths(args.suites) or [bn.sample_suites_dir()])
    team = Team(args.team, args.team, args.team, "", "#888888", args.url, args.key_env,
                args.model)
    summary = asyncio.run(_run(team, suites, args.concurrency, args.retries, sys.stderr,
                               args.json))
    print(_table(args.team, summary))
    return 0 if summary["errors"] == 0 else 1


def suite_paths(given: list[str]) -> list[str | Path]:
    """Each argument as a file or folder, or else as the id of a shipped suite
    (``showcase bench ko-math``), as the API and the console take them."""
    shipped = {bn.load_suite(p).id: p
               for p in sorted(bn.sample_suites_dir().glob("*.jsonl"))}
    paths: list[str | Path] = []
    for arg in given:
        if Path(arg).exists():
            paths.append(arg)
        elif arg in shipped:
            paths.append(shipped[arg])
        else:
            raise ShowcaseError(f"{arg!r} is neither a suite file or folder nor a suite id",
                                f"suite ids: {', '.join(shipped)}")
    return paths


async def _run(team: Team, suites: list[bn.Suite], concurrency: int, retries: int,
               out: TextIO, json_path: str) -> dict[str, Any]:
    settings = dataclasses.replace(ProxySettings(), max_connections=max(16, concurrency))
    # The key the person running the command named with --key-env, for the --url they gave.
    client = TeamClient(team, settings, os.environ.get(team.api_key_env, "")
                        if team.api_key_env else "")
    try:
        model = team.model
        if not model:
            check = await client.check()
            if not check["up"]:
                raise ShowcaseError(f"{team.endpoint} does not answer GET /models: "
                                    f"{check.get('error') or 'down'}")
            model = check.get("model") or ""
        work = [(s, it) for s in suites for it in s.items]
        progress = Progress(len(work), 0, 0, 0, public=True)
        items = iter(work)
        records: list[dict[str, Any]] = []
        counts: dict[str, dict[str, Any]] = {
            s.id: {"done": 0, "correct": 0, "errors": 0, "total": len(s.items),
                   "category": s.category, "baseline": s.baseline} for s in suites}
        started = time.monotonic()

        async def worker() -> None:
            for suite, item in items:
                result = await ask(client, model, suite, item, retries)
                progress.add(result)
                c = counts[suite.id]
                c["done"] += 1
                c["errors"] += result["status"] != OK
                c["correct"] += bool(result["correct"])
                records.append({"suite": suite.id, "item": item.id, **result})

        painter = asyncio.create_task(_paint(progress, out))
        try:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        finally:
            painter.cancel()
            progress.status = "finished"
            _line(progress, out, final=True)
        for c in counts.values():
            graded = c["done"] - c["errors"]
            c["accuracy"] = round(c["correct"] / graded, 4) if graded else None
            c["stderr"] = bn.stderr(c["correct"], graded)
        score = bn.combine({k: dict(v) for k, v in counts.items()}, {})
        summary = {"team": team.id, "model": model, "suites": counts, "score": score,
                   "errors": sum(c["errors"] for c in counts.values()),
                   "seconds": round(time.monotonic() - started, 2)}
        if json_path:
            Path(json_path).write_bytes(orjson.dumps({"summary": summary, "items": records},
                                                     option=orjson.OPT_INDENT_2))
        return summary
    finally:
        await client.aclose()


async def _paint(progress: Progress, out: TextIO) -> None:
    tty = out.isatty()
    while True:
        _line(progress, out, final=False, tty=tty)
        await asyncio.sleep(0.25 if tty else 2.0)


def _line(progress: Progress, out: TextIO, final: bool, tty: bool | None = None) -> None:
    f = progress.frame()
    tty = out.isatty() if tty is None else tty
    filled = int(BAR * f["done"] / f["total"]) if f["total"] else BAR
    acc = f"{f['accuracy']:.1%}" if f.get("accuracy") is not None else "  -  "
    rate = f"{f['ips']:.1f}/s" if f["ips"] else "  -  "
    eta = f"ETA {f['eta_s']:.0f}s" if f["eta_s"] else ""
    text = (f"[{'#' * filled}{'.' * (BAR - filled)}] {f['done']}/{f['total']}  "
            f"acc {acc}  errors {f['errors']}  {rate}  {eta}")
    if tty:
        out.write("\r" + text.ljust(90) + ("\n" if final else ""))
    else:
        out.write(text + "\n")
    out.flush()


def _table(team: str, summary: dict[str, Any]) -> str:
    rows = [("suite", "category", "items", "right", "errors", "accuracy", "± se", "score")]
    for sid, c in summary["suites"].items():
        acc = "-" if c["accuracy"] is None else f"{c['accuracy']:.1%}"
        se = "-" if c["stderr"] is None else f"{c['stderr']:.1%}"
        rows.append((sid, c["category"], str(c["total"]), str(c["correct"]), str(c["errors"]),
                     acc, se, f"{summary['score']['suites'][sid]:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in
                       enumerate(zip(r, widths, strict=True))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    cats = ", ".join(f"{c} {v:.1f}" for c, v in summary["score"]["categories"].items())
    lines += ["", f"{team} ({summary['model'] or 'model unknown'}): benchmark score "
              f"{summary['score']['value']:.2f} / 100  ({cats}); {summary['seconds']} s",
              "Each suite's score is its accuracy normalised from its baseline (guessing) "
              "to 100%; errors count as not right."]
    if summary["errors"]:
        lines.append(f"{summary['errors']} items failed to get an answer: "
                     "see --json FILE for why.")
    return "\n".join(lines)
