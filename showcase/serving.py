"""``showcase serve`` and ``showcase demo``: a server on a socket, uvicorn with the command
front and the frame writer, and what each prints for the people running the show."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import socket
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from showcase import __version__, preflight
from showcase.bench.suites import answer_key, load_suites, sample_suites_dir
from showcase.core.errors import ShowcaseError
from showcase.core.showfile import Show, load_show, sample_show_path
from showcase.log.base import EventLog
from showcase.models.mock.config import MockConfig
from showcase.models.mock.server import serve_mock
from showcase.server.auth import JUDGE_ENV_PREFIX, Tokens
from showcase.server.guard import Guard

log = logging.getLogger("showcase")


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


def run_server(show: str | Path | Show, data_dir: str, host: str, port: int,
               on_ready: Callable[[str, Any], Awaitable[None]] | None = None,
               mocks: Sequence[tuple[MockConfig, int]] = (),
               answers: dict[str, tuple[str, str]] | None = None,
               event_log: EventLog | None = None, log_key: str | None = None,
               guard: Guard | None = None) -> int:
    """Serve ``show`` until stopped (serve, demo and rehearse all run through here):
    the log opened, the mock teams started, ``on_ready(url, app)`` awaited once the server
    listens. The exit status: 0 once it served, 1 if it never started."""
    import uvicorn

    from showcase.server.app import build_app
    from showcase.server.commandpath import CommandFront
    from showcase.server.frames import HTTP_PROTOCOL, FrameWritingProtocol

    if not isinstance(show, Show):
        show = load_show(show)
    _owner_only_dir(Path(data_dir))
    app = build_app(show, data_dir, event_log=event_log, log_key=log_key)
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
                            log_level="warning", ws=FrameWritingProtocol,
                            # slow heads and crowds from one address cut off (guard.py)
                            http=(guard or Guard()).wrap(HTTP_PROTOCOL),
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
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(serve())
    finally:
        sock.close()
    return 0 if server.started else 1


def _owner_only_dir(data_dir: Path) -> None:
    """The data directory, open to its owner only: it holds the log (sealed scores), the
    tokens and the log's signing key."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if data_dir.stat().st_mode & 0o077:
        data_dir.chmod(0o700)
        log.warning("%s could be read by others; it is now open to its owner only", data_dir)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (the default dependency on Linux and macOS)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def cmd_serve(args: argparse.Namespace) -> int:
    show = load_show(args.showfile)
    preflight.check(show, args.strict)  # before the log is opened: --strict leaves it alone
    event_log = None
    if args.redis:
        from showcase.log.redis_streams import RedisLog

        event_log = RedisLog(args.redis, relaxed=args.redis_relaxed)
    return run_server(show, args.data, args.host, args.port, _serve_ready(args.host),
                      event_log=event_log, log_key=args.log_key, guard=guard_of(args))


def guard_of(args: argparse.Namespace) -> Guard:
    """The limits on slow and crowding clients from the command line, checked."""
    if not 0 <= args.header_timeout <= 3600:
        raise ShowcaseError(f"--header-timeout must be from 0 to 3600 seconds, not "
                            f"{args.header_timeout:g}")
    if args.max_connections_per_address < 0:
        raise ShowcaseError("--max-connections-per-address must be 0 (no limit) or more, "
                            f"not {args.max_connections_per_address}")
    return Guard(args.header_timeout, args.max_connections_per_address)


def _serve_ready(host: str) -> Callable[[str, Any], Awaitable[None]]:
    """What serve prints once it listens: the tokens, then every page and the remote's QR."""

    async def ready(url: str, app: Any) -> None:
        await _print_access(url, app)
        tokens = app.state.tokens
        generated = tokens.sources.get("presenter") == "generated"
        preflight.print_pages(url, host, tokens.by_role["presenter"] if generated else None)

    return ready


async def _print_access(url: str, app: Any) -> None:
    print("", *token_lines(app.state.tokens, app.state.services.data_dir), "",
          sep="\n", flush=True)
    print(f"  the log's verifier key (for showcase verify; also at {url}/api/log/key):\n"
          f"  {app.state.engine.transparency.verifier}\n", flush=True)


def _judge_lines(tokens: Tokens, label: Callable[[str], str]) -> str:
    """A line per judge's own token (and the shared one, where the show allows it)."""
    shared = tokens.by_role.get("judge")
    lines = [f"\n{label('(all)')}{shared}"] if shared else []
    return "".join(lines + [f"\n{label(j)}{t}" for j, t in tokens.by_judge.items()])


