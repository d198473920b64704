"""The one module that uses another package's private internals: uvicorn's WebSocket
protocol, subclassed so that the hub can write prepared frames to a viewer's transport;
and uvicorn's HTTP protocol class, named here for server/guard.py to wrap.

Why it is worth the cost: ASGI has no way to send bytes that are already framed, so
through ASGI every live message is decoded, encoded and framed again per connection and
costs each viewer's task a wake-up and a send cycle. Fanning out to 10,000 viewers this
way cost 121.9 us of CPU per delivered message and a p99 of 2.65 s from a command to a
viewer; with frames written once and straight to every caught-up viewer, 19.8 us and
0.43 s (docs/performance.md, "Frames written once, straight to each caught-up viewer":
6.2x less CPU). No public interface of uvicorn or websockets offers this.

The cost: ``WebSocketsSansIOProtocol`` is not public API, and the attributes read here
(``response``, ``scope``, ``close_sent``, ``disconnected``, ``writable``, ``conn``,
``transport``) may change in any release. So pyproject.toml pins both packages to the
range in ``TESTED``, and tests/test_frames.py fails, naming the package and its version,
when the installed one is outside it or something used here is gone. Under another
server, or if this protocol is not used, streams fall back to ASGI sends.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

from showcase.server.streams import FRAMES_EXTENSION

#: The versions this module is tested with; pyproject.toml states the same ranges.
#: uvicorn 0.53 is the first whose websockets-sansio protocol has ``disconnected``
#: (0.35 to 0.52 have the protocol without it). This module works with websockets 13;
#: the tests' clients need 15 (``close_code``). Tested: uvicorn 0.53.0 with websockets
#: 15.0, uvicorn 0.55.0 with websockets 17.4.
TESTED = {"uvicorn": ">=0.53,<0.56", "websockets": ">=15,<18"}

#: What this module relies on, on an instance of uvicorn's protocol once a handshake
#: was accepted (tests/test_frames.py checks each one).
RELIED_ON = ("handle_connect", "response", "scope", "close_sent", "disconnected", "writable",
             "conn", "transport")


#: uvicorn's HTTP protocol, which server/guard.py wraps: made with the keyword arguments
#: uvicorn gives its ``http`` class, then used only through asyncio's protocol interface.
HTTP_PROTOCOL: type[asyncio.Protocol] = HttpToolsProtocol


class FrameWritingProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, offering the app its transport as a ``FrameWriter``.

    With this protocol (``uvicorn.Config(ws=FrameWritingProtocol)``) the hub writes each
    prepared frame to every caught-up connection itself (runtime/fanout.py).
    """

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if self.response.status_code == 101:
            self.scope["extensions"][FRAMES_EXTENSION] = {"writer": self}

    def write_frame(self, frame: bytes) -> bool:
        """Write ``frame`` now; False, writing nothing, when the connection is paused
        (past its write buffer's high-water mark), closing or gone: the caller queues
        instead, so a viewer that stops reading holds a bounded buffer."""
        if (self.close_sent or self.disconnected or not self.writable.is_set()
                or self.conn.state is not State.OPEN or self.transport.is_closing()):
            return False
        self.transport.write(frame)
        return True
