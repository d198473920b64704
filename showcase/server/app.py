"""The HTTP API: state, streams and commands, as docs/protocol.md describes them."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from showcase import __version__
from showcase.bench import runs as benchrun
from showcase.bench.runs import Bench
from showcase.bench.suites import SuiteError
from showcase.core import events as ev
from showcase.core.checks import known_round
from showcase.core.errors import BadRequest, Conflict, ShowcaseError
from showcase.core.showfile import Show
from showcase.core.views import VIEW_OF_ROLE, latest_bench, latest_demo
from showcase.log.base import EventLog
from showcase.models.teams import Teams
from showcase.runtime.engine import Engine
from showcase.server import openapi
from showcase.server.auth import Tokens, require
from showcase.server.proxy import Proxy
from showcase.server.streams import EventStream, websocket_stream
from showcase.server.table import Commands, EngineCommand, actor_of, answer, refusal
from showcase.server.web import JSON, error_response, read_json

log = logging.getLogger(__name__)

IMPORT_LIMIT = 4 * 1024 * 1024


def build_app(show: Show, data_dir: str | Path, tokens: Tokens | None = None, *,
              event_log: EventLog | None = None) -> Starlette:
    """The server; ``event_log`` replaces the SQLite log in ``data_dir`` (``--redis``)."""
    engine = Engine(show, data_dir, log=event_log)
    tokens = tokens or Tokens.resolve(show, data_dir)
    teams = Teams(engine)
    proxy = Proxy(teams)
    bench = Bench(teams)
    commands_ = Commands(engine, tokens)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not engine.is_open:
            engine.open()
        log.info("show %r at seq %d from %s", show.title_en, engine.committed.seq, data_dir)
        try:
            async with engine.running(), engine.live.running(), teams.running_checks():
                await bench.recover()
                try:
                    yield
                finally:
                    await bench.aclose()
        finally:
            engine.close()

    def role_of(request: Request | WebSocket, query_token: bool = False) -> str:
        """The caller's role. ``?token=`` only where a browser cannot send headers
        (EventSource, WebSocket, a page's state fetch), never for commands."""
        return tokens.role_of(request.headers.get("authorization"),
                              request.query_params.get("token") if query_token else None)

    def actor(request: Request, role: str) -> str:
        # Headers arrive as Latin-1; a UTF-8 name such as 김지원 is decoded back from bytes.
        return actor_of(role, request.headers.get("x-showcase-user", "").encode("latin-1"))

    def command(allowed: tuple[str, ...], what: str,
                run: Callable[[Request, str, Any], Awaitable[ev.Event]]
                ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            role = role_of(request)
            require(role, allowed, what)
            body = await read_json(request)
            event = await run(request, role, body)
            return JSON({"seq": event.seq, "type": event.type}, status_code=201)
        return endpoint

    def engine_command(command: EngineCommand) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            role = commands_.role(command, request.headers.get("authorization"))
            body = await read_json(request)
            actor, fn, args = commands_.bind(
                command, request.path_params, role,
                request.headers.get("x-showcase-user", "").encode("latin-1"), body)
            event = await engine.run(actor, fn, *args)
            return Response(answer(event.seq, event.type), status_code=201,
                            media_type="application/json")
        return endpoint

    async def reveal_script(request: Request) -> Response:
        require(role_of(request), ("operator", "presenter"), "reading the reveal script")
        state = engine.committed
        round_id = known_round(state, request.query_params.get("round"))
        rnd = state.rounds[round_id]
        if rnd.frozen is None:
            raise Conflict(f"round {round_id!r} is not frozen: it has no reveal script yet",
                           f"freeze it: POST /api/rounds/{round_id}/freeze", seq=state.seq)
        return JSON({"seq": state.seq, "round": round_id, "step": rnd.step,
                     "total": len(rnd.frozen["script"]), "steps": rnd.frozen["script"]})

    async def get_state(request: Request) -> Response:
        view = VIEW_OF_ROLE[role_of(request, query_token=True)]
        return JSON({**engine.state_message(view), "live": engine.live.current()})

    async def start_demo(request: Request, role: str, body: Any) -> ev.Event:
        return await teams.start_demo(actor(request, role), body)

    async def cancel_demo(request: Request, role: str, body: Any) -> ev.Event:
        return await teams.cancel_demo(actor(request, role), body)

    async def get_demo(request: Request) -> Response:
        view = VIEW_OF_ROLE[role_of(request, query_token=True)]
        return JSON({"seq": engine.committed.seq,
                     "demo": latest_demo(engine.committed, public=view != "operator"),
                     "live": engine.live.demo})

    async def start_bench(request: Request, role: str, body: Any) -> ev.Event:
        return await bench.start(actor(request, role), body)

    def bench_control(action: str) -> Callable[[Request, str, Any], Awaitable[ev.Event]]:
        async def run(request: Request, role: str, body: Any) -> ev.Event:
            return await bench.control(actor(request, role), action, body)
        return run

    async def apply_bench(request: Request) -> Response:
        role = role_of(request)
        require(role, ("operator",), "entering a benchmark run's results")
        raw = request.path_params["run"]
        if not raw.isdigit():
            raise BadRequest(f"the run must be a number (its seq), not {raw!r}")
        body = await read_json(request)
        entered = await bench.apply(actor(request, role), int(raw), body)
        return JSON({"seq": entered[-1].seq, "type": ev.SCORE_ENTERED,
                     "entered": [{"seq": e.seq, "team": e.data["team"],
                                  "value": e.data["value"]} for e in entered]},
                    status_code=201)

    async def import_bench(request: Request) -> Response:
        role = role_of(request)
        require(role, ("operator",), "importing benchmark results")
        body = await read_json(request, IMPORT_LIMIT)  # a results JSON carries its configs
        recorded, entered = await bench.import_results(actor(request, role), body)
        return JSON({"seq": entered.seq, "type": entered.type, "imported": recorded.seq,
                     "value": entered.data["value"],
                     "score": recorded.data["score"]}, status_code=201)

    async def get_bench(request: Request) -> Response:
        view = VIEW_OF_ROLE[role_of(request, query_token=True)]
        return JSON({"seq": engine.committed.seq,
                     "bench": latest_bench(engine.committed, public=view != "operator"),
                     "live": engine.live.bench})

    async def bench_suites(request: Request) -> Response:
        require(role_of(request), ("operator",), "listing the benchmark suites")
        try:
            suites = await asyncio.to_thread(benchrun.available, show.bench)
        except SuiteError as exc:
            raise Conflict(exc.message, "fix the suite file; runs are refused until then",
                           seq=engine.committed.seq) from None
        return JSON({"suites": [s.header() for s in suites.values()],
                     "criterion": show.bench.criterion, "weights": show.bench.weights,
                     "concurrency": show.bench.concurrency, "retries": show.bench.retries})

    async def chat_completions(request: Request) -> Response:
        role = role_of(request)
        require(role, ("operator", "presenter"), "using the proxy")
        return await proxy.chat_completions(request, role, actor(request, role))

    async def team_models(request: Request) -> Response:
        return await proxy.models(request, role_of(request))

    async def get_log(request: Request) -> Response:
        require(role_of(request), ("operator",), "reading the event log")
        since = _int_param(request, "since", 0)
        limit = min(_int_param(request, "limit", 200), 5000)
        if limit == 0:
            raise BadRequest("query parameter 'limit' must be at least 1")
        types = request.query_params.get("type")
        wanted = set(types.split(",")) if types else None
        if wanted and not wanted <= ev.EVENT_TYPES:
            raise BadRequest(f"unknown event type {sorted(wanted - ev.EVENT_TYPES)[0]!r}",
                             f"types: {', '.join(sorted(ev.EVENT_TYPES))}")
        if "last" in request.query_params:
            if "since" in request.query_params:
                raise BadRequest("give 'since' or 'last', not both",
                                 "since: events after a seq, oldest first; last: the latest N")
            last = min(_int_param(request, "last", 200), 5000)
            if last == 0:
                raise BadRequest("query parameter 'last' must be at least 1")
            found = await asyncio.to_thread(engine.read_latest, last, wanted)
        else:
            found = engine.read_log(since, limit, wanted)
        return JSON({"seq": engine.committed.seq, "events": [e.to_json() for e in found]})

    async def events(request: Request) -> Response:
        view = VIEW_OF_ROLE[role_of(request, query_token=True)]
        # On a reconnect EventSource sends Last-Event-ID, newer than a since= in its URL.
        since = _since(request.headers.get("last-event-id") or request.query_params.get("since"))
        return EventStream(engine, view, since)

    async def websocket(ws: WebSocket) -> None:
        try:
            view = VIEW_OF_ROLE[role_of(ws, query_token=True)]
            since = _since(ws.query_params.get("since"))
        except ShowcaseError as exc:
            await ws.accept()  # so that the client can read why it is refused
            await ws.close(code=1008, reason=exc.message[:120])
            return
        await websocket_stream(ws, engine, view, since)

    async def healthz(request: Request) -> Response:
        # A log that is down for a while still lets this node serve its viewers: it stays
        # in the balancer's pool, and its commands are refused with a 503 meanwhile.
        ok = engine.log.failed is None
        return JSON({"ok": ok, "seq": engine.committed.seq, "version": __version__,
                     "writable": ok and engine.log.down is None},
                    status_code=200 if ok else 503)

    async def metrics(request: Request) -> Response:
        lines = [
            "# TYPE showcase_seq gauge", f"showcase_seq {engine.committed.seq}",
            "# TYPE showcase_commands_total counter", f"showcase_commands_total {engine.commands}",
            "# TYPE showcase_log_commits_total counter",
            f"showcase_log_commits_total {engine.log.batches}",
            "# TYPE showcase_log_appended_total counter",
            f"showcase_log_appended_total {engine.log.appended}",
            "# TYPE showcase_log_commit_seconds_total counter",
            f"showcase_log_commit_seconds_total {engine.log.commit_seconds:.6f}",
            "# TYPE showcase_log_failed gauge",
            f"showcase_log_failed {int(engine.log.failed is not None)}",
            "# TYPE showcase_log_down gauge",
            f"showcase_log_down {int(engine.log.down is not None)}",
            "# TYPE showcase_log_conflicts_total counter",
            f"showcase_log_conflicts_total {engine.conflicts}",
            "# TYPE showcase_subscribers gauge",
            *(f'showcase_subscribers{{view="{v}"}} {n}' for v, n in engine.hub.count().items()),
            "# TYPE showcase_messages_published_total counter",
            f"showcase_messages_published_total {engine.hub.published}",
            "# TYPE showcase_subscriber_backlog_max gauge",
            f"showcase_subscriber_backlog_max {engine.hub.longest_backlog()}",
            "# TYPE showcase_subscriber_resyncs_total counter",
            f"showcase_subscriber_resyncs_total {engine.hub.resyncs}",
            "# TYPE showcase_live_frames_total counter",
            f"showcase_live_frames_total {engine.live.frames}",
            "# TYPE showcase_proxy_streams_total counter",
            f"showcase_proxy_streams_total {proxy.streams}",
            "# TYPE showcase_health_rounds_total counter",
            f"showcase_health_rounds_total {teams.health_checks}",
            "# TYPE showcase_team_requests_in_flight gauge",
            *(f'showcase_team_requests_in_flight{{team="{t}"}} {c.active}'
              for t, c in sorted(teams.clients.items())),
        ]
        return PlainTextResponse("\n".join(lines) + "\n",
                                 media_type="text/plain; version=0.0.4")

    async def index(request: Request) -> Response:
        return HTMLResponse(_index_page(show))

    remote_page = (Path(__file__).parents[1] / "static" / "remote.html").read_bytes()
    overlays = overlays_dir()

    async def remote(request: Request) -> Response:
        return HTMLResponse(remote_page, headers={"cache-control": "no-cache"})

    routes = [
        Route("/", index),
        Route("/remote", remote),
        Mount("/overlays", app=StaticFiles(directory=overlays), name="overlays"),
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        Route("/api/state", get_state),
        Route("/api/log", get_log),
        Route("/events", events),
        WebSocketRoute("/ws", websocket),
        Route("/api/demo", get_demo, methods=["GET"]),
        Route("/api/demo", command(("operator", "presenter"), "starting a demo", start_demo),
              methods=["POST"]),
        Route("/api/demo/cancel", command(("operator", "presenter"), "cancelling a demo",
                                          cancel_demo), methods=["POST"]),
        Route("/api/bench", get_bench, methods=["GET"]),
        Route("/api/bench", command(("operator",), "starting a benchmark run", start_bench),
              methods=["POST"]),
        Route("/api/bench/suites", bench_suites),
        Route("/api/bench/import", import_bench, methods=["POST"]),
        *(
            Route(f"/api/bench/{action}", command(("operator",), f"to {action} a benchmark run",
                                                  bench_control(action)), methods=["POST"])
            for action in ("pause", "resume", "cancel")
        ),
        Route("/api/bench/{run}/apply", apply_bench, methods=["POST"]),
        Route("/v1/teams/{team}/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/teams/{team}/models", team_models),
        Route("/api/reveal/script", reveal_script),
        Route("/openapi.json", openapi.endpoint(commands_.table)),
        # the commands the lean path also answers (commandpath.py), as ordinary routes
        *(Route(c.path, engine_command(c), methods=["POST"]) for c in commands_.table),
    ]

    async def on_showcase_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ShowcaseError)
        return error_response(exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = {404: f"no such endpoint: {request.method} {request.url.path}",
                   405: f"{request.method} is not allowed on {request.url.path}"}.get(
            exc.status_code, exc.detail)
        return JSON({"error": message, "detail": "see docs/protocol.md"},
                    status_code=exc.status_code, headers=exc.headers)

    async def on_crash(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        status, body = refusal(exc)  # the same words as the lean command path's
        return Response(body, status_code=status, media_type="application/json")

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={ShowcaseError: on_showcase_error, HTTPException: on_http_error,
                            Exception: on_crash},
    )
    app.state.engine = engine
    app.state.teams = teams
    app.state.bench = bench
    app.state.tokens = tokens
    app.state.commands = commands_
    return app


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest(f"query parameter {name!r} must be a whole number, not {raw!r}") from exc
    if value < 0:
        raise BadRequest(f"query parameter {name!r} must not be negative")
    return value


def _since(raw: str | None) -> int | None:
    """``since``: a seq the client has seen; anything unusable gets the client a snapshot."""
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        return None


OVERLAYS = [
    ("scoreboard.html", "Scoreboard", "teams ranked with their points, the cut line and status"),
    ("reveal.html", "Reveal", "the reveal, step by step, in lockstep with the presenter"),
    ("demo.html", "Live demo", "the prompt and every team's answer streaming, TTFT, tokens/s"),
    ("lower-third.html?team=lg", "Lower third", "a team's name and organisation (?team=ID)"),
    ("ticker.html", "Ticker", "every team's live latency along the bottom"),
    ("bench.html", "Benchmark progress",
     "per team and suite: items scored, items a second, time left (accuracy when public)"),
]


def overlays_dir() -> Path:
    """The overlay pages: installed as the showcase_overlays package, or the checkout's."""
    try:
        from importlib.resources import files

        found = Path(str(files("showcase_overlays")))
        if (found / "scoreboard.html").exists():
            return found
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parents[2] / "overlays"


def _index_page(show: Show) -> str:
    """The gallery: every overlay with its URL, for whoever sets up OBS, and the API."""
    cards = "".join(
        f'<li><a href="/overlays/{u}">{html.escape(t)}</a> <code>/overlays/{html.escape(u)}</code>'
        f"<br><small>{html.escape(d)}</small></li>" for u, t, d in OVERLAYS)
    links = [("/remote", "presenter remote (phone): step through the reveal"),
             ("/api/state", "state of the show (JSON, public view without a token)"),
             ("/events", "event stream (server-sent events)"),
             ("/healthz", "health check"), ("/metrics", "Prometheus metrics")]
    items = "".join(f'<li><a href="{u}">{u}</a> {html.escape(d)}</li>' for u, d in links)
    return (f"<!doctype html><meta charset=utf-8><title>{html.escape(show.title_en)}</title>"
            "<style>body{font:16px/1.5 system-ui,'Noto Sans CJK KR',sans-serif;max-width:60em;"
            "margin:2em auto;padding:0 1em}li{margin:.5em 0}code{background:#eee;padding:0 .3em}"
            "</style>"
            f"<h1>{html.escape(show.title_ko)} · {html.escape(show.title_en)}</h1>"
            f"<p>showcase {__version__}</p>"
            "<h2>Overlays</h2><p>For OBS: add a Browser source of 1920×1080 with the URL below "
            "(the page is transparent). Options: <code>?lang=ko</code> or <code>?lang=en</code>, "
            "<code>?bg=000000</code> for a solid background, <code>?team=ID</code> for one "
            "team: the lower third shows it, the scoreboard and the reveal outline its row, "
            f"and the ticker shows it alone.</p><ul>{cards}</ul>"
            f"<h2>Control and data</h2><ul>{items}</ul>"
            "<p>WebSocket: <code>/ws?since=N</code>. Commands: see docs/protocol.md.</p>")
