"""The log's proofs over HTTP, for anyone: the signed checkpoint, the verifier key, an
inclusion proof for an event and a consistency proof between two checkpoints.

Everything here is public and reads nothing sealed: a proof names an event by its seq and
its leaf hash, and carries the event's line (its leaf bytes) only when the public already
sees that event whole; a score still sealed is proven to be in the log without showing it.
"""

from __future__ import annotations

import asyncio
import base64

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from showcase.core import events as ev
from showcase.core.errors import InvalidRequest, StateConflict, Unknown
from showcase.core.merkle import ProofError, canonical_line, leaf_hash
from showcase.core.secrecy import event_data
from showcase.runtime.transparency import Transparency
from showcase.server.services import services
from showcase.server.web import JSON


def _log(request: Request) -> Transparency:
    found = services(request).engine.transparency
    if found is None:
        raise StateConflict("this server keeps no Merkle tree of its log")
    return found


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _number(request: Request, name: str, default: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        if default is None:
            raise InvalidRequest(f"give ?{name}=N", f"{name}: a number of events, from 1")
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidRequest(f"?{name} must be a whole number from 1, not {raw!r}")
    return int(raw)


async def checkpoint(request: Request) -> Response:
    note = _log(request).note
    if note is None:
        raise StateConflict("no checkpoint is signed yet",
                            "one is signed at the first publication, or soon after events")
    return PlainTextResponse(note, headers={"cache-control": "no-store"})


async def key(request: Request) -> Response:
    return PlainTextResponse(str(_log(request).verifier) + "\n")


async def proof(request: Request) -> Response:
    log = _log(request)
    size = _number(request, "size", log.signed_size or log.tree.size)
    seq = _number(request, "seq")
    if size > log.tree.size:
        raise Unknown(f"the log holds {log.tree.size} events, not {size}")
    if seq > size:
        raise InvalidRequest(f"seq {seq} is not in the first {size} events",
                             "ask for a size at least as large as the seq")
    engine = services(request).engine
    answer = {"seq": seq, "size": size, "root": _b64(log.tree.root(size)),
              "leaf_hash": _b64(log.tree.levels[0][seq - 1]),
              "proof": [_b64(h) for h in log.tree.inclusion_proof(seq - 1, size)],
              "signed": size in log.notes}
    found = await asyncio.to_thread(lambda: list(engine.log.read(seq - 1, 1)))
    event = found[0] if found else None
    if event is not None and _public_whole(event):
        line = canonical_line(event.to_json())
        assert leaf_hash(line) == log.tree.levels[0][seq - 1]
        answer["line"] = line.decode()
    return JSON(answer)


async def consistency(request: Request) -> Response:
    log = _log(request)
    old = _number(request, "from")
    new = _number(request, "to", log.signed_size or log.tree.size)
    try:
        path = log.tree.consistency_proof(old, new)
    except ProofError as exc:
        raise InvalidRequest(str(exc)) from None
    return JSON({"from": old, "to": new, "from_root": _b64(log.tree.root(old)),
                 "to_root": _b64(log.tree.root(new)), "proof": [_b64(h) for h in path]})


def _public_whole(event: ev.Event) -> bool:
    """Whether the public already sees this event exactly as the log holds it."""
    return event_data(event, ev.PUBLIC) == event.data


ROUTES = [
    Route("/api/log/checkpoint", checkpoint),
    Route("/api/log/key", key),
    Route("/api/log/proof", proof),
    Route("/api/log/consistency", consistency),
]
