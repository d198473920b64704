"""The OpenAI-compatible proxy: ``/v1/teams/{team}/chat/completions`` and ``/models``.

Any OpenAI client pointed at ``http://SERVER/v1/teams/TEAM`` with an operator or presenter
token as its API key works unchanged. The team's own key is added here, on the server, and
never leaves it. Only the teams of the show can be reached: the path names a team, not a
URL, so this is not an open relay.

The answer's bytes pass through as the team sent them, one whole SSE event at a time; the
proxy asks for ``usage`` (``stream_options.include_usage``) to count tokens exactly, and
drops the usage-only chunk again when the client had not asked for it, so a client that
reads ``chunk.choices[0]`` is not surprised. Each answer is measured and recorded as a
``request_measured`` event when it ends, after its client has it whole: a team that sent
no usage is asked to count the tokens first (models/meter.py says how each figure is
measured; the wait for a connection to the team is ``queue_ms``, not the team's TTFT).
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import orjson
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from showcase.core import commands
from showcase.core.bodies import ChatBody
from showcase.core.decode import decode_body
from showcase.core.errors import ShowcaseError
from showcase.models.teams import Teams
from showcase.models.upstream import CANCELLED, OK, Exchange, UpstreamError, describe
from showcase.server.auth import require
from showcase.server.web import JSON, read_json

log = logging.getLogger(__name__)

MAX_PROXY_BODY = 1024 * 1024
ROLES = ("operator", "presenter")


class Proxy:
    def __init__(self, teams: Teams) -> None:
        self.teams = teams
        self.engine = teams.engine
        self.streams = 0

    async def chat_completions(self, request: Request, role: str, actor: str) -> Response:
        require(role, ROLES, "using the proxy")
        team = request.path_params["team"]
        client = self.teams.client(team)  # 404 for a team the show does not have
        body = await read_json(request, MAX_PROXY_BODY)
        decode_body(body, ChatBody)  # checked; the dict goes on to the team as it came
        if not body.get("model") or body.get("model") == team:
            # A client that does not know the team's model name may leave it to the server.
            body["model"] = await self.teams.model_of(team)
        stream = body.get("stream") is True
        added_usage = False
        if stream:
            options = body.get("stream_options")
            if not isinstance(options, dict) or not options.get("include_usage"):
                body["stream_options"] = {**(options if isinstance(options, dict) else {}),
                                          "include_usage": True}
                added_usage = True
        exchange = client.exchange(body)
        try:
            await exchange.start()
        except UpstreamError as exc:
            await self._record(team, actor, exchange, exc.result, exc.message)
            return JSON({"error": exc.message, "detail": exc.detail or "see the team's status"},
                        status_code=exc.status)
        if not stream:
            answer = await exchange.read_all()
            meter = exchange.meter
            if meter.status != OK:
                await self._record(team, actor, exchange, meter.status, meter.error)
                return JSON({"error": f"team {team!r}: {meter.error}", "detail": meter.status},
                            status_code=504 if meter.status == "timeout" else 502)
            # Recorded once the client has its answer: counting tokens the team did not
            # report asks the team's tokenizer, which must not delay the answer.
            return Response(answer, media_type="application/json",
                            headers={"x-showcase-team": team},
                            background=BackgroundTask(self._counted, team, actor, exchange))
        self.streams += 1
        return ProxyStream(self, team, actor, exchange, added_usage)

    async def models(self, request: Request, role: str) -> Response:
        require(role, ROLES, "using the proxy")
        team = request.path_params["team"]
        client = self.teams.client(team)
        try:
            response = await client.http.get("models")
        except httpx.HTTPError as exc:
            return JSON({"error": f"team {team!r}: {describe(exc)}",
                         "detail": "GET models failed"}, status_code=502)
        if response.status_code != 200:
            return JSON({"error": f"team {team!r} answered {response.status_code} to GET models",
                         "detail": response.text[:500]}, status_code=502)
        return Response(response.content, media_type="application/json",
                        headers={"x-showcase-team": team})

    async def _counted(self, team: str, actor: str, exchange: Exchange) -> None:
        await exchange.count()
        await self._record(team, actor, exchange, exchange.meter.status, exchange.meter.error)

    async def _record(self, team: str, actor: str, exchange: Exchange, status: str,
                      error: str) -> None:
        result = {"source": "proxy", "actor": actor, "status": status, "error": error,
                  "metrics": exchange.meter.result()}
        try:
            await self.engine.run("server:proxy", commands.request_measured, team, result)
        except ShowcaseError as exc:
            log.warning("could not record a proxied request for %s: %s", team, exc.message)


class ProxyStream(Response):
    """Streams a team's answer to the client, event by event, while it is measured."""

    def __init__(self, proxy: Proxy, team: str, actor: str, exchange: Exchange,
                 drop_usage: bool) -> None:
        self.proxy = proxy
        self.team = team
        self.actor = actor
        self.exchange = exchange
        self.drop_usage = drop_usage
        self.status_code = 200
        self.background = None
        upstream = exchange.response
        kind = upstream.headers.get("content-type", "text/event-stream") if upstream else ""
        self.raw_headers = [(b"content-type", kind.encode("latin-1")),
                            (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no"),
                            (b"x-showcase-team", team.encode())]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = self.exchange

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            exchange.stop("the client went away")

        try:
            async with exchange, asyncio.TaskGroup() as tasks:
                watcher = tasks.create_task(watch())
                try:
                    await self._relay(send)
                except OSError:
                    exchange.stop("the client went away")
                finally:
                    watcher.cancel()
        finally:
            await self.proxy._counted(self.team, self.actor, exchange)

    async def _relay(self, send: Send) -> None:
        """The team's answer to the client, event by event; an error object at the end of
        a failed stream, since the OpenAI clients raise on one."""
        meter = self.exchange.meter
        await send({"type": "http.response.start", "status": 200,
                    "headers": self.raw_headers})
        async for raw, _new in self.exchange.events():
            if self.drop_usage and meter.usage_only:
                continue
            await send({"type": "http.response.body", "body": raw, "more_body": True})
        if meter.status != OK and meter.status != CANCELLED:
            error = {"error": {"message": f"team {self.team!r}: {meter.error}",
                               "type": meter.status, "code": 502}}
            await send({"type": "http.response.body",
                        "body": b"data: " + orjson.dumps(error) + b"\n\n",
                        "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

