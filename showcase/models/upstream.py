"""Talking to a team's OpenAI-compatible endpoint, and measuring every answer.

One ``TeamClient`` per team holds its own httpx client and connection limits, so a slow
or dead team cannot take connections from the others. An ``Exchange`` is one request:
it sends the body, then yields the answer's SSE events as the team sent them, while a
``Meter`` timestamps each chunk on arrival (monotonic clock) and reads ``usage``.

What is measured, and how (the team's clock starts when the request is written; the wait
for a pooled connection is the proxy's ``queue_ms``), is in meter.py. When a team sends no
``usage``, the exchange may ask the team's own tokenizer afterwards (``count``): vLLM and
llama.cpp serve ``/tokenize``, llama-cpp-python ``/extras/tokenize``.

Stopping: a deadline (first token, idle, total), a cap, or the caller (``stop``) ends an
exchange by moving one asyncio timeout to now. The read is interrupted once, and the
response is then closed under a shield, so a second cancellation cannot leave the
connection checked out of the pool (httpx #2139, #3782). The request itself is never
cancelled while it connects (httpcore #1093): connect and first-byte timeouts bound it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable, Generator
from typing import Any

import httpx
import orjson

from showcase.core.egress import origin_of
from showcase.core.errors import ShowcaseError
from showcase.core.showfile import ProxySettings, Team
from showcase.models.meter import OK as OK
from showcase.models.meter import Meter as Meter
from showcase.models.meter import ms

ERROR = "error"
TIMEOUT = "timeout"
CANCELLED = "cancelled"
SKIPPED = "skipped"
INTERRUPTED = "interrupted"
REJECTED = "rejected"  # the team refused the caller's request as invalid (400, 404, 413, 422)
RESULT_STATUSES = (OK, ERROR, TIMEOUT, CANCELLED, SKIPPED, INTERRUPTED, REJECTED)

MAX_EVENT_BYTES = 1024 * 1024  # a single SSE event longer than this is malformed
MAX_ERROR_BODY = 2000
POOL_SIZE = 8  # connections per httpx pool of a team (see TeamClient)
DRAIN_SECONDS = 0.5  # after [DONE], how long to wait for the end of the body to keep the
                     # connection (a new one per request costs a handshake, TLS included)
# The tokenizers teams serve beside the OpenAI API, at the server's root: vLLM's and
# llama.cpp's /tokenize (vLLM reads "prompt", llama.cpp "content"; each ignores the
# other's), and llama-cpp-python's /extras/tokenize ("input").
TOKENIZE_ROUTES: dict[str, Callable[[str, str], dict[str, Any]]] = {
    "tokenize": lambda model, text: {"model": model, "prompt": text, "content": text,
                                     "add_special_tokens": False},
    "extras/tokenize": lambda model, text: {"model": model, "input": text},
}
_EOL = re.compile(rb"\r\n|\r|\n")


class UpstreamError(ShowcaseError):
    """The team's endpoint could not be used; ``status`` is what the proxy answers with."""

    def __init__(self, status: int, result: str, message: str, detail: str = "") -> None:
        super().__init__(message, detail)
        self.status = status
        self.result = result


# -- SSE -------------------------------------------------------------------------------


class SSEParser:
    """Splits a byte stream into complete server-sent events.

    ``feed`` returns ``(raw, data)`` for each event completed by the new bytes: ``raw`` is
    the event exactly as sent (with its blank line), ``data`` its data lines joined, or
    None for an event with no data (a comment, a keepalive). Lines may end in ``\\n``,
    ``\\r\\n`` or ``\\r``, and an event may arrive in any number of pieces.
    """

    def __init__(self, max_event: int = MAX_EVENT_BYTES) -> None:
        self.max_event = max_event
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[tuple[bytes, bytes | None]]:
        buf = self._buf
        buf += chunk
        out: list[tuple[bytes, bytes | None]] = []
        if b"\r" not in buf:  # the common case: plain \n\n between events
            start = 0
            while (end := buf.find(b"\n\n", start)) >= 0:
                raw = bytes(buf[start:end + 2])
                out.append((raw, _data(raw[:-2].split(b"\n"))))
                start = end + 2
            del buf[:start]
        else:
            out = self._feed_slow()
        if len(buf) > self.max_event:
            raise ValueError(f"an SSE event is longer than {self.max_event} bytes")
        return out

    def flush(self) -> list[tuple[bytes, bytes | None]]:
        """At the end of the stream: a last ``\r`` held back as a possible ``\r\n``
        ends its line after all."""
        if not self._buf.endswith(b"\r"):
            return []
        return self._feed_slow(final=True)

    def _feed_slow(self, final: bool = False) -> list[tuple[bytes, bytes | None]]:
        buf = self._buf
        out: list[tuple[bytes, bytes | None]] = []
        start = line_start = 0
        lines: list[bytes] = []
        for m in _EOL.finditer(buf):
            if m.group() == b"\r" and m.end() == len(buf) and not final:
                break  # perhaps the first half of \r\n: wait for the next piece
            line = bytes(buf[line_start:m.start()])
            line_start = m.end()
            if line:
                lines.append(line)
                continue
            out.append((bytes(buf[start:line_start]), _data(lines)))
            start = line_start
            lines = []
        del buf[:start]
        return out


