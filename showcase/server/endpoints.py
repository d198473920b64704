"""The HTTP API's endpoints, as docs/protocol.md describes them.

Each reads the server's parts from ``request.app.state`` (services.py); app.py puts them
on routes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response
from starlette.websockets import WebSocket

from showcase import __version__
from showcase.bench import runs as benchrun
from showcase.bench.suites import SuiteError
from showcase.core import events as ev
from showcase.core.checks import known_round
from showcase.core.errors import BadRequest, Conflict, Forbidden, ShowcaseError
from showcase.core.views import VIEW_OF_ROLE, judge_sheets, latest_bench, latest_demo
from showcase.server.auth import JUDGE, require
from showcase.server.services import services
from showcase.server.streams import EventStream, websocket_stream
from showcase.server.table import EngineCommand, actor_of, answer, key_of, same_command
from showcase.server.web import JSON, read_json

IMPORT_LIMIT = 4 * 1024 * 1024

Endpoint = Callable[[Request], Awaitable[Response]]
# (request, role, body, Idempotency-Key) -> the event the command appended
Run = Callable[[Request, str, Any, str], Awaitable[ev.Event]]


def role_of(connection: HTTPConnection, query_token: bool = False) -> str:
    """The caller's role. ``?token=`` only where a browser cannot send headers
    (EventSource, WebSocket, a page's state fetch), never for commands."""
    return services(connection).tokens.role_of(
        connection.headers.get("authorization"),
        connection.query_params.get("token") if query_token else None)


def actor(request: Request, role: str) -> str:
    """``role:user``. Headers arrive as Latin-1; a UTF-8 name such as 김지원 is decoded
    back from bytes."""
    return actor_of(role, request.headers.get("x-showcase-user", "").encode("latin-1"))


# -- commands ------------------------------------------------------------------------------

def command(allowed: tuple[str, ...], what: str, run: Run, event_type: str) -> Endpoint:
    """An endpoint that checks the role, reads the JSON body and answers the event's seq:
    within the show's command deadline, and once per Idempotency-Key (a retry gets the
    first answer; a key used for another command is refused)."""
    async def endpoint(request: Request) -> Response:
        role = role_of(request)
        require(role, allowed, what)
        body = await read_json(request)
        key = request_key(request)
        event = same_command(await run(request, role, body, key), event_type, key)
        return JSON({"seq": event.seq, "type": event.type}, status_code=201)
    return endpoint


def request_key(request: Request) -> str:
    """The request's Idempotency-Key, '' without one, refused (400) when malformed."""
    return key_of(request.headers.get("idempotency-key", "").encode("latin-1"))


def deadline(request: Request) -> float:
    return services(request).engine.show.command_deadline


def engine_command(command: EngineCommand) -> Endpoint:
    """The endpoint of a command of the table (commandpath.py answers the same in front)."""
    async def endpoint(request: Request) -> Response:
        commands = services(request).commands
        caller = commands.caller(command, request.headers.get("authorization"))
        body = await read_json(request)
        who, fn, args = commands.bind(
            command, request.path_params, caller,
            request.headers.get("x-showcase-user", "").encode("latin-1"), body)
        key = request_key(request)
        event = await commands.run(command, who, fn, args, key)
        return Response(answer(event.seq, event.type), status_code=201,
                        media_type="application/json")
    return endpoint


async def start_demo(request: Request, role: str, body: Any, key: str) -> ev.Event:
    return await services(request).teams.start_demo(actor(request, role), body, key=key,
                                                    timeout=deadline(request))


async def cancel_demo(request: Request, role: str, body: Any, key: str) -> ev.Event:
    return await services(request).teams.cancel_demo(actor(request, role), body, key=key,
                                                     timeout=deadline(request))


async def start_bench(request: Request, role: str, body: Any, key: str) -> ev.Event:
    return await services(request).bench.start(actor(request, role), body, key=key,
                                               timeout=deadline(request))


def bench_control(action: str) -> Run:
    async def run(request: Request, role: str, body: Any, key: str) -> ev.Event:
        return await services(request).bench.control(actor(request, role), action, body,
                                                     key=key, timeout=deadline(request))
    return run


async def apply_bench(request: Request) -> Response:
    role = role_of(request)
    require(role, ("operator",), "entering a benchmark run's results")
    raw = request.path_params["run"]
    if not raw.isdigit():
        raise BadRequest(f"the run must be a number (its seq), not {raw!r}")
    body = await read_json(request)
    key = request_key(request)
    entered = [same_command(e, ev.SCORE_ENTERED, key) for e in await services(request).bench.apply(
        actor(request, role), int(raw), body, key=key, timeout=deadline(request))]
    return JSON({"seq": entered[-1].seq, "type": ev.SCORE_ENTERED,
                 "entered": [{"seq": e.seq, "team": e.data["team"],
                              "value": e.data["value"]} for e in entered]},
                status_code=201)


async def import_bench(request: Request) -> Response:
    role = role_of(request)
    require(role, ("operator",), "importing benchmark results")
    body = await read_json(request, IMPORT_LIMIT)  # a results JSON carries its configs
    key = request_key(request)
    recorded, entered = await services(request).bench.import_results(
        actor(request, role), body, key=key, timeout=deadline(request))
    same_command(recorded, ev.BENCH_IMPORTED, key)
    same_command(entered, ev.SCORE_ENTERED, key)
    return JSON({"seq": entered.seq, "type": entered.type, "imported": recorded.seq,
                 "value": entered.data["value"],
                 "score": recorded.data["score"]}, status_code=201)


async def chat_completions(request: Request) -> Response:
    role = role_of(request)
    require(role, ("operator", "presenter"), "using the proxy")
    return await services(request).proxy.chat_completions(request, role, actor(request, role))


async def team_models(request: Request) -> Response:
    return await services(request).proxy.models(request, role_of(request))


# -- reads ---------------------------------------------------------------------------------

async def reveal_script(request: Request) -> Response:
    require(role_of(request), ("operator", "presenter"), "reading the reveal script")
    state = services(request).engine.committed
    round_id = known_round(state, request.query_params.get("round"))
    rnd = state.rounds[round_id]
    if rnd.frozen is None:
        raise Conflict(f"round {round_id!r} is not frozen: it has no reveal script yet",
                       f"freeze it: POST /api/rounds/{round_id}/freeze", seq=state.seq)
    return JSON({"seq": state.seq, "round": round_id, "step": rnd.step,
                 "total": len(rnd.frozen["script"]), "steps": rnd.frozen["script"]})


async def get_state(request: Request) -> Response:
    view = VIEW_OF_ROLE[role_of(request, query_token=True)]
    parts = services(request)
    engine = parts.engine
    # "build": the overlays' build hash, which a page keeps as the build it loaded with
    return JSON({**engine.state_message(view), "live": engine.live.current(),
                 "build": parts.outputs.build})


async def get_judge_sheets(request: Request) -> Response:
    """The calling judge's own sheets in the current round (the judge's page, /judge)."""
    caller = services(request).tokens.caller(request.headers.get("authorization"))
    require(caller.role, (JUDGE,), "reading a judge's sheets")
    if caller.judge is None:
        raise Forbidden("a judge's sheets are read with that judge's own token",
                        "this is the token shared by every judge; use your own")
    return JSON(judge_sheets(services(request).engine.committed, caller.judge))


async def get_demo(request: Request) -> Response:
    view = VIEW_OF_ROLE[role_of(request, query_token=True)]
    engine = services(request).engine
    return JSON({"seq": engine.committed.seq,
                 "demo": latest_demo(engine.committed, public=view != "operator"),
                 "live": engine.live.demo})


async def get_bench(request: Request) -> Response:
    view = VIEW_OF_ROLE[role_of(request, query_token=True)]
    engine = services(request).engine
    return JSON({"seq": engine.committed.seq,
                 "bench": latest_bench(engine.committed, public=view != "operator"),
                 "live": engine.live.bench})


async def bench_suites(request: Request) -> Response:
    require(role_of(request), ("operator",), "listing the benchmark suites")
    parts = services(request)
    settings = parts.show.bench
    try:
        suites = await asyncio.to_thread(benchrun.available, settings)
    except SuiteError as exc:
        raise Conflict(exc.message, "fix the suite file; runs are refused until then",
                       seq=parts.engine.committed.seq) from None
    return JSON({"suites": [s.header() for s in suites.values()],
                 "criterion": settings.criterion, "weights": settings.weights,
                 "concurrency": settings.concurrency, "retries": settings.retries})


async def get_log(request: Request) -> Response:
    require(role_of(request), ("operator",), "reading the event log")
    engine = services(request).engine
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
        # A filter on a rare type reads the whole log: in a thread, not on the loop that
        # serves the viewers.
        found = await asyncio.to_thread(engine.read_log, since, limit, wanted)
    return JSON({"seq": engine.committed.seq, "events": [e.to_json() for e in found]})


async def events(request: Request) -> Response:
    view = VIEW_OF_ROLE[role_of(request, query_token=True)]
    # On a reconnect EventSource sends Last-Event-ID, newer than a since= in its URL.
    since = _since(request.headers.get("last-event-id") or request.query_params.get("since"))
    return EventStream(services(request).engine, view, since)


async def websocket(ws: WebSocket) -> None:
    try:
        view = VIEW_OF_ROLE[role_of(ws, query_token=True)]
        since = _since(ws.query_params.get("since"))
    except ShowcaseError as exc:
        await ws.accept()  # so that the client can read why it is refused
        await ws.close(code=1008, reason=exc.message[:120])
        return
    parts = services(ws)
    # Only public connections can be overlay pages: a token's stream is a desk's.
    await websocket_stream(ws, parts.engine, view, since,
                           parts.outputs if view == "public" else None)


async def healthz(request: Request) -> Response:
    # A log that is down for a while still lets this node serve its viewers: it stays
    # in the balancer's pool, and its commands are refused with a 503 meanwhile.
    # Not writable as soon as the log leaves an append unanswered (engine.stalled), before
    # any connection to it times out.
    engine = services(request).engine
    ok = engine.log.failed is None
    return JSON({"ok": ok, "seq": engine.committed.seq, "version": __version__,
                 "writable": ok and engine.log.down is None and not engine.stalled()},
                status_code=200 if ok else 503)


async def metrics(request: Request) -> Response:
    parts = services(request)
    engine, teams = parts.engine, parts.teams
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
        f"showcase_proxy_streams_total {parts.proxy.streams}",
        "# TYPE showcase_health_rounds_total counter",
        f"showcase_health_rounds_total {teams.health_checks}",
        "# TYPE showcase_outputs gauge", f"showcase_outputs {len(parts.outputs.listed)}",
        "# TYPE showcase_outputs_drifted gauge",
        f"showcase_outputs_drifted {parts.outputs.drifted()}",
        "# TYPE showcase_output_hellos_total counter",
        f"showcase_output_hellos_total {parts.outputs.heard}",
        "# TYPE showcase_team_requests_in_flight gauge",
        *(f'showcase_team_requests_in_flight{{team="{t}"}} {c.active}'
          for t, c in sorted(teams.clients.items())),
    ]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


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
