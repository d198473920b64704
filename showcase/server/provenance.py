"""Weight provenance checks over HTTP (docs/protocol.md, "Provenance"): the operator
starts a check and follows it; announcing its finding is a command of the table
(``POST /api/provenance/announce``). The runner (provenance/runs.py) does the work."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from showcase.core.views import provenance
from showcase.server.auth import require
from showcase.server.endpoints import actor, role_of
from showcase.server.services import services
from showcase.server.web import JSON, read_json


async def start_check(request: Request) -> Response:
    """202: the check runs; its result is recorded (sealed) when it is done."""
    role = role_of(request)
    require(role, ("operator",), "starting a provenance check")
    body = await read_json(request)
    run = await services(request).provenance.start(actor(request, role), body)
    return JSON({"check": run.id, "status": run.status, "team": run.team,
                 "reference": run.reference, "label": run.label,
                 "component": run.component}, status_code=202,
                headers={"location": f"/api/provenance?check={run.id}"})


async def list_checks(request: Request) -> Response:
    """The checks this server ran or runs (progress, errors) and every check recorded."""
    require(role_of(request), ("operator",), "reading provenance checks")
    parts = services(request)
    state = parts.engine.committed
    return JSON({"seq": state.seq, "runs": parts.provenance.listing(),
                 "recorded": provenance(state, public=False)},
                headers={"cache-control": "no-store"})


ROUTES = [
    Route("/api/provenance", start_check, methods=["POST"]),
    Route("/api/provenance", list_checks, methods=["GET"]),
]
