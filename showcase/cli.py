"""The ``showcase`` command: serve, demo, export, import."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import io
import logging
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from showcase import __version__
from showcase.bench.suites import answer_key, load_suites, sample_suites_dir
from showcase.core.errors import LogError, ShowcaseError
from showcase.core.merkle import canonical_line
from showcase.core.showfile import Show, load_show, sample_show_path
from showcase.core.state import State
from showcase.log.base import EventLog
from showcase.log.sqlite import SQLiteLog
from showcase.models.mock.config import MockConfig
from showcase.models.mock.server import serve_mock
from showcase.verify import import_checked, standings_file, verify_export

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
    serve.add_argument("--redis-relaxed", action="store_true", help=(
        "accept a Redis that does not fsync every write (appendfsync always): a crash of "
        "Redis may then take back acknowledged events"))

    demo = sub.add_parser("demo", help="run the whole sample show on this machine, no set-up")
    _server_args(demo, None)

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
    console.add_argument("--user", default=os.environ.get("SHOWCASE_USER"), help=(
        "your name or desk, recorded with every command you send ($SHOWCASE_USER)"))

    mock = sub.add_parser("mock-team", help=(
        "stand in for a team's OpenAI-compatible endpoint (tests, demos, rehearsals)"))
    _mock_team_args(mock)

    bench = sub.add_parser("bench", help=(
        "run benchmark suites against one endpoint, without a server (rehearsals)"))
    _bench_args(bench)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per health check otherwise
    try:
        handler: Callable[[argparse.Namespace], int] = {
            "serve": cmd_serve, "demo": cmd_demo, "export": cmd_export, "import": cmd_import,
            "verify": cmd_verify, "mock-team": cmd_mock_team, "bench": cmd_bench,
            "console": cmd_console,
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


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only when the
    # listening socket says TCP. Without it every response waited ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ShowcaseError(f"cannot listen on {host}:{port}: {exc.strerror}",
                            "is another server running there? pick another --port") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _run(show: str | Path | Show, data_dir: str, host: str, port: int,
         on_ready: Callable[[str, Any], Awaitable[None]] | None = None,
         mocks: Sequence[tuple[MockConfig, int]] = (),
         answers: dict[str, tuple[str, str]] | None = None,
         event_log: EventLog | None = None) -> int:
    import uvicorn

    from showcase.server.app import build_app
    from showcase.server.commandpath import CommandFront
    from showcase.server.frames import FrameWritingProtocol

    if not isinstance(show, Show):
        show = load_show(show)
    app = build_app(show, data_dir, event_log=event_log)
    app.state.engine.open()  # here, so that a refused log or show file is a clear message
    try:
        sock = _bind(host, port)
    except ShowcaseError:
        app.state.engine.close()
        raise
    bound = sock.getsockname()[1]
    url = f"http://{host if ':' not in host else f'[{host}]'}:{bound}"
    # ws: uvicorn's websockets-sansio protocol, letting the hub write each prepared frame
    # to every caught-up viewer's transport (frames.py, docs/performance.md, issue 8).
    # The app: commands answered by a plain ASGI front before Starlette (commandpath.py,
    # issue 14); SHOWCASE_LEAN_COMMANDS=0 sends them through Starlette like every other
    # request (the parity test and the benchmark compare the two).
    lean = os.environ.get("SHOWCASE_LEAN_COMMANDS", "1") != "0"
    # ws_per_message_deflate off: live frames are shared and go out uncompressed anyway,
    # and a zlib context per connection doubled the memory (10,000 viewers: 848 MiB with
    # it, 421 MiB without; docs/performance.md, issue 8).
    config = uvicorn.Config(CommandFront(app, app.state.commands) if lean else app,
                            log_level="warning", http="httptools", ws=FrameWritingProtocol,
                            ws_max_size=64 * 1024, ws_ping_interval=15,
                            ws_per_message_deflate=False, timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)

    async def serve() -> None:
        async def announce() -> None:
            while not server.started:
                if server.should_exit:
                    return
                await asyncio.sleep(0.02)
            if on_ready is not None:
                await on_ready(url, app)
            print(f"showcase {__version__} serving {show.title_en!r} on {url}  "
                  f"(data: {data_dir}, seq {app.state.engine.committed.seq})", flush=True)

        teams = [await serve_mock(config, "127.0.0.1", mock_port, answers)
                 for config, mock_port in mocks]
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(announce())
                await server.serve(sockets=[sock])
        finally:
            for team in teams:
                await team.close()

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve())
    finally:
        sock.close()
    return 0 if server.started else 1


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (the default dependency on Linux and macOS)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def cmd_serve(args: argparse.Namespace) -> int:
    event_log = None
    if args.redis:
        from showcase.log.redis_streams import RedisLog

        event_log = RedisLog(args.redis, relaxed=args.redis_relaxed)
    return _run(args.showfile, args.data, args.host, args.port, _print_access,
                event_log=event_log)


async def _print_access(url: str, app: Any) -> None:
    tokens = app.state.tokens.by_role
    print(f"\n  operator token:  {tokens['operator']}\n  presenter token: {tokens['presenter']}"
          f"\n  judge token:     {tokens['judge']}\n", flush=True)


# The demo's simulated teams: each speaks like a different server, at its own pace.
DEMO_TEAMS = {
    "lg": MockConfig(model="exaone-4.0-32b", dialect="vllm", ttft_ms=180, itl_ms=18,
                     jitter_ms=4, tokens=160),
    "skt": MockConfig(model="a.x-4.0", dialect="llamacpp", ttft_ms=260, itl_ms=24,
                      jitter_ms=6, tokens=150),
    "upstage": MockConfig(model="solar-pro-2", dialect="vllm", ttft_ms=120, itl_ms=14,
                          jitter_ms=3, tokens=170),
    "naver": MockConfig(model="hyperclova-x-seed", dialect="plain", ttft_ms=320, itl_ms=28,
                        jitter_ms=8, tokens=140),
    "ncai": MockConfig(model="varco-2.0", dialect="vllm", ttft_ms=220, itl_ms=20,
                       jitter_ms=5, tokens=150),
}
# How often each simulated team answers a benchmark item right.
DEMO_ACCURACY = {"lg": 0.86, "skt": 0.8, "upstage": 0.78, "naver": 0.72, "ncai": 0.62}


def cmd_demo(args: argparse.Namespace) -> int:
    data = args.data or tempfile.mkdtemp(prefix="showcase-demo-")
    for name in ("OPERATOR", "PRESENTER", "JUDGE"):
        os.environ.pop(f"SHOWCASE_{name}_TOKEN", None)  # the demo prints the tokens it uses
    show = load_show(sample_show_path())
    mocks: list[tuple[MockConfig, int]] = []
    teams = []
    for team in show.teams:
        config = DEMO_TEAMS.get(team.id, MockConfig(model=f"{team.id}-model"))
        config = dataclasses.replace(config, accuracy=DEMO_ACCURACY.get(team.id, 0.7))
        mock_port = _free_port()
        mocks.append((config, mock_port))
        teams.append(dataclasses.replace(team, endpoint=f"http://127.0.0.1:{mock_port}/v1",
                                         api_key_env="", model=config.model))
    show = dataclasses.replace(show, teams=tuple(teams))
    key = answer_key(load_suites([sample_suites_dir()]))
    return _run(show, data, args.host, args.port, _demo_ready, mocks, key)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _demo_ready(url: str, app: Any) -> None:
    from showcase.runtime.seed import seed

    engine = app.state.engine
    seeded = await seed(engine)
    tokens = app.state.tokens.by_role
    op = tokens["operator"]
    state = "scored just now" if seeded else "as this data directory left it"
    print(f"""
