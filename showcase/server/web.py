"""Small pieces every HTTP endpoint shares: JSON responses and reading a JSON body."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from showcase.core.errors import BadRequest, PayloadTooLarge, ShowcaseError

MAX_BODY = 64 * 1024


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(exc: ShowcaseError) -> JSON:
    return JSON(exc.to_json(), status_code=exc.status)


async def read_json(request: Request, limit: int = MAX_BODY) -> Any:
    """The request body as JSON, refusing oversized or malformed bodies by name."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise PayloadTooLarge(f"the body is too large (at most {limit} bytes)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the body is too large (at most {limit} bytes)")
    return parse_json(body)


def parse_json(body: bytes | bytearray) -> Any:
    """A request body as JSON; an empty one is ``{}``."""
    if not body.strip():
        return {}
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("the body is not valid JSON", str(exc)) from exc