def _data(lines: list[bytes]) -> bytes | None:
    data = [line[6:] if line.startswith(b"data: ") else line[5:]
            for line in lines if line.startswith(b"data:")]
    if not data:
        return None
    return data[0] if len(data) == 1 else b"\n".join(data)


# -- clients ---------------------------------------------------------------------------


class TeamKey(httpx.Auth):
    """A team's API key, on requests to the team's own origin (scheme, host, port) only:
    whatever URL a request is given, the key never goes anywhere else."""

    def __init__(self, key: str, endpoint: str) -> None:
        self.header = f"Bearer {key}"
        self.origin = origin_of(endpoint)

    def auth_flow(self, request: httpx.Request
                  ) -> Generator[httpx.Request, httpx.Response, None]:
        url = request.url
        if (url.scheme, url.host, url.port or _PORTS.get(url.scheme)) == self.origin:
            request.headers["authorization"] = self.header
        yield request


_PORTS = {"http": 80, "https": 443}


class TeamClient:
    """One team's endpoint: its own connection pool, limits and API key. ``key`` is the
    team's key as the egress policy let it be read (core/egress.py); redirects are never
    followed, so it reaches no other host that way either."""

    def __init__(self, team: Team, settings: ProxySettings, key: str = "") -> None:
        self.team = team
        self.settings = settings
        auth = TeamKey(key, team.endpoint) if key else None
        base = team.endpoint.rstrip("/") + "/"
        # httpx's read timeout is only a backstop: the Exchange enforces the first-token,
        # idle and total deadlines itself, with messages that say which one passed.
        timeout = httpx.Timeout(connect=settings.connect_timeout,
                                read=max(settings.first_token_timeout, settings.idle_timeout),
                                write=settings.connect_timeout, pool=settings.first_token_timeout)
        # The team's connections are split over small pools: httpcore scans every connection
        # of a pool for each request, which made a burst of 32 streams to one team wait
        # ~45 ms on one pool of 32 (benchmarks/bench_proxy.py). Requests go to the pool with
        # the fewest in flight; the team's limit is the sum of the pools.
        shards = max(1, -(-settings.max_connections // POOL_SIZE))
        per_shard = -(-settings.max_connections // shards)
        self.pools = [
            httpx.AsyncClient(base_url=base, auth=auth, follow_redirects=False,
                              trust_env=False, timeout=timeout,
                              limits=httpx.Limits(max_connections=per_shard,
                                                  max_keepalive_connections=per_shard))
            for _ in range(shards)]
        self.in_flight = [0] * shards
        # A new connection per check: a kept one can be closed by the server's keep-alive
        # timer at the moment of the check (uvicorn's and the mock's are 5 s, the default
        # interval), which made teams flap down and up; and connecting is part of "up".
        self.health = httpx.AsyncClient(
            base_url=base, auth=auth, follow_redirects=False, trust_env=False,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=0),
            timeout=httpx.Timeout(settings.health_timeout))
        self.active = 0
        # The team's tokenizer route once found ("" when it has none), and the tokens it
        # adds to any text (a BOS that llama-cpp-python's route always puts first).
        self.tokenizer: str | None = None
        self.tokenizer_overhead = 0
        root = base.rstrip("/")
        self.root = root[:-3] if root.endswith("/v1") else root

    @property
    def http(self) -> httpx.AsyncClient:
        """A client for a one-off request (GET models): the least busy pool."""
        return self.pools[self.in_flight.index(min(self.in_flight))]

    async def aclose(self) -> None:
        for pool in self.pools:
            await pool.aclose()
        await self.health.aclose()

    async def check(self) -> dict[str, Any]:
        """A cheap check of the endpoint (GET models): up or not, and how fast."""
        t0 = time.perf_counter()
        try:
            response = await self.health.get("models")
            await response.aread()
        except httpx.TimeoutException:
            return {"up": False, "latency_ms": None,
                    "error": f"no answer within {self.settings.health_timeout:g} s"}
        except httpx.HTTPError as exc:
            return {"up": False, "latency_ms": None, "error": describe(exc)}
        latency = ms(time.perf_counter() - t0)
        if response.status_code != 200:
            return {"up": False, "latency_ms": latency,
                    "error": f"GET models answered {response.status_code}"}
        model = ""
        with contextlib.suppress(orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            model = str(orjson.loads(response.content)["data"][0]["id"])
        return {"up": True, "latency_ms": latency, "error": "", "model": model}

    def exchange(self, body: dict[str, Any]) -> Exchange:
        return Exchange(self, body)

    async def count_tokens(self, text: str, model: str) -> int | None:
        """How many tokens the team's own tokenizer makes of ``text``, or None when the
        team serves no tokenizer (learnt once) or it did not answer."""
        if self.tokenizer == "":
            return None
        routes = [self.tokenizer] if self.tokenizer else list(TOKENIZE_ROUTES)
        for route in routes:
            try:
                if self.tokenizer is None:
                    overhead = await self._tokenize(route, "", model)
                    if overhead is None:
                        continue
                    self.tokenizer, self.tokenizer_overhead = route, overhead
                count = await self._tokenize(route, text, model)
            except httpx.HTTPError:
                return None  # perhaps busy: asked again next time
            return None if count is None else max(0, count - self.tokenizer_overhead)
        self.tokenizer = ""
        return None

    async def _tokenize(self, route: str, text: str, model: str) -> int | None:
        response = await self.http.post(f"{self.root}/{route}",
                                        json=TOKENIZE_ROUTES[route](model, text),
                                        timeout=self.settings.health_timeout)
        if response.status_code != 200:
            return None
        with contextlib.suppress(orjson.JSONDecodeError):
            answer = orjson.loads(response.content)
            if isinstance(answer, dict):
                if isinstance(answer.get("count"), int):
                    return int(answer["count"])
                if isinstance(answer.get("tokens"), list):
                    return len(answer["tokens"])
        return None


def describe(exc: BaseException) -> str:
    """A short reason for a transport failure, without the team's address."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "could not connect in time"
    if isinstance(exc, httpx.PoolTimeout):
        return "every connection to the team is busy"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or unreachable"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection was closed mid-answer"
    if isinstance(exc, httpx.ReadError):
        return "the connection was reset mid-answer"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"[:200]


class Exchange:
    """One request to a team, streamed or not, with its measurement.

    The proxy, the demos and the benchmark runs hold it as an async context manager
    (``async with client.exchange(body) as exchange``: ``start()``, then ``events()`` or
    ``read_all()``); leaving the block closes the team's response whatever happened, so no
    path leaks a connection of the team's pool. The proxy starts it in the handler (a
    refusal is a plain answer) and its streaming response holds the block.
    """

    def __init__(self, client: TeamClient, body: dict[str, Any]) -> None:
        self.client = client
        self.settings = client.settings
        self.body = body
        self.stream = bool(body.get("stream"))
        cap = body.get("max_completion_tokens", body.get("max_tokens"))
        self.meter = Meter(stream=self.stream, max_tokens=cap if isinstance(cap, int)
                           and not isinstance(cap, bool) and cap > 0 else None)
        self.response: httpx.Response | None = None
        self.stop_reason = ""
        self._deadline: asyncio.Timeout | None = None
        self._phase = "first"  # which deadline is armed: first, idle, total, stop
        self._loop = asyncio.get_running_loop()
        self._shard = 0
        self._chunks: AsyncIterator[bytes] | None = None  # the body, while it is being read

    async def __aenter__(self) -> Exchange:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- control ---------------------------------------------------------------

    def stop(self, reason: str) -> None:
        """End the exchange as soon as possible (client gone, demo cancelled)."""
        if self.stop_reason:
            return
        self.stop_reason = reason
        if self._deadline is not None and not self._deadline.expired():
            self._phase = "stop"
            self._deadline.reschedule(self._loop.time())

    def _next_deadline(self) -> float:
        """The loop time by which the next chunk must arrive: first token, idle or total."""
        s = self.settings
        now = time.perf_counter()
        elapsed = now - self.meter.t0
        total_left = s.total_timeout - elapsed
        if self.meter.first is None:
            phase, left = "first", s.first_token_timeout - elapsed
        else:
            phase, left = "idle", s.idle_timeout
        if total_left <= left:
            phase, left = "total", total_left
        self._phase = phase
        return self._loop.time() + max(left, 0.0)

    def _timeout_message(self) -> tuple[str, str]:
        s = self.settings
        if self._phase == "stop":
            return CANCELLED, self.stop_reason
        if self._phase == "first":
            return TIMEOUT, f"no first token within {s.first_token_timeout:g} s"
        if self._phase == "idle":
            return TIMEOUT, (f"the answer stalled: nothing for {s.idle_timeout:g} s after "
                             f"{self.meter.chunks} chunks")
        return TIMEOUT, f"the answer took longer than {s.total_timeout:g} s"

    # -- the request -------------------------------------------------------------

    async def start(self) -> httpx.Response:
        """Send the request; returns the team's response (headers read), or raises
        UpstreamError with the status the proxy should answer with."""
        client = self.client
        self._shard = client.in_flight.index(min(client.in_flight))
        client.in_flight[self._shard] += 1
        http = client.pools[self._shard]
        request = http.build_request("POST", "chat/completions", content=orjson.dumps(self.body),
                                     headers={"content-type": "application/json",
                                              "accept": "text/event-stream"
                                              if self.stream else "application/json"})
        # The team's clock starts when the request is written, not while it waits for a
        # connection from the pool (queue_ms) or one is opened (connect_ms): httpx's trace.
        request.extensions["trace"] = self._trace
        self.meter.t0 = time.perf_counter()
        self.client.active += 1
        try:
            try:
                response = await http.send(request, stream=True)
            except httpx.RemoteProtocolError:
                # A kept connection the team closed as we sent on it (its keep-alive timer):
                # the request was never read, so it is sent once more, on a new connection.
                response = await http.send(request, stream=True)
        except httpx.TimeoutException as exc:
            self.client.active -= 1
            self.client.in_flight[self._shard] -= 1
            waited = max(self.settings.first_token_timeout, self.settings.idle_timeout)
            reason = (f"no answer within {waited:g} s"
                      if isinstance(exc, httpx.ReadTimeout) else describe(exc))
            raise UpstreamError(504, TIMEOUT, f"team {self.client.team.id!r}: {reason}") from exc
        except httpx.HTTPError as exc:
            self.client.active -= 1
            self.client.in_flight[self._shard] -= 1
            raise UpstreamError(502, ERROR, f"team {self.client.team.id!r}: "
                                f"{describe(exc)}") from exc
        self.response = response
        if response.status_code >= 400:
            body = await self._read_error_body(response)
            await self.close()
            passed = response.status_code in (400, 404, 413, 422)
            raise UpstreamError(response.status_code if passed else 502,
                                REJECTED if passed else ERROR,
                                f"team {self.client.team.id!r} answered "
                                f"{response.status_code} {response.reason_phrase}".strip(),
                                body)
        if self.stop_reason:
            await self.close()
            raise UpstreamError(499, CANCELLED, self.stop_reason)
        return response

    async def _trace(self, event: str, info: dict[str, Any]) -> None:
        self.meter.trace(event, time.perf_counter())

    async def count(self) -> None:
        """After the answer: ask the team's tokenizer for the counts it did not send.

        Called by whoever ran the exchange once its client has the whole answer, so the
        extra request never delays it."""
        meter = self.meter
        if meter.status != OK:
            return
        model = str(self.body.get("model") or "")
        if meter.needs_count:
            meter.counted = await self.client.count_tokens(meter.generated(), model)
        if meter.prompt_tokens()[0] is None:
            messages = self.body.get("messages")
            text = "\n".join(m["content"] for m in messages or ()
                             if isinstance(m, dict) and isinstance(m.get("content"), str))
            if text:
                meter.prompt_counted = await self.client.count_tokens(text, model)

    async def _read_error_body(self, response: httpx.Response) -> str:
        try:
            async with asyncio.timeout(self.settings.idle_timeout):
                raw = bytearray()
                async for chunk in response.aiter_raw():
                    raw += chunk
                    if len(raw) > MAX_ERROR_BODY:
                        break
        except (TimeoutError, httpx.HTTPError):
            return ""
        return bytes(raw[:MAX_ERROR_BODY]).decode("utf-8", "replace")

    async def events(self) -> AsyncIterator[tuple[bytes, tuple[str, str] | None]]:
        """The answer's SSE events as (raw bytes, new text) until it ends.

        Ends normally at [DONE] or the end of the stream; any failure ends it with
        ``meter.status`` and ``meter.error`` set, never with an exception. The timeout
        covers each read only, never a ``yield``: the caller's own awaits (sending to its
        client) must not be interrupted by a deadline meant for the team.
        """
        assert self.response is not None
        meter = self.meter
        parser = SSEParser()
        max_bytes = self.settings.max_answer_bytes
        max_tokens = self.settings.max_answer_tokens
        chunks = self._chunks = self.response.aiter_raw()
        try:
            while (chunk := await self._next_chunk(chunks)) is not None:
                now = time.perf_counter()
                meter.nbytes += len(chunk)
                if meter.nbytes > max_bytes:
                    raise _Cap(f"the answer is larger than {max_bytes} bytes")
                for raw, data in parser.feed(chunk):
                    new = None if data is None else meter.on_data(data, now)
                    yield raw, new
                    if meter.done:
                        break
                if meter.done:
                    break
                if meter.chunks > max_tokens:
                    raise _Cap(f"the answer is longer than {max_tokens} chunks")
            else:
                self._chunks = None  # read to its end: nothing is left to drain
                for raw, data in parser.flush():
                    yield raw, None if data is None else meter.on_data(data, time.perf_counter())
            if not meter.done:
                meter.status, meter.error = ERROR, "the stream ended without [DONE]" + (
                    f" ({parser.pending} bytes of an unfinished event)" if parser.pending
                    else "")
        except TimeoutError:
            meter.status, meter.error = self._timeout_message()
        except (_Cap, ValueError) as exc:
            meter.status, meter.error = ERROR, str(exc)
        except httpx.HTTPError as exc:
            meter.status, meter.error = ERROR, describe(exc)
        finally:
            await self.close()

    async def _next_chunk(self, chunks: AsyncIterator[bytes]) -> bytes | None:
        """The next piece of the body, or None at its end; TimeoutError when the deadline
        that applies (first token, idle, total) passes or the exchange is stopped."""
        if self.stop_reason:
            self._phase = "stop"
            raise TimeoutError
        try:
            async with asyncio.timeout_at(self._next_deadline()) as deadline:
                self._deadline = deadline
                return await anext(chunks)
        except StopAsyncIteration:
            return None
        finally:
            self._deadline = None

    async def read_all(self) -> bytes:
        """A non-streamed answer, whole, measured (no TTFT: end to end and tokens only)."""
        assert self.response is not None
        meter = self.meter
        body = bytearray()
        chunks = self.response.aiter_raw()
        try:
            while (chunk := await self._next_chunk(chunks)) is not None:
                body += chunk
                if len(body) > self.settings.max_answer_bytes:
                    raise _Cap(f"the answer is larger than "
                               f"{self.settings.max_answer_bytes} bytes")
            now = time.perf_counter()
            meter.nbytes = len(body)
            meter.whole(orjson.loads(body), now)
        except TimeoutError:
            meter.status, meter.error = self._timeout_message()
        except _Cap as exc:
            meter.status, meter.error = ERROR, str(exc)
        except orjson.JSONDecodeError:
            meter.status, meter.error = ERROR, "the team's answer is not valid JSON"
        except httpx.HTTPError as exc:
            meter.status, meter.error = ERROR, describe(exc)
        finally:
            await self.close()
        return bytes(body)

    async def close(self) -> None:
        """Close the response, shielded: a second cancellation must not leak the
        connection (httpx #3782)."""
        response, self.response = self.response, None
        if response is None:
            return
        self.client.active -= 1
        self.client.in_flight[self._shard] -= 1
        task = asyncio.ensure_future(self._finish(response))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            await asyncio.wait([task])
            raise
        except Exception:  # closing a broken connection may fail: it is gone anyway
            pass


    async def _finish(self, response: httpx.Response) -> None:
        """After [DONE], read the end of the body so that the connection can be reused;
        after anything else, close it."""
        chunks = self._chunks
        if self.meter.done and self.meter.status == OK and chunks is not None:
            try:
                async with asyncio.timeout(DRAIN_SECONDS):
                    async for _ in chunks:
                        pass
            except (TimeoutError, httpx.HTTPError, httpx.StreamError):
                pass
        await response.aclose()


class _Cap(Exception):
    pass
