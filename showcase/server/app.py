"""The server as an ASGI app: its parts, their lifespan, the routes and the error answers.

The endpoints are in endpoints.py and pages.py; the commands of the table are also
answered in front of this app by commandpath.py (``showcase serve``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from showcase.core import events as ev
from showcase.core.errors import ShowcaseError
from showcase.core.showfile import Show
from showcase.log.base import EventLog
from showcase.server import endpoints as api
from showcase.server import openapi, outputs, voting
from showcase.server import provenance as provenance_api
from showcase.server import transparency as proofs
from showcase.server.auth import Tokens
from showcase.server.pages import (
    favicon,
    index,
    judge,
    overlays_dir,
    remote,
    verify,
    vote_page,
)
from showcase.server.services import Services
from showcase.server.table import Commands, refusal
from showcase.server.web import JSON, error_response

log = logging.getLogger(__name__)


def build_app(show: Show, data_dir: str | Path, tokens: Tokens | None = None, *,
              event_log: EventLog | None = None, log_key: str | Path | None = None
              ) -> Starlette:
    """The server; ``event_log`` replaces the SQLite log in ``data_dir`` (``--redis``);
    ``log_key`` is the checkpoints' signing key (``--log-key``)."""
    parts = Services.build(show, data_dir, tokens, event_log, log_key)
    app = Starlette(
        routes=routes(parts.commands),
        lifespan=lifespan,
        exception_handlers={ShowcaseError: on_showcase_error, HTTPException: on_http_error,
                            Exception: on_crash},
    )
    # "/api/scores/" is answered like any path the API does not have (404 with the
    # error in JSON), not with a bare 307 to "/api/scores" that a client may follow
    # without its body or its token.
    app.router.redirect_slashes = False
    app.state.services = parts
    # the parts by name, for the command line and the tests
    app.state.engine = parts.engine
    app.state.teams = parts.teams
    app.state.bench = parts.bench
    app.state.tokens = parts.tokens
    app.state.commands = parts.commands
    return app


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Every long-lived part runs in here: the log writer, the live channel, the teams'
    health checks and the benchmark runner; shut down in the reverse order."""
    parts: Services = app.state.services
    engine = parts.engine
    if not engine.is_open:
        engine.open()
    log.info("show %r at seq %d from %s", parts.show.title_en, engine.committed.seq,
             parts.data_dir)
    try:
        parts.booth.store.open()
        async with engine.running(), engine.signing(), engine.live.running(), \
                parts.teams.running_checks(), parts.booth.running(), \
                parts.provenance.running():
            await parts.bench.recover()
            try:
                yield
            finally:
                await parts.bench.aclose()
    finally:
        parts.booth.store.close()
        engine.close()


def routes(commands: Commands) -> list[BaseRoute]:
    """Every route of the API (docs/protocol.md)."""
    operator, stage = ("operator",), ("operator", "presenter")
    return [
        Route("/", index),
        Route("/remote", remote),
        Route("/judge", judge),
        Route("/verify", verify),
        Route("/vote", vote_page),
        Route("/favicon.ico", favicon),
        Mount("/overlays", app=StaticFiles(directory=overlays_dir()), name="overlays"),
        Route("/healthz", api.healthz),
        Route("/metrics", api.metrics),
        Route("/api/state", api.get_state),
        Route("/api/log", api.get_log),
        Route("/api/judge/sheets", api.get_judge_sheets),
        Route("/events", api.events),
        WebSocketRoute("/ws", api.websocket),
        Route("/api/demo", api.get_demo, methods=["GET"]),
        Route("/api/demo", api.command(stage, "starting a demo", api.start_demo,
                                       ev.DEMO_STARTED), methods=["POST"]),
        Route("/api/demo/cancel", api.command(stage, "cancelling a demo", api.cancel_demo,
                                              ev.DEMO_CANCELLED), methods=["POST"]),
        Route("/api/bench", api.get_bench, methods=["GET"]),
        Route("/api/bench", api.command(operator, "starting a benchmark run", api.start_bench,
                                        ev.BENCH_STARTED), methods=["POST"]),
        Route("/api/bench/suites", api.bench_suites),
        Route("/api/bench/import", api.import_bench, methods=["POST"]),
        *(
            Route(f"/api/bench/{action}", api.command(operator, f"to {action} a benchmark run",
                                                      api.bench_control(action), event_type),
                  methods=["POST"])
            for action, event_type in (("pause", ev.BENCH_PAUSED), ("resume", ev.BENCH_RESUMED),
                                       ("cancel", ev.BENCH_CANCELLED))
        ),
        Route("/api/bench/{run}/apply", api.apply_bench, methods=["POST"]),
        Route("/v1/teams/{team}/chat/completions", api.chat_completions, methods=["POST"]),
        Route("/v1/teams/{team}/models", api.team_models),
        Route("/api/reveal/script", api.reveal_script),
        Route("/openapi.json", openapi.endpoint(commands.table)),
        *proofs.ROUTES,
        *voting.ROUTES,
        *outputs.ROUTES,
        *provenance_api.ROUTES,
        # the commands the front also answers (commandpath.py), as ordinary routes
        *(Route(c.path, api.engine_command(c), methods=["POST"]) for c in commands.table),
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
    status, body = refusal(exc)  # the same words as the command front's
    return Response(body, status_code=status, media_type="application/json")