showcase demo: the sample show with its five teams, the first round {state}
and not yet published. Nothing is public until you publish it. Each team's model is
simulated on this machine (showcase mock-team), streaming at its own pace.

  pages
    {url}/                      index
    {url}/api/state             the public view (add -H 'Authorization: Bearer TOKEN' for more)
    {url}/events                live event stream (SSE); WebSocket at {url.replace('http', 'ws')}/ws
    {url}/healthz   {url}/metrics

  tokens
    operator   {op}
    presenter  {tokens['presenter']}
    judge      {tokens['judge']}

  try
    curl -s {url}/api/state -H 'Authorization: Bearer {op}'
    curl -N {url}/events                                   # watch as a viewer
    curl -s -X POST {url}/api/teams/naver/disqualify -H 'Authorization: Bearer {op}' \\
         -d '{{"reason": "vision encoder weights match a foreign model"}}'
    curl -s -X POST {url}/api/rounds/r1/publish -H 'Authorization: Bearer {op}'

  live demo: one prompt to every team at once; watch the answers stream on /events
    curl -s -X POST {url}/api/demo -H 'Authorization: Bearer {op}' \\
         -d '{{"prompt": "Introduce yourself in one paragraph.", "max_tokens": 120}}'
    curl -s {url}/api/demo                                 # the answers and their timings

  benchmark run: the sample suites against every team, progress live on /events
    curl -s -X POST {url}/api/bench -H 'Authorization: Bearer {op}' -d '{{}}'
    curl -s {url}/api/bench                                # progress; results once finished
    curl -s -X POST {url}/api/bench/RUN/apply -H 'Authorization: Bearer {op}' -d '{{}}'

  any OpenAI client can talk to a team through the proxy, measured like a demo
    curl -N {url}/v1/teams/lg/chat/completions -H 'Authorization: Bearer {op}' \\
         -d '{{"model": "lg", "stream": true, "messages": [{{"role": "user", "content": "Hi"}}]}}'

