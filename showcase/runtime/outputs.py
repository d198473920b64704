"""On-air outputs seen from the desk: which overlay pages are connected to this node, which
build they run, whether their data is current and whether they are on Program.

Every overlay page announces itself on its own viewer WebSocket (a ``hello`` message, sent
on connecting and every ``HEARTBEAT_SECONDS``: its page, options, language, the build hash
it loaded with, the seq it has applied and, inside OBS, whether it is on Program or
Preview). ``GET /api/outputs`` (server/outputs.py) lists them for the operator, with the
drift of each build against the server's and how far behind each page was when it last
spoke;
``POST /api/outputs/reload`` asks one page or all of them, through their own connections,
to load themselves again.

The registry is in memory and per node: with several nodes on one Redis log each lists the
outputs connected to it. A reload is an operator's action on this node's connections, not
a fact of the show, so it is logged by the server (``logging``), not recorded in the event
log: replaying the log must give the same show whether or not a page was reloaded.

A viewer's page is public, so everything it sends is checked hard: one small message of
known fields (``Hello``, the text rules of core/text.py on every option), at most
``BURST`` messages at once and one a second after that, one entry per connection and at
most ``MAX_OUTPUTS`` entries on the node (a page inside OBS takes the place of the
longest-silent page outside it; otherwise a page past the limit is served but not listed).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import orjson
from msgspec import UNSET, Meta, UnsetType

from showcase.core.decode import Body, decode_body
from showcase.core.errors import InvalidRequest, RateLimited, Unknown
from showcase.core.text import MAX_NAME, TextRule, clean
from showcase.runtime.engine import Engine

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0  # how often a page announces itself (overlays/js/lib/client.js)
STALE_SECONDS = 3 * HEARTBEAT_SECONDS  # silent this long: the desk shows it as stale
MAX_HELLO = 1024  # bytes of one announcement
MAX_OPTIONS = 8
MAX_OUTPUTS = 500  # entries one node lists
BURST = 10  # messages a connection may send at once ...
PER_SECOND = 1.0  # ... and how fast its allowance comes back
OPTION_RULE = TextRule(MAX_NAME)


class Hello(Body):
    """What an overlay page says of itself on its WebSocket (docs/protocol.md)."""

    type: Literal["hello"]
    page: Annotated[str, Meta(pattern=r"^[a-z0-9-]{1,32}$")]
    lang: Literal["ko", "en"]
    seq: Annotated[int, Meta(ge=0)]
    build: Annotated[str, Meta(pattern=r"^[0-9a-f]{1,64}$")] | None = None
    options: Annotated[dict[Annotated[str, Meta(pattern=r"^[a-z_]{1,16}$")], str],
                       Meta(max_length=MAX_OPTIONS)] = msgspec.field(default_factory=dict)
    obs: Literal["program", "preview", "hidden", "unknown"] | None = None  # None: not in OBS


class ReloadBody(Body):
    """Which outputs to reload: one by its id, or all of them."""

    output: Annotated[str, Meta(description="the output's id, as GET /api/outputs lists "
                                            "it")] | UnsetType = UNSET
    all: Annotated[bool, Meta(description="true: every output of this node")] = False


def build_hash(directory: Path) -> str:
    """A short hash of every file the server serves under /overlays: what a page's code
    is, so that a page still running an older build shows as drifted."""
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:12]


def decode_hello(text: str) -> Hello:
    """An announcement, or InvalidRequest naming what is wrong with it."""
    if len(text) > MAX_HELLO:
        raise InvalidRequest(f"a hello is at most {MAX_HELLO} bytes")
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise InvalidRequest("a hello must be JSON") from None
    hello = decode_body(raw, Hello)
    hello.options = {key: clean(f"options.{key}", value, OPTION_RULE)
                     for key, value in hello.options.items()}
    return hello


@dataclass(slots=True, eq=False)
class Output:
    """One connection that announced itself."""

    id: str
    address: str
    connected: float
    reload: Callable[[], Awaitable[None]]
    hello: Hello | None = None
    heard: float = 0.0  # monotonic time of the last hello
    server_seq: int = 0  # the node's seq when it was heard
    allowance: float = BURST
    refilled: float = field(default_factory=time.monotonic)

    def describe(self, build: str, now: float) -> dict[str, Any]:
        hello = self.hello
        assert hello is not None
        age = now - self.heard
        return {"id": self.id, "page": hello.page, "options": hello.options,
                "lang": hello.lang, "build": hello.build,
                "drift": hello.build != build, "seq": hello.seq,
                "behind": max(0, self.server_seq - hello.seq),
                "age_s": round(age, 1), "stale": age > STALE_SECONDS,
                "on_air": hello.obs, "address": self.address,
                "connected_s": round(now - self.connected, 1)}


class Outputs:
    """The outputs connected to this node."""

    def __init__(self, engine: Engine, build: str, limit: int = MAX_OUTPUTS) -> None:
        self.engine = engine
        self.build = build
        self.limit = limit
        self.connections: dict[str, Output] = {}  # every viewer connection, announced or not
        self.listed: dict[str, Output] = {}  # those that announced themselves, in order
        self.unlisted = 0  # announcements refused because the node's list was full
        self.heard = 0  # hellos accepted, for /metrics and the benchmark
        self._ids = itertools.count(1)

    def connect(self, address: str, reload: Callable[[], Awaitable[None]]) -> Output:
        """A viewer connection opened; ``reload`` sends it the reload message."""
        now = time.monotonic()
        output = Output(f"o{next(self._ids)}", address, now, reload)
        self.connections[output.id] = output
        return output

    def disconnect(self, output: Output) -> None:
        self.connections.pop(output.id, None)
        self.listed.pop(output.id, None)

    def hear(self, output: Output, text: str) -> None:
        """A message from ``output``'s page: its hello, kept; InvalidRequest or
        RateLimited (the connection is then closed) for anything else or too many."""
        now = time.monotonic()
        output.allowance = min(BURST, output.allowance + (now - output.refilled) * PER_SECOND)
        output.refilled = now
        if output.allowance < 1:
            raise RateLimited("too many messages: a page says hello every "
                              f"{HEARTBEAT_SECONDS:g} s")
        output.allowance -= 1
        hello = decode_hello(text)
        if output.id not in self.listed and not self._make_room(hello):
            self.unlisted += 1
            return
        output.hello = hello
        output.heard = now
        output.server_seq = self.engine.committed.seq
        self.listed[output.id] = output
        self.heard += 1

    def _make_room(self, hello: Hello) -> bool:
        if len(self.listed) < self.limit:
            return True
        if hello.obs is None:
            return False
        outside = [o for o in self.listed.values() if o.hello is not None and o.hello.obs is None]
        if not outside:
            return False
        del self.listed[min(outside, key=lambda o: o.heard).id]
        return True

    def drifted(self) -> int:
        """Outputs running another build than the server's."""
        return sum(1 for o in self.listed.values()
                   if o.hello is not None and o.hello.build != self.build)

    def describe(self) -> dict[str, Any]:
        now = time.monotonic()
        return {"build": self.build, "seq": self.engine.committed.seq,
                "heartbeat_s": HEARTBEAT_SECONDS, "stale_s": STALE_SECONDS,
                "limit": self.limit, "unlisted": self.unlisted,
                "outputs": [o.describe(self.build, now) for o in self.listed.values()]}

    async def reload(self, which: ReloadBody) -> list[str]:
        """Ask the outputs named to reload themselves; their ids."""
        if which.all and which.output is not UNSET:
            raise InvalidRequest("give 'output' or 'all', not both")
        if which.all:
            chosen = list(self.listed.values())
        elif which.output is UNSET:
            raise InvalidRequest("give 'output' (an id from GET /api/outputs) or 'all': true")
        else:
            found = self.listed.get(which.output)
            if found is None:
                raise Unknown(f"no output {which.output!r} on this node",
                              "outputs: " + (", ".join(self.listed) or "none"))
            chosen = [found]
        await asyncio.gather(*(o.reload() for o in chosen), return_exceptions=True)
        return [o.id for o in chosen]


def reload_message(build: str) -> str:
    return orjson.dumps({"seq": None, "type": "reload", "data": {"build": build}}).decode()
