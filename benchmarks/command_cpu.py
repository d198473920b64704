"""CPU (or instructions) per command through the command front, without sockets.

Feeds ``POST /api/scores`` requests straight into uvicorn's httptools protocol, serving
the ASGI app ``showcase serve`` gives it (the command front before Starlette,
commandpath.py), over fake transports, with the real engine and a real SQLite log in a
temporary directory, and waits for every answer. No socket, no load generator: what is
left is the server's work per command, uvicorn's and showcase's, both threads (the event
loop and the log writer). The same script at an older commit (commit a1d7220: run its
own copy from a worktree) measures the design before it in the same session. On a
shared machine its timings still wander by 10 % and more; for a figure that does not,
count instructions:

    .venv/bin/python benchmarks/command_cpu.py --commands 40000
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg \\
        .venv/bin/python benchmarks/command_cpu.py --commands 3000   # and 9000:
    # (instructions of the 9000 run - those of the 3000 run) / 6000 = per command,
    # start-up cancelled out (docs/performance.md, section 1)
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import tempfile
import time
from typing import Any

import uvicorn
import uvloop
from uvicorn.server import ServerState

from showcase.core.showfile import load_show, sample_show_path
from showcase.server.app import build_app
from showcase.server.commandpath import CommandFront
from showcase.server.frames import HTTP_PROTOCOL
from showcase.server.guard import Guard

TOKEN = "cpu-bench-operator-token"
BODY = b'{"criterion":"benchmark","team":"lg","value":71.5,"reason":"bench"}'
REQUEST = (b"POST /api/scores HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + TOKEN.encode()
           + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY)
           + BODY)


class Transport:
    """What the protocol needs of a transport; counts the answers written."""

    def __init__(self, answered: dict[str, Any]) -> None:
        self.answered = answered
        self.closing = False

    def write(self, data: bytes) -> None:
        if not data.startswith(b"HTTP/1.1 "):
            return  # a body, written after its head
        if not data.startswith(b"HTTP/1.1 201"):
            raise RuntimeError(f"not a 201: {data[:200]!r}")
        self.answered["n"] += 1
        if self.answered["n"] >= self.answered["want"]:
            self.answered["event"].set()

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(
            name, default)

    def pause_reading(self) -> None:
        return None

    def resume_reading(self) -> None:
        return None


async def run(commands: int, connections: int, guard: bool) -> float:
    os.environ["SHOWCASE_OPERATOR_TOKEN"] = TOKEN
    # Under valgrind a command takes 50 times as long: the command deadline (issue 15)
    # must not answer 503 to what is only slow.
    show = dataclasses.replace(load_show(sample_show_path()), command_deadline=600.0)
    app = build_app(show, tempfile.mkdtemp(prefix="command-cpu-"))
    app.state.engine.open()
    # as showcase serve configures it (serving.py): uvicorn's protocol inside the guard
    # against slow clients (server/guard.py), or bare with --no-guard
    config = uvicorn.Config(CommandFront(app, app.state.commands), log_level="warning",
                            http=Guard().wrap(HTTP_PROTOCOL) if guard else "httptools")
    config.load()
    protocol = config.http_protocol_class
    state = ServerState()
    answered: dict[str, Any] = {"n": 0, "want": 0, "event": asyncio.Event()}
    peers = []
    for _ in range(connections):
        peer = protocol(config, state, {}, asyncio.get_running_loop())  # type: ignore[call-arg]
        peer.connection_made(Transport(answered))  # type: ignore[arg-type]
        peers.append(peer)
    try:
        started = time.process_time()
        sent = 0
        while sent < commands:  # one request per connection, as 50 wrk connections do
            answered["event"] = asyncio.Event()
            for peer in peers:
                peer.data_received(REQUEST)
                sent += 1
            answered["want"] = sent
            await asyncio.wait_for(answered["event"].wait(), 30)
        return (time.process_time() - started) / sent
    finally:
        for peer in peers:
            peer.connection_lost(None)
        app.state.engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=40_000)
    parser.add_argument("--connections", type=int, default=35,
                        help="requests in flight at once, like a batch under load (35)")
    parser.add_argument("--no-guard", action="store_true",
                        help="uvicorn's protocol without the guard against slow clients")
    args = parser.parse_args()
    if not 1 <= args.commands <= 1_000_000 or not 1 <= args.connections <= 1000:
        parser.error("--commands 1..1,000,000, --connections 1..1000")
    per_command = uvloop.run(run(args.commands, args.connections, not args.no_guard))
    print(f"{args.commands} commands, {args.connections} in flight"
          f"{', no guard' if args.no_guard else ''}: "
          f"{per_command * 1e6:.1f} us of CPU each (event loop and log writer)")


if __name__ == "__main__":
    main()