def token_lines(tokens: Tokens, data_dir: Path) -> list[str]:
    """A line per role and per judge saying where its token came from. Only a token
    showcase generated is printed (nobody else knows it); one from the environment or the
    show file is already known to whoever set it, and a terminal's scrollback is no place
    for it."""
    from showcase.server.auth import ENV, TOKENS_FILE, judge_env

    lines = []
    for key, source in tokens.sources.items():
        role, _, judge = key.partition(":")
        label = f"{role} {judge} token:" if judge else f"{role} token:"
        token = tokens.by_judge[judge] if judge else tokens.by_role[role]
        if source == "environment":
            lines.append(f"  {label:<16} from ${judge_env(judge) if judge else ENV[role]} "
                         "(not printed)")
        elif source == "show file":
            lines.append(f"  {label:<16} from the show file (not printed)")
        else:
            lines.append(f"  {label:<16} {token}  (generated; kept in {data_dir / TOKENS_FILE})")
    return lines


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
    for name in [n for n in os.environ if n.startswith(JUDGE_ENV_PREFIX)]:
        os.environ.pop(name)
    show = load_show(sample_show_path())
    mocks: list[tuple[MockConfig, int]] = []
    teams = []
    for team in show.teams:
        config = DEMO_TEAMS.get(team.id, MockConfig(model=f"{team.id}-model"))
        config = dataclasses.replace(config, accuracy=DEMO_ACCURACY.get(team.id, 0.7))
        mock_port = free_port()
        mocks.append((config, mock_port))
        teams.append(dataclasses.replace(team, endpoint=f"http://127.0.0.1:{mock_port}/v1",
                                         api_key_env="", model=config.model))
    show = dataclasses.replace(show, teams=tuple(teams))
    key = answer_key(load_suites([sample_suites_dir()]))
    return run_server(show, data, args.host, args.port, _demo_ready(args.host), mocks, key,
                      guard=guard_of(args))


def free_port() -> int:
    """A port free on loopback now (for the demo's and the rehearsal's mock teams)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _demo_ready(host: str) -> Callable[[str, Any], Awaitable[None]]:
    async def ready(url: str, app: Any) -> None:
        await _print_demo(url, host, app)

    return ready


async def _print_demo(url: str, host: str, app: Any) -> None:
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

  the API
    {url}/api/state             the public view (add -H 'Authorization: Bearer TOKEN' for more)
    {url}/events                live event stream (SSE); WebSocket at {url.replace('http', 'ws')}/ws
    {url}/healthz   {url}/metrics

  tokens
    operator   {op}
    presenter  {tokens['presenter']}{_judge_lines(app.state.tokens, '    judge {:<4} '.format)}
    judges enter their sheets at {url}/judge
""", flush=True)
    preflight.print_pages(url, host, tokens["presenter"])
    print(demo_walkthrough(url, op), flush=True)
    print(f"Ctrl-C stops the demo; its data stays in its data directory ({engine.log.dir}).",
          flush=True)


def demo_walkthrough(url: str, op: str) -> str:
    """The show in the order that works: every step is allowed after the one before it
    (a run's results are entered before the round is published, never after).
    tests/test_cli.py runs it in bash, line by line, as printed."""
    auth = '-H "Authorization: Bearer $OP"'
    return f"""
  walkthrough: paste into a shell, in this order (watch the overlays above meanwhile)
    URL={url}; OP={op}
    # 1. the show as the operator sees it; a viewer's stream: curl -N $URL/events
    curl -s $URL/api/state {auth}
    # 2. a live demo: one prompt to every team at once (overlays/demo.html)
    curl -s -X POST $URL/api/demo {auth} \\
         -d '{{"prompt": "Introduce yourself in one paragraph.", "max_tokens": 120}}'
    # 3. a benchmark run of the sample suites for round r1 (overlays/bench.html)
    RUN=$(curl -s -X POST $URL/api/bench {auth} -d '{{}}' | grep -o '"seq":[0-9]*' | cut -d: -f2)
    # 4. once it has finished, its scores become r1's benchmark values, sealed
    until curl -s $URL/api/bench | grep -q '"phase":"finished"'; do sleep 1; done
    curl -s -X POST $URL/api/bench/$RUN/apply {auth} -d '{{}}'
    # 5. disqualify a team: sealed until the round is published
    curl -s -X POST $URL/api/teams/naver/disqualify {auth} \\
         -d '{{"reason": "vision encoder weights match a foreign model"}}'
    # 6. publish round r1: every score, the cut and the eliminations become public
    curl -s -X POST $URL/api/rounds/r1/publish {auth}
    # any OpenAI client can talk to a team through the proxy, measured like a demo
    curl -sN $URL/v1/teams/lg/chat/completions {auth} \\
         -d '{{"model": "lg", "stream": true, "messages": [{{"role": "user", "content": "Hi"}}]}}'
"""
