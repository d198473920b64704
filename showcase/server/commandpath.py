"""The show's commands, answered by a plain ASGI app in front of the Starlette app.

Every command that is only a check against the state and one durable event (scores,
team status, rounds, the reveal) is described once, in the command table (table.py). The
Starlette app serves them like any route. ``showcase serve`` also puts ``CommandFront``
in front of it: a ``POST`` to a path of the table is answered here, with nothing but the
ASGI interface (``scope``, ``receive``, ``send``): no router, no middleware, no
``Request`` object, no exception handlers. Everything else, a command path spelt with
``%``-escapes included, goes to the Starlette app, which has the same routes. The
answers, refusals included, come from the table's ``answer`` and ``refusal``, so both give
the same status and bytes (tests/test_commandpath.py holds them to that).

An audience vote (``POST /api/vote``, voting/booth.py) is answered here too: votes come by
the thousand a second, and the same saving applies to them.

The server (uvicorn) keeps what is HTTP's: keep-alive, pipelining, ``Expect:
100-continue`` (sent only once the body is asked for, so a caller without the role is
refused before it sends it), chunked bodies and clients that leave early.

Why: through Starlette's router, middleware and exception handlers a command costs 1.6
times the CPU it costs here, and the server acknowledges half as many a second
(docs/performance.md, "A plain ASGI front instead of a protocol subclass"). The protocol
subclass this replaced was cheaper still (0.6 times the instructions), but it overrode
uvicorn's private methods and broke with its releases.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from showcase.core.bodies import VoteBody
from showcase.core.decode import decode_body
from showcase.core.errors import PayloadTooLarge, ShowcaseError
from showcase.server.table import Commands, EngineCommand, answer, key_of, refusal
from showcase.server.web import MAX_BODY, parse_json

log = logging.getLogger(__name__)

_JSON = (b"content-type", b"application/json")
# A refusal of an oversized body: the rest of it is never read, so the connection cannot
# carry another request; the server closes it after the answer.
_CLOSE = (b"connection", b"close")
VOTE_PATH = b"/api/vote"


class CommandFront:
    """An ASGI app that answers the command table's ``POST``s and hands the rest to ``app``."""

    def __init__(self, app: ASGIApp, commands: Commands) -> None:
        self.app = app
        self.commands = commands

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            # The path as sent: an escaped one goes to the app, which unescapes it.
            raw: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
            if raw == VOTE_PATH:
                await self._vote(scope, receive, send)
                return
            found = None if b"%" in raw else self.commands.match(raw.decode("latin-1"))
            if found is not None:
                await self._command(found[0], found[1], scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _command(self, command: EngineCommand, params: dict[str, str], scope: Scope,
                       receive: Receive, send: Send) -> None:
        # The app's order: the caller's role, then the body's size, then the body.
        headers = scope["headers"]
        try:
            authorization = _header(headers, b"authorization")
            caller = self.commands.caller(
                command, authorization.decode("latin-1") if authorization else None)
            body = await _read_body(headers, receive)
            if body is None:
                return  # the client left before its body came: nothing to answer
            actor, fn, args = self.commands.bind(command, params, caller,
                                                 _header(headers, b"x-showcase-user"),
                                                 parse_json(body))
            key = key_of(_header(headers, b"idempotency-key"))
            event = await self.commands.run(command, actor, fn, args, key)
        except Exception as exc:  # every error is an answer, as in the app
            if not isinstance(exc, ShowcaseError):
                log.error("unexpected error on POST %s", scope["path"], exc_info=exc)
            status, content = refusal(exc)
            close = isinstance(exc, PayloadTooLarge)
            await _respond(send, status, content, close)
            return
        await _respond(send, 201, answer(event.seq, event.type), False)


    async def _vote(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /api/vote`` as server/voting.py answers it: the body, then the booth."""
        headers = scope["headers"]
        try:
            body = await _read_body(headers, receive)
            if body is None:
                return
            vote = decode_body(parse_json(body), VoteBody)
            session = _header(headers, b"x-vote-session")
            client = scope.get("client")
            booth = self.app.state.services.booth  # type: ignore[attr-defined]
            result = await booth.vote(session.decode("latin-1") if session else None,
                                      client[0] if client else "", vote)
        except Exception as exc:
            if not isinstance(exc, ShowcaseError):
                log.error("unexpected error on POST /api/vote", exc_info=exc)
            status, content = refusal(exc)
            await _respond(send, status, content, isinstance(exc, PayloadTooLarge))
            return
        await _respond(send, 201, orjson.dumps(result), False)


async def _read_body(headers: Iterable[tuple[bytes, bytes]], receive: Receive
                     ) -> bytearray | None:
    """The request's body, refused (``PayloadTooLarge``) as soon as it is known to be too
    large: by its Content-Length before any of it is read, else once it grows past it."""
    length = _header(headers, b"content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise PayloadTooLarge(f"the body is too large (at most {MAX_BODY} bytes)")
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        body += message.get("body", b"")
        if len(body) > MAX_BODY:
            raise PayloadTooLarge(f"the body is too large (at most {MAX_BODY} bytes)")
        if not message.get("more_body", False):
            return body


async def _respond(send: Send, status: int, content: bytes, close: bool) -> None:
    headers: list[tuple[bytes, bytes]] = [_JSON, (b"content-length", b"%d" % len(content))]
    if close:
        headers.append(_CLOSE)
    start: dict[str, Any] = {"type": "http.response.start", "status": status,
                             "headers": headers}
    try:
        await send(start)
        await send({"type": "http.response.body", "body": content})
    except OSError:
        # The client is gone; the command is recorded all the same, as in the app.
        return


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None
