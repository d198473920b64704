"""The log's proofs over HTTP, for anyone: the signed checkpoint, the verifier key, an
inclusion proof for an event and a consistency proof between two checkpoints; and the full
log of a published round, once the operator publishes it (core/disclosure.py), with the
checkpoint signed at its size, for ``showcase verify``.

Everything here is public and reads nothing sealed: a proof names an event by its seq and
its leaf hash, and carries the event's line (its leaf bytes) only when the public already
sees that event whole; a score still sealed is proven to be in the log without showing it.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from showcase.core import disclosure
from showcase.core import events as ev
from showcase.core.errors import InvalidRequest, StateConflict, Unknown
from showcase.core.merkle import ProofError, canonical_line, leaf_hash
from showcase.core.secrecy import event_data
from showcase.runtime.engine import Engine
from showcase.runtime.transparency import Transparency
from showcase.server.endpoints import actor, command
from showcase.server.services import services
from showcase.server.web import JSON

LINES_PER_READ = 5_000  # a published log is sent in pieces of this many events


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


# -- a published round's full log -------------------------------------------------------

async def publish_round_log(request: Request, role: str, body: Any, key: str) -> ev.Event:
    """Publish a published round's log: refused while the prefix holds anything still
    sealed (core/disclosure.py); then a checkpoint at its size is signed, so the download
    verifies against a signature whatever was appended since."""
    engine = services(request).engine
    round_id = request.path_params["round"]
    rnd = engine.committed.rounds.get(round_id)
    if rnd is not None and rnd.published_seq and not rnd.log_size:
        prefix = await asyncio.to_thread(lambda: list(engine.log.read(0, rnd.published_seq)))
        found = disclosure.still_sealed(prefix, engine.committed)
        if found is not None:
            seq, why = found
            raise StateConflict(f"round {round_id!r}'s log cannot be published yet: seq {seq} "
                                f"({why})", "publish it once that round's results are out",
                                seq=engine.committed.seq)
    def sign(event: ev.Event) -> None:
        if engine.transparency is not None:
            engine.transparency.sign_at(event.data["size"], time.time())

    return await engine.run(actor(request, role), disclosure.publish_log, round_id, body,
                            key=key, timeout=engine.show.command_deadline, then=sign)


def _published_size(request: Request) -> tuple[str, int]:
    round_id = request.path_params["round"]
    rnd = services(request).engine.committed.rounds.get(round_id)
    if rnd is None:
        raise Unknown(f"no round {round_id!r}")
    if not rnd.log_size:
        raise Unknown(f"round {round_id!r}'s log is not published",
                      "the operator publishes it after the round's results")
    return round_id, rnd.log_size


async def round_log(request: Request) -> Response:
    """The published round's log: the first events of ``events.ndjson`` as ``showcase
    export`` writes them, byte for byte (their leaves are the tree's)."""
    round_id, size = _published_size(request)
    engine = services(request).engine
    return StreamingResponse(_lines(engine, size), media_type="application/x-ndjson", headers={
        "content-disposition": f'attachment; filename="{round_id}-events.ndjson"'})


async def _lines(engine: Engine, size: int) -> AsyncIterator[bytes]:
    sent = 0
    while sent < size:
        batch = await asyncio.to_thread(_read, engine, sent, min(LINES_PER_READ, size - sent))
        if not batch:
            return
        yield b"".join(canonical_line(e.to_json()) + b"\n" for e in batch)
        sent += len(batch)


def _read(engine: Engine, since: int, count: int) -> list[ev.Event]:
    return list(engine.log.read(since, count))


async def round_checkpoint(request: Request) -> Response:
    """The checkpoint signed at the published round log's size."""
    _, size = _published_size(request)
    note = _log(request).sign_at(size, time.time())
    return PlainTextResponse(note, headers={"content-disposition": "inline"})


def _public_whole(event: ev.Event) -> bool:
    """Whether the public already sees this event exactly as the log holds it."""
    return event_data(event, ev.PUBLIC) == event.data


ROUTES = [
    Route("/api/log/checkpoint", checkpoint),
    Route("/api/log/key", key),
    Route("/api/log/proof", proof),
    Route("/api/log/consistency", consistency),
    Route("/api/log/rounds/{round}/events.ndjson", round_log),
    Route("/api/log/rounds/{round}/checkpoint", round_checkpoint),
    Route("/api/rounds/{round}/publish-log",
          command(("operator",), "publishing a round's log", publish_round_log,
                  ev.LOG_PUBLISHED),
          methods=["POST"]),
]
