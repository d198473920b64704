"""``GET /api/outputs`` and ``POST /api/outputs/reload``: the outputs connected to this
node, for the operator (the registry: runtime/outputs.py)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from showcase.core.decode import decode_body
from showcase.runtime.outputs import ReloadBody
from showcase.server.auth import require
from showcase.server.endpoints import actor, role_of
from showcase.server.services import services
from showcase.server.web import JSON, read_json

log = logging.getLogger(__name__)


async def list_outputs(request: Request) -> Response:
    require(role_of(request), ("operator",), "listing the outputs")
    return JSON(services(request).outputs.describe())


async def reload_outputs(request: Request) -> Response:
    role = role_of(request)
    require(role, ("operator",), "reloading outputs")
    which = decode_body(await read_json(request), ReloadBody)
    parts = services(request)
    ids = await parts.outputs.reload(which)
    # An operator's action on this node's connections, not a fact of the show: logged
    # here, not recorded in the event log (runtime/outputs.py).
    log.info("%s asked %s to reload (build %s)", actor(request, role),
             ", ".join(ids) or "no output", parts.outputs.build)
    return JSON({"reloading": ids, "build": parts.outputs.build}, status_code=202)


ROUTES = [
    Route("/api/outputs", list_outputs, methods=["GET"]),
    Route("/api/outputs/reload", reload_outputs, methods=["POST"]),
]