Ctrl-C stops the demo; its data stays in its data directory ({engine.log.dir}).
""", flush=True)


def cmd_export(args: argparse.Namespace) -> int:
    state, lines = _read_data(args.data)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "events.ndjson").write_bytes(b"".join(lines))
    standings = standings_file(state)
    (out / "standings.json").write_bytes(orjson.dumps(standings, option=orjson.OPT_INDENT_2))
    (out / "standings.csv").write_text(_standings_csv(state), encoding="utf-8")
    print(f"exported {state.seq} events and the standings of {len(standings['rounds'])} "
          f"rounds to {out}/")
    return 0


def _read_data(data_dir: str) -> tuple[State, list[bytes]]:
    if not (Path(data_dir) / "events.sqlite3").exists():
        raise LogError(f"{data_dir} has no event log (events.sqlite3)")
    state = State()
    lines = []
    with SQLiteLog(data_dir, exclusive=False) as event_log:
        for event in event_log.read():
            state.apply(event)
            lines.append(canonical_line(event.to_json()) + b"\n")
    return state, lines


def _standings_csv(state: State) -> str:
    buf = io.StringIO()
    if state.show is None:
        return ""
    criteria = [c.id for c in state.show.criteria]
    writer = csv.writer(buf)
    writer.writerow(["round", "phase", "position", "rank", "team", "name_en", "name_ko", "status",
                     *criteria, "total", "complete", "advances", "jury"])
    for rnd in state.show.rounds:
        rs = state.rounds[rnd.id]
        if rs.phase == "pending":
            continue
        for row in state.standings(rnd.id).rows:
            team = state.teams[row.team].team
            writer.writerow([rnd.id, rs.phase, row.position or "", row.rank or "", row.team,
                             team.name_en, team.name_ko, state.teams[row.team].status
                             if rs.phase == "published" else row.status,
                             *("" if row.points[c] is None else f"{row.points[c]:g}"
                               for c in criteria),
                             f"{row.total:g}", row.complete,
                             "" if row.advances is None else row.advances, row.jury])
    return buf.getvalue()


def cmd_import(args: argparse.Namespace) -> int:
    events, _ = import_checked(Path(args.log))  # nothing is written unless it all verifies
    with SQLiteLog(args.data) as event_log:
        if event_log.last_seq:
            raise LogError(f"{args.data} already has a log (seq {event_log.last_seq})",
                           "import into a fresh data directory")
        event_log.append_now(events)
    print(f"imported {len(events)} events into {args.data} (seq 1..{events[-1].seq})")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    log_path = Path(args.log)
    note = None
    if args.checkpoint:
        try:
            note = Path(args.checkpoint).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LogError(f"{args.checkpoint} cannot be read: {exc}") from exc
    beside = log_path.with_name("standings.json")
    standings = Path(args.standings) if args.standings else (
        beside if beside.exists() else None)
    report = verify_export(log_path, note, args.key, standings)
    print("\n".join(report.lines()))
    print("verified: the log is consistent with the commands"
          + (" and the signed checkpoint" if report.signed else ""))
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    token = (args.token or os.environ.get("SHOWCASE_OPERATOR_TOKEN")
             or os.environ.get("SHOWCASE_TOKEN"))
    if not token:
        raise ShowcaseError("the console needs the operator token",
                            "give --token TOKEN or set SHOWCASE_OPERATOR_TOKEN")
    if not args.url.startswith(("http://", "https://")):
        raise ShowcaseError(f"{args.url!r} is not a server URL", "like http://127.0.0.1:8000")
    import showcase_tui  # textual loads only here: 'import showcase' never pays for it

    showcase_tui.run(args.url, token, user=args.user)
    return 0


def _mock_team_args(parser: argparse.ArgumentParser) -> None:
    from showcase.models.mock.config import DIALECTS, FAULTS, MockConfig

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
    from showcase.models.mock.config import MockConfig, MockConfigError
    from showcase.models.mock.server import serve_mock

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

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
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


def cmd_bench(args: argparse.Namespace) -> int:
    from showcase.bench.cli import run_bench

    return run_bench(args)
