"""The console's connection to a showcase server, through its public API only.

One WebSocket (``/ws``, operator view) carries the log and the tick frames; plain HTTP
reads the state, the script, the demo and the log, and sends the commands. The stream
reconnects by itself and resumes with ``since``; a command while it is down is refused at
once, never queued to be replayed later.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
import websockets
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from .model import Effects, Json, ShowModel

log = logging.getLogger(__name__)

#: Events read from ``/api/log`` when the console starts, for the log screen.
LOG_HISTORY = 500


class CommandError(Exception):
    """A command that did not succeed; ``str()`` is what to show the operator."""

    def __init__(self, error: str, detail: str = "", status: int = 0) -> None:
        super().__init__(error)
        self.error = error
        self.detail = detail
        self.status = status

    def __str__(self) -> str:
        return f"{self.error}\n{self.detail}" if self.detail else self.error


class NotConnected(CommandError):
    """The command was not sent: the console is not connected."""


class Refused(CommandError):
    """The server answered 4xx/5xx, worded as it said it (``error`` and ``detail``);
    ``answer`` is the whole JSON answer (a 409 adds ``seq``, and for a stale score
    ``previous``)."""

    def __init__(self, error: str, detail: str = "", status: int = 0,
                 answer: Json | None = None) -> None:
        super().__init__(error, detail, status)
        self.answer: Json = answer or {}


class NoAnswer(CommandError):
    """Sent, but no answer came: it may or may not have been recorded."""


class TokenRefused(Exception):
    """The server will not take this token (or it is not the operator's)."""


def ws_url(url: str) -> str:
    parts = urlsplit(url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws", "", ""))


class ShowClient:
    """Keeps ``model`` in step with the server; sends commands."""

    def __init__(self, url: str, token: str, model: ShowModel, *, user: str | None = None,
                 on_change: Callable[[bool], None] | None = None) -> None:
        self.url = url.rstrip("/")
        self.model = model
        # on_change(urgent): urgent for durable changes, which the screen shows at once;
        # tick frames wait for the next frame of the console's fixed redraw rate.
        self.on_change = on_change or (lambda urgent: None)
        headers = {"Authorization": f"Bearer {token}"}
        if user:
            headers["X-Showcase-User"] = user
        self._auth = {"Authorization": f"Bearer {token}"}
        self.http = httpx.AsyncClient(base_url=self.url, headers=headers,
                                      timeout=httpx.Timeout(10.0, connect=3.0))
        self._want_state = asyncio.Event()
        self._want_script = asyncio.Event()
        self._want_demo = asyncio.Event()
        self._want_log = asyncio.Event()
        self._want_bench = asyncio.Event()
        # The Idempotency-Key of each command whose outcome is unknown (no answer, or a 503
        # that says it may have been recorded): sending the same command again reuses it,
        # so the server records it once however often the operator retries.
        self._unsettled: dict[tuple[str, bytes], str] = {}

    # -- the connection ----------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled (or the token is refused)."""
        try:
            async with asyncio.TaskGroup() as tasks:
                helpers = [tasks.create_task(self._follow(wanted, read)) for wanted, read in (
                    (self._want_state, self._read_state),
                    (self._want_script, self._read_script),
                    (self._want_demo, self._read_demo),
                    (self._want_log, self._read_log),
                    (self._want_bench, self._read_bench))]
                await self._stream()  # returns only when the token is refused
                for helper in helpers:
                    helper.cancel()
        finally:
            await self.http.aclose()

    async def _stream(self) -> None:
        attempt = 0
        while True:
            try:
                await self._connect_once()
                detail = "the server closed the stream"
            except TokenRefused as exc:
                self.model.set_connection("refused", str(exc))
                self.on_change(True)
                return
            except ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code == 1008:
                    self.model.set_connection("refused", exc.rcvd.reason)
                    self.on_change(True)
                    return
                detail = "the connection dropped"
            except (OSError, httpx.HTTPError, InvalidHandshake, TimeoutError) as exc:
                detail = _why(exc)
            except Refused as exc:
                detail = str(exc)
            attempt += 1
            self.model.attempts = attempt
            self.model.set_connection("reconnecting", detail)
            self.on_change(True)
            # About 1 s between tries (protocol 6.6), sooner for the first, with jitter so
            # that many consoles do not all knock at once after a restart.
            await asyncio.sleep(min(0.25 * attempt, 1.0) * random.uniform(0.8, 1.2))

    async def _connect_once(self) -> None:
        answer = await self._get("/api/state")
        if answer.get("view") != "operator":
            raise TokenRefused(f"this is a {answer.get('view')} token: the console needs the "
                               "operator's token")
        self.model.apply_state(answer)
        first = self.model.last_seq is None
        since = answer["seq"] if first else self.model.last_seq
        if first:
            # The state covers everything up to its seq: the stream goes on from there, and
            # the log screen reads what came before from /api/log.
            self.model.last_seq = since
            self._want_log.set()
        self._want_bench.set()  # the state has the run, not its live rates
        if self.model.wants_script():
            self._want_script.set()
        async with connect(f"{ws_url(self.url)}?since={since}", additional_headers=self._auth,
                           open_timeout=5, ping_interval=5, ping_timeout=5,
                           max_size=None) as ws:
            self.model.attempts = 0
            self.model.set_connection("connected")
            if not first:
                self._want_demo.set()  # text streamed while away is in no event
            self.on_change(True)
            async for raw in ws:
                message = orjson.loads(raw)
                self._act(self.model.apply_message(message))
                # An event (its patch applied) is durable and shown at once; a tick frame
                # waits for the console's next frame.
                self.on_change(message.get("seq") is not None)

    def _act(self, effects: Effects) -> None:
        if effects.state:
            self._want_state.set()
        if effects.script:
            self._want_script.set()
        if effects.demo:
            self._want_demo.set()
        if effects.reload_log:
            self._want_log.set()
        if effects.bench:
            self._want_bench.set()

    async def _follow(self, wanted: asyncio.Event, read: Callable[[], Awaitable[None]]) -> None:
        """Run ``read`` whenever ``wanted`` is set, one at a time: a burst of events costs
        one read, not one each."""
        while True:
            await wanted.wait()
            wanted.clear()
            try:
                await read()
            except (httpx.HTTPError, CommandError, TokenRefused, OSError, ValueError) as exc:
                # The stream notices a server that is gone and says so; a read that failed
                # is asked for again by the next event or reconnection.
                log.info("reading for the console failed: %s", _why(exc))
                continue
            self.on_change(True)

    async def _read_state(self) -> None:
        self.model.apply_state(await self._get("/api/state"))
        if self.model.wants_script():
            self._want_script.set()

    async def _read_script(self) -> None:
        if self.model.reveal() is None:
            self.model.apply_script(None)
            return
        self.model.apply_script(await self._get("/api/reveal/script"))

    async def _read_demo(self) -> None:
        self.model.apply_demo(await self._get("/api/demo"))

    async def _read_bench(self) -> None:
        self.model.apply_bench(await self._get("/api/bench"))

    async def _read_log(self) -> None:
        answer = await self._get("/api/log", params={"last": LOG_HISTORY})
        self.model.add_events(answer.get("events") or [])

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> Json:
        response = await self.http.get(path, params=params)
        if response.status_code in (401, 403):
            raise TokenRefused(_refusal(response).error)
        if response.status_code >= 400:
            raise _refusal(response)
        answer: Json = response.json()
        return answer

    def reload(self) -> None:
        """Read the state, the script, the demo, the benchmark run and the log again."""
        for wanted in (self._want_state, self._want_script, self._want_demo, self._want_log,
                       self._want_bench):
            wanted.set()

    # -- commands --------------------------------------------------------------

    async def command(self, path: str, body: Json | None = None) -> Json:
        """POST a command; its answer (``{"seq", "type"}``), or a ``CommandError``.

        Each carries an Idempotency-Key: the same command sent again after an unknown
        outcome carries the same one, and is answered with the first answer if it was
        recorded after all."""
        if not self.model.connected:
            state = {"reconnecting": "reconnecting to the server",
                     "refused": "the server refused this console's token",
                     "connecting": "connecting to the server"}.get(self.model.connection,
                                                                   "not connected")
            raise NotConnected(f"Not sent: {state}.",
                               "Nothing was queued; send it again once connected.")
        content = orjson.dumps(body or {})
        sent = (path, content)
        key = self._unsettled.get(sent) or uuid.uuid4().hex
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        try:
            response = await self.http.post(path, content=content, headers=headers)
        except httpx.ConnectError as exc:
            raise NotConnected("Not sent: the server cannot be reached.", _why(exc)) from exc
        except httpx.HTTPError as exc:
            self._unsettled[sent] = key
            raise NoAnswer("No answer from the server: the command may or may not have been "
                           "recorded.", "send it again: it is recorded once") from exc
        if response.status_code >= 400:
            refused = _refusal(response)
            if refused.answer.get("recorded") == "unknown":
                self._unsettled[sent] = key
            else:
                self._unsettled.pop(sent, None)
            raise refused
        self._unsettled.pop(sent, None)
        answer: Json = response.json()
        return answer

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Json:
        try:
            return await self._get(path, params)
        except TokenRefused as exc:
            raise Refused(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise NotConnected("The server cannot be reached.", _why(exc)) from exc


def _refusal(response: httpx.Response) -> Refused:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict) or "error" not in body:
        return Refused(f"{response.status_code} {response.reason_phrase}",
                       response.text[:200], response.status_code)
    return Refused(str(body["error"]), str(body.get("detail") or ""), response.status_code,
                   body)


def _why(exc: BaseException) -> str:
    if isinstance(exc, httpx.ConnectError | ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timed out"
    if isinstance(exc, websockets.InvalidStatus):
        return f"the server answered {exc.response.status_code}"
    return str(exc) or type(exc).__name__
