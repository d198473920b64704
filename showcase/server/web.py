"""Small pieces every HTTP endpoint shares: JSON responses and reading a JSON body."""

from __future__ import annotations

import json
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
    """A request body as JSON; an empty one is ``{}``. A key twice in one object is
    refused: parsers keep one of the two (orjson the last), and the sender meant one."""
    if not body.strip():
        return {}
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("the body is not valid JSON", str(exc)) from exc
    # Each key is followed by a colon, so as many colons as keys kept means none was
    # dropped; only a body with a colon inside a string (or a duplicate) is parsed again,
    # keeping every pair, which costs several times orjson's parse.
    colons = body.count(b":")
    flat = type(value) is dict and colons == len(value)  # a command's body, checked at once
    if not flat and colons != _keys_in(value):
        _DUPLICATES.decode(body.decode("utf-8"))
    return value


def _keys_in(value: Any) -> int:
    """How many keys the objects in ``value`` hold; a plain loop: it runs per command."""
    count = 0
    if type(value) is dict:
        count = len(value)
        value = value.values()
    elif type(value) is not list:
        return 0
    for item in value:
        if type(item) is dict or type(item) is list:
            count += _keys_in(item)
    return count


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise InvalidRequest(f"the body has the key {key!r} twice",
                                 "send each field once: a parser would keep only one of them")
        found[key] = value
    return found


_DUPLICATES = json.JSONDecoder(object_pairs_hook=_unique_keys)
