"""The ``showcase`` command: its subcommands and their options, each run by the module that
owns it (serving.py: serve, demo; archive.py: export, import, verify; bench/cli.py;
provenance/cli.py;
the console in tui/; the mock team in models/mock/)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

from showcase import __version__
from showcase.archive import cmd_export, cmd_import, cmd_verify
from showcase.bench.suites import answer_key, load_suites
from showcase.core.errors import ShowcaseError
from showcase.models.mock.config import MockConfig
from showcase.models.mock.server import serve_mock
from showcase.serving import cmd_demo, cmd_serve, loop_factory

log = logging.getLogger("showcase")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="showcase", description=(
        "Run a live AI-model tournament as a broadcast."))
    parser.add_argument("--version", action="version", version=f"showcase {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server for a show file")
    serve.add_argument("showfile", help="the show file (TOML)")
    _server_args(serve, "./showcase-data")
    serve.add_argument("--redis", metavar="URL", help=(
        "keep the event log in Redis (redis://HOST:PORT/DB) instead of the data directory, "
        "shared by every node given the same URL (docs/scale.md)"))
    serve.add_argument("--log-key", metavar="PATH", help=(
        "the Ed25519 key (PEM) that signs the log's checkpoints (default: DATA/log.key, made "
        "on first start); give every node of one show the same key"))
    serve.add_argument("--strict", action="store_true", help=(
        "refuse to start when there is any warning (an endpoint that does not answer, a key "
        "variable not set, criteria that do not add up, a show file without rounds)"))
    serve.add_argument("--redis-relaxed", action="store_true", help=(
        "accept a Redis that does not fsync every write (appendfsync always): a crash of "
        "Redis may then take back acknowledged events"))

    demo = sub.add_parser("demo", help="run the whole sample show on this machine, no set-up")
    _server_args(demo, None)

    rehearse = sub.add_parser("rehearse", help=(
        "run the whole show script against mock teams on this machine and report what a "
        "live show would show at each step"))
    rehearse.add_argument("showfile", help="the show file (TOML)")
    rehearse.add_argument("--data", default=None, help=(
        "data directory for the rehearsal's log (a fresh temporary one)"))

    export = sub.add_parser("export", help="write the log as NDJSON and the standings as CSV/JSON")
    export.add_argument("--data", required=True, help="the server's data directory")
    export.add_argument("--out", default=".", help="folder for events.ndjson, standings.csv/.json")

    imp = sub.add_parser("import", help="replay an NDJSON log into a fresh data directory")
    imp.add_argument("log", help="an events.ndjson written by 'showcase export'")
    imp.add_argument("--data", required=True, help="a data directory with no log yet")

    verify = sub.add_parser("verify", help=(
        "check an exported log: its Merkle root, a signed checkpoint, every event against "
        "the commands, the standings"))
    verify.add_argument("log", help="an events.ndjson written by 'showcase export'")
    verify.add_argument("--checkpoint", metavar="FILE", help=(
        "a signed checkpoint (GET /api/log/checkpoint) the export must extend"))
    verify.add_argument("--key", help="the server's verifier key (name+id+key), for --checkpoint")
    verify.add_argument("--standings", metavar="FILE", help=(
        "standings.json to compare (default: the one beside the log, if any)"))

    console = sub.add_parser("console", help="the operator console (a terminal app) for a server")
    console.add_argument("url", help="the server's URL, like http://127.0.0.1:8000")
    console.add_argument("--token", help=(
        "the operator token (default: $SHOWCASE_OPERATOR_TOKEN, else $SHOWCASE_TOKEN)"))
    console.add_argument("--presenter-token", default=os.environ.get(
        "SHOWCASE_PRESENTER_TOKEN"), help=(
        "put the presenter's token into the remote's QR code (Q on the Reveal screen), so that "
        "the phone opens it signed in (default: $SHOWCASE_PRESENTER_TOKEN)"))
    console.add_argument("--user", default=os.environ.get("SHOWCASE_USER"), help=(
        "your name or desk, recorded with every command you send ($SHOWCASE_USER)"))

    mock = sub.add_parser("mock-team", help=(
        "stand in for a team's OpenAI-compatible endpoint (tests, demos, rehearsals)"))
    _mock_team_args(mock)

    bench = sub.add_parser("bench", help=(
        "run benchmark suites against one endpoint, without a server (rehearsals)"))
    _bench_args(bench)

    provenance = sub.add_parser("provenance", help=(
        "was model A built from model B's weights? a verdict per component, with evidence"))
    _provenance_args(provenance)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per health check otherwise
    try:
        handler: Callable[[argparse.Namespace], int] = {
            "serve": cmd_serve, "demo": cmd_demo, "export": cmd_export, "import": cmd_import,
            "verify": cmd_verify, "mock-team": cmd_mock_team, "bench": cmd_bench,
            "console": cmd_console, "provenance": cmd_provenance,
            "rehearse": cmd_rehearse,
        }[args.command]
        return handler(args)
    except ShowcaseError as exc:
        print(f"showcase: {exc.message}" + (f" ({exc.detail})" if exc.detail else ""),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _server_args(parser: argparse.ArgumentParser, data_default: str | None) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (8000; 0 picks a free one)")
    parser.add_argument("--data", default=data_default, help=(
        "data directory for the event log and tokens"
        + (f" ({data_default})" if data_default else " (a fresh temporary one)")))
    parser.add_argument("--header-timeout", type=float, default=10.0, metavar="SECONDS", help=(
        "close a connection whose first request head is not complete within this many "
        "seconds (10; 0: never)"))
    parser.add_argument("--max-connections-per-address", type=int, default=200, metavar="N",
                        help=("close connections from one address past N open at once (200; "
                              "0: no limit; behind a reverse proxy, let the proxy limit)"))


def cmd_console(args: argparse.Namespace) -> int:
    token = (args.token or os.environ.get("SHOWCASE_OPERATOR_TOKEN")
             or os.environ.get("SHOWCASE_TOKEN"))
    if not token:
        raise ShowcaseError("the console needs the operator token",
                            "give --token TOKEN or set SHOWCASE_OPERATOR_TOKEN")
    if not args.url.startswith(("http://", "https://")):
        raise ShowcaseError(f"{args.url!r} is not a server URL", "like http://127.0.0.1:8000")
    import showcase_tui  # textual loads only here: 'import showcase' never pays for it

    showcase_tui.run(args.url, token, user=args.user, presenter_token=args.presenter_token)
    return 0


def _mock_team_args(parser: argparse.ArgumentParser) -> None:
    from showcase.models.mock.config import DIALECTS, FAULTS

    default = MockConfig()
    parser.add_argument("--port", type=int, required=True, help="port (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--model", default=default.model, help=f"model name ({default.model})")
    parser.add_argument("--dialect", choices=DIALECTS, default=default.dialect,
                        help=f"whose wire format to speak ({default.dialect})")
    parser.add_argument("--fault", choices=FAULTS, default=default.fault,
                        help=f"how to fail ({default.fault})")
    for option, kind, metavar, what in (
            ("ttft-ms", float, "MS", "time to the first token"),
            ("itl-ms", float, "MS", "gap between chunks"),
            ("jitter-ms", float, "MS", "uniform +- jitter on each gap"),
            ("tokens", int, "N", "tokens in an answer"),
            ("chunk-tokens", int, "N", "tokens per chunk"),
            ("error-rate", float, "FRACTION", "fraction of requests answered with HTTP 500"),
            ("stall-after", int, "N", "stop sending after this many tokens"),
            ("fault-after", int, "N", "tokens sent before a mid-stream fault"),
            ("status", int, "CODE", "HTTP status of --fault http_error"),
            ("seed", int, "N", "seed of the jitter and error-rate draws"),
            ("accuracy", float, "FRACTION", "share of benchmark items answered right")):
        value = getattr(default, option.replace("-", "_"))
        parser.add_argument(f"--{option}", type=kind, default=value, metavar=metavar,
                            help=f"{what} ({'none' if value is None else value})")
    parser.add_argument("--api-key", default=None, help=(
        "require 'Authorization: Bearer KEY' (default: $SHOWCASE_MOCK_API_KEY, else none)"))
    parser.add_argument("--answers", nargs="+", metavar="SUITE", default=None, help=(
        "benchmark suites (files or folders) whose items this team answers, right with "
        "probability --accuracy (default: none; every prompt gets the canned answer)"))


def cmd_mock_team(args: argparse.Namespace) -> int:
    from showcase.models.mock.config import MockConfigError

    config = MockConfig(
        model=args.model, dialect=args.dialect, ttft_ms=args.ttft_ms, itl_ms=args.itl_ms,
        jitter_ms=args.jitter_ms, tokens=args.tokens, chunk_tokens=args.chunk_tokens,
        error_rate=args.error_rate, stall_after=args.stall_after, fault=args.fault,
        fault_after=args.fault_after, status=args.status,
        api_key=args.api_key or os.environ.get("SHOWCASE_MOCK_API_KEY") or None, seed=args.seed,
        accuracy=args.accuracy)
    try:
        config.validate()
    except MockConfigError as exc:
        raise ShowcaseError(f"--{exc.field.replace('_', '-')} {exc.problem}") from exc
    if not 0 <= args.port <= 65535:
        raise ShowcaseError(f"--port must be 0 to 65535, not {args.port}")

    key = answer_key(load_suites(args.answers)) if args.answers else None

    async def serve() -> None:
        try:
            server = await serve_mock(config, args.host, args.port, key)
        except OSError as exc:
            raise ShowcaseError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}",
                                "is another server running there? pick another --port") from exc
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C still interrupts
                loop.add_signal_handler(sig, stop.set)
        print(f"mock team {config.model} ({config.dialect}) listening on {server.url}",
              flush=True)
        try:
            await stop.wait()
        finally:
            await server.close()

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(serve())
    return 0


def _bench_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suites", nargs="*", metavar="SUITE", help=(
        "suite files or folders (JSONL); default: the sample suites shipped with showcase"))
    parser.add_argument("--team", required=True, help="the team's id, for the results table")
    parser.add_argument("--url", required=True, help=(
        "the team's OpenAI-compatible base URL, e.g. http://10.0.0.7:8000/v1"))
    parser.add_argument("--model", default="", help="model name (default: the first of /models)")
    parser.add_argument("--key-env", default="", metavar="VAR", help=(
        "environment variable holding the team's API key (default: none)"))
    parser.add_argument("--concurrency", type=int, default=4, metavar="N",
                        help="items in flight at once (4)")
    parser.add_argument("--retries", type=int, default=2, metavar="N",
                        help="more tries for an item whose request failed (2)")
    parser.add_argument("--json", metavar="FILE", default="", help=(
        "also write every item's result and the summary as JSON to FILE"))


def _provenance_args(parser: argparse.ArgumentParser) -> None:
    from showcase.provenance.cli import add_arguments

    add_arguments(parser)


def cmd_provenance(args: argparse.Namespace) -> int:
    from showcase.provenance.cli import run_provenance

    return run_provenance(args)


def cmd_rehearse(args: argparse.Namespace) -> int:
    from showcase.rehearse import cmd_rehearse as rehearse

    return rehearse(args)


def cmd_bench(args: argparse.Namespace) -> int:
    from showcase.bench.cli import run_bench

    return run_bench(args)
