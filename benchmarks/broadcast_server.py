"""A bare ``websockets.broadcast()`` server: the baseline for benchmarks/load_viewers.py.

Viewers connect to ``ws://HOST:PORT/ws``; a publisher connects to ``/publish`` and sends
one text message per event. The server broadcasts it to every viewer and answers "ok",
which stands for a command's acknowledgement. No log, no views, no queue of its own:
what a minimal broadcast costs on this machine.

    .venv/bin/python benchmarks/broadcast_server.py --port 8765
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource

import websockets
from websockets.asyncio.server import ServerConnection, broadcast, serve

VIEWERS: set[ServerConnection] = set()


async def handler(ws: ServerConnection) -> None:
    if ws.request is not None and ws.request.path.startswith("/publish"):
        async for message in ws:
            broadcast(VIEWERS, message)
            await ws.send("ok")
        return
    VIEWERS.add(ws)
    try:
        await ws.send('{"seq":0,"type":"snapshot","data":{}}')
        await ws.wait_closed()
    finally:
        VIEWERS.discard(ws)


async def main(host: str, port: int, deflate: bool = True) -> None:
    # websockets negotiates permessage-deflate by default, and broadcast() then compresses
    # each message once per connection; --no-deflate measures the broadcast without it.
    async with serve(handler, host, port, backlog=2048, ping_interval=15,
                     max_size=64 * 1024,
                     compression="deflate" if deflate else None) as server:
        print(f"broadcast server on ws://{host}:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--no-deflate", dest="deflate", action="store_false",
                        help="refuse permessage-deflate: every frame goes out as it is")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    assert websockets
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.host, args.port, args.deflate))
