"""Test clients for the event streams, as an overlay or the console would read them."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import orjson
from websockets.sync.client import ClientConnection, connect


def read_sse(url: str, count: int, *, params: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None, timeout: float = 10) -> list[dict[str, Any]]:
    """The first ``count`` data messages of ``GET /events``, each with its SSE id."""
    out: list[dict[str, Any]] = []
    with httpx.stream("GET", f"{url}/events", params=params, headers=headers,
                      timeout=timeout) as response:
        response.raise_for_status()
        assert response.headers["content-type"].startswith("text/event-stream")
        event_id = None
        for line in response.iter_lines():
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: "):
                message = orjson.loads(line[6:])
                message["_id"] = event_id
                out.append(message)
                event_id = None
                if len(out) >= count:
                    break
    return out


class Viewer:
    """A WebSocket viewer that records every message in a thread of its own."""

    def __init__(self, url: str, query: str = "") -> None:
        ws_url = url.replace("http://", "ws://") + "/ws" + (f"?{query}" if query else "")
        self._connection = connect(ws_url, max_size=None)
        self.ws: ClientConnection = self._connection.__enter__()
        self.raw: list[bytes] = []
        self.messages: list[dict[str, Any]] = []
        self.closed = threading.Event()
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for message in self.ws:
                data = message.encode() if isinstance(message, str) else message
                with self.changed:
                    self.raw.append(data)
                    self.messages.append(orjson.loads(data))
                    self.changed.notify_all()
        except Exception:
            pass
        finally:
            self.closed.set()
            with self.changed:
                self.changed.notify_all()

    def wait_for(self, predicate: Any, timeout: float = 10) -> list[dict[str, Any]]:
        with self.changed:
            ok = self.changed.wait_for(lambda: predicate(self.messages) or self.closed.is_set(),
                                       timeout)
            assert ok and predicate(self.messages), f"not seen in time: {self.messages[-3:]}"
            return list(self.messages)

    def wait_seq(self, seq: int, timeout: float = 10) -> list[dict[str, Any]]:
        """The messages up to and including event ``seq`` (what came later is left out: a
        checkpoint or a tick may follow it at any time)."""
        messages = self.wait_for(lambda ms: any(m.get("seq") == seq for m in ms), timeout)
        end = next(i for i, m in enumerate(messages) if m.get("seq") == seq)
        return messages[:end + 1]

    def close(self) -> None:
        self._connection.__exit__(None, None, None)
        self.thread.join(5)
