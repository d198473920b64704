"""The audience's voting over HTTP (docs/protocol.md, "Audience voting"): sessions,
battles and votes for viewers; opening, counts, closing and the vote log for the operator.
The booth (voting/booth.py) does the work; this module reads requests and answers them."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from showcase.core import ballots
from showcase.core.bodies import SessionBody, VoteBody, VotingCloseBody, VotingOpenBody
from showcase.core.checks import known_round
from showcase.core.decode import decode_body
from showcase.server.auth import require
from showcase.server.endpoints import actor, role_of
from showcase.server.services import services
from showcase.server.web import JSON, read_json

SESSION_HEADER = "x-vote-session"
POOL_LIMIT = 4 * 1024 * 1024  # a battle pool carries every team's answer to every prompt


async def new_session(request: Request) -> Response:
    decode_body(await read_json(request), SessionBody)
    return JSON({"session": services(request).booth.new_session()}, status_code=201)


async def next_battle(request: Request) -> Response:
    booth = services(request).booth
    return JSON(booth.next_battle(request.headers.get(SESSION_HEADER)),
                headers={"cache-control": "no-store"})


async def vote(request: Request) -> Response:
    body = decode_body(await read_json(request), VoteBody)
    host = request.client.host if request.client else ""
    answer = await services(request).booth.vote(request.headers.get(SESSION_HEADER), host, body)
    return JSON(answer, status_code=201)


async def open_voting(request: Request) -> Response:
    role = role_of(request)
    require(role, ("operator",), "opening voting")
    body = decode_body(await read_json(request, POOL_LIMIT), VotingOpenBody)
    event = await services(request).engine.run(actor(request, role), ballots.open_voting,
                                               request.path_params["round"], body)
    return JSON({"seq": event.seq, "type": event.type}, status_code=201)


async def close_voting(request: Request) -> Response:
    role = role_of(request)
    require(role, ("operator",), "closing voting")
    body = decode_body(await read_json(request), VotingCloseBody)
    parts = services(request)
    round_id = known_round(parts.engine.committed, request.path_params["round"])
    event = await parts.booth.close(actor(request, role), round_id, body)
    return JSON({"seq": event.seq, "type": event.type, "votes": event.data["votes"],
                 "log_hash": event.data["log_hash"]}, status_code=201)


async def voting_status(request: Request) -> Response:
    parts = services(request)
    round_id = known_round(parts.engine.committed, request.path_params["round"])
    operator = role_of(request, query_token=True) == "operator"
    return JSON(await parts.booth.status(round_id, operator),
                headers={"cache-control": "no-store"})


async def votes_ndjson(request: Request) -> Response:
    parts = services(request)
    round_id = known_round(parts.engine.committed, request.path_params["round"])
    public = role_of(request) != "operator"
    body = await asyncio.to_thread(parts.booth.export, round_id, public)
    return Response(body, media_type="application/x-ndjson",
                    headers={"content-disposition": f'attachment; filename="votes-{round_id}'
                                                    '.ndjson"'})


ROUTES = [
    Route("/api/vote/session", new_session, methods=["POST"]),
    Route("/api/vote/battle", next_battle, methods=["GET"]),
    Route("/api/vote", vote, methods=["POST"]),
    Route("/api/rounds/{round}/voting/open", open_voting, methods=["POST"]),
    Route("/api/rounds/{round}/voting/close", close_voting, methods=["POST"]),
    Route("/api/rounds/{round}/voting", voting_status, methods=["GET"]),
    Route("/api/rounds/{round}/votes.ndjson", votes_ndjson, methods=["GET"]),
]
