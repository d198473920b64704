"""Small pieces every HTTP endpoint shares: JSON responses and reading a JSON body."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from showcase.bench.suites import SuiteError
from showcase.core.errors import (
    InvalidRequest,
    LogUnavailable,
    NotAuthenticated,
    NotPermitted,
    RateLimited,
    ShowcaseError,
    StateConflict,
    TooLarge,
    Unknown,
)
from showcase.models.upstream import UpstreamError

MAX_BODY = 64 * 1024


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


#: The HTTP status of each kind of error: the core names what failed, the edge says it in HTTP.
STATUS: dict[type[ShowcaseError], int] = {
    InvalidRequest: 400, NotAuthenticated: 401, NotPermitted: 403, Unknown: 404,
    StateConflict: 409, TooLarge: 413, RateLimited: 429, LogUnavailable: 503,
    SuiteError: 400,  # a run asked for a suite file that cannot be used
}


def status_of(exc: ShowcaseError) -> int:
    """The status ``exc`` is answered with; 500 for a show file or log that cannot be used."""
    if isinstance(exc, UpstreamError):
        return exc.status  # what the team did: 502, 504, or its own 4xx passed on
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500


def error_response(exc: ShowcaseError) -> JSON:
    return JSON(exc.to_json(), status_code=status_of(exc))


async def read_json(request: Request, limit: int = MAX_BODY) -> Any:
    """The request body as JSON, refusing oversized or malformed bodies by name."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise TooLarge(f"the body is too large (at most {limit} bytes)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"the body is too large (at most {limit} bytes)")
    return parse_json(body)


def parse_json(body: bytes | bytearray) -> Any:
    """A request body as JSON; an empty one is ``{}``."""
    if not body.strip():
        return {}
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("the body is not valid JSON", str(exc)) from exc
