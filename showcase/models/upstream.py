"""Talking to a team's OpenAI-compatible endpoint, and measuring every answer.

One ``TeamClient`` per team holds its own httpx client and connection limits, so a slow
or dead team cannot take connections from the others. An ``Exchange`` is one request:
it sends the body, then yields the answer's SSE events as the team sent them, while a
``Meter`` timestamps each chunk on arrival (monotonic clock) and reads ``usage``.

Metrics follow vLLM's benchmark definitions (benchmarks/backend_request_func.py):
TTFT is the time to the first chunk that carries text, ITL the gaps between chunks that
carry text, TPOT = (E2E - TTFT) / (output tokens - 1), E2E the time to the last chunk.
Output tokens come from ``usage``; without it they are counted (one a chunk) and marked
estimated. vLLM's own benchmark counts the first chunk with choices as the first token;
vLLM sends its role chunk together with the first token, so the two agree there, and a
server that sends an empty role chunk before it has generated anything is not credited
with a first token it has not produced.

Stopping: a deadline (first token, idle, total), a cap, or the caller (``stop``) ends an
exchange by moving one asyncio timeout to now. The read is interrupted once, and the
response is then closed under a shield, so a second cancellation cannot leave the
connection checked out of the pool (httpx #2139, #3782). The request itself is never
cancelled while it connects (httpcore #1093): connect and first-byte timeouts bound it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from showcase.core.errors import ShowcaseError
from showcase.core.showfile import ProxySettings, Team
from showcase.core.stats import percentile

OK = "ok"
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


# -- measurement -----------------------------------------------------------------------


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


@dataclass(slots=True)
class Meter:
    """Everything measured about one answer, fed one SSE event at a time."""

    t0: float = field(default_factory=time.perf_counter)
    first: float | None = None  # when the first chunk with text arrived
    last_text: float | None = None
    last: float | None = None  # the last data event before [DONE]
    itl: list[float] = field(default_factory=list)
    chunks: int = 0  # chunks that carried text
    text: list[str] = field(default_factory=list)
    text_chars: int = 0
    reasoning_chars: int = 0
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    done: bool = False  # [DONE] seen
    nbytes: int = 0
    status: str = OK
    error: str = ""
    max_text: int = 16 * 1024  # text kept for the record; the rest is counted
    text_truncated: bool = False
    text_kept: int = 0
    usage_only: bool = False  # the last event was a usage chunk with no choices

    def on_data(self, data: bytes, now: float) -> tuple[str, str] | None:
        """Account for one event's data. Returns (text, reasoning) new in it, if any.

        Raises ValueError for an error reported inside the stream or unreadable data.
        """
        self.usage_only = False
        if data == b"[DONE]":
            self.done = True
            return None
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"the team sent an unreadable chunk: {data[:80]!r}") from exc
        if not isinstance(obj, dict):
            raise ValueError(f"the team sent a chunk that is not an object: {data[:80]!r}")
        self.last = now
        if "error" in obj:
            err = obj["error"]
            message = err.get("message") if isinstance(err, dict) else err
            raise ValueError(f"the team reported an error in its stream: {message}")
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        choices = obj.get("choices")
        self.usage_only = not choices and isinstance(usage, dict)
        if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
            return None
        choice = choices[0]
        if choice.get("finish_reason"):
            self.finish_reason = str(choice["finish_reason"])
        delta = choice.get("delta") or choice.get("message") or {}
        if not isinstance(delta, dict):
            return None
        content = delta.get("content") or ""
        reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
        if not isinstance(content, str) or not isinstance(reasoning, str):
            return None
        if not content and not reasoning:
            return None
        if self.first is None:
            self.first = now
        elif self.last_text is not None:
            self.itl.append(now - self.last_text)
        self.last_text = now
        self.chunks += 1
        self.reasoning_chars += len(reasoning)
        if content:
            self.text_chars += len(content)
            if not self.text_truncated:
                room = self.max_text - self.text_kept
                if len(content) > room:
                    content_kept = content[:room]
                    self.text_truncated = True
                else:
                    content_kept = content
                self.text.append(content_kept)
                self.text_kept += len(content_kept)
        return content, reasoning

    @property
    def output_tokens(self) -> int:
        if self.usage and isinstance(self.usage.get("completion_tokens"), int):
            return int(self.usage["completion_tokens"])
        return self.chunks

    @property
    def estimated(self) -> bool:
        return not (self.usage and isinstance(self.usage.get("completion_tokens"), int))

    def answer(self) -> str:
        return "".join(self.text)

    def running(self, now: float) -> dict[str, Any]:
        """Live figures while the answer streams (for the volatile channel)."""
        elapsed = now - self.t0
        tokens = self.chunks
        decode = None
        if self.first is not None and tokens > 1 and self.last_text is not None:
            span = self.last_text - self.first
            decode = round((tokens - 1) / span, 2) if span > 0 else None
        return {"ttft_ms": _ms(None if self.first is None else self.first - self.t0),
                "tokens": tokens, "decode_tps": decode, "elapsed_ms": _ms(elapsed)}

    def result(self, end: float | None = None) -> dict[str, Any]:
        """The finished answer's metrics, as they go into the log."""
        last = self.last if self.last is not None else end
        e2e = None if last is None else last - self.t0
        ttft = None if self.first is None else self.first - self.t0
        tokens = self.output_tokens
        tpot = decode_tps = None
        if ttft is not None and e2e is not None and tokens > 1 and e2e > ttft:
            tpot = (e2e - ttft) / (tokens - 1)
            decode_tps = round((tokens - 1) / (e2e - ttft), 3)
        usage = self.usage or {}
        prompt_tokens = usage.get("prompt_tokens")
        return {
            "ttft_ms": _ms(ttft),
            "tpot_ms": _ms(tpot),
            "itl_ms_p50": _ms(percentile(self.itl, 50)),
            "itl_ms_p99": _ms(percentile(self.itl, 99)),
            "itl_ms_max": _ms(max(self.itl) if self.itl else None),
            "e2e_ms": _ms(e2e),
            "output_tokens": tokens,
            "tokens_estimated": self.estimated,
            "prompt_tokens": prompt_tokens if isinstance(prompt_tokens, int) else None,
            "decode_tps": decode_tps,
            "e2e_tps": round(tokens / e2e, 3) if e2e and tokens else None,
            "chunks": self.chunks,
            "bytes": self.nbytes,
            "finish_reason": self.finish_reason,
            "done": self.done,
        }


# -- clients ---------------------------------------------------------------------------


class TeamClient:
    """One team's endpoint: its own connection pool, limits and API key."""

    def __init__(self, team: Team, settings: ProxySettings) -> None:
        self.team = team
        self.settings = settings
        key = os.environ.get(team.api_key_env, "") if team.api_key_env else ""
        headers = {"authorization": f"Bearer {key}"} if key else {}
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
            httpx.AsyncClient(base_url=base, headers=headers, trust_env=False, timeout=timeout,
                              limits=httpx.Limits(max_connections=per_shard,
                                                  max_keepalive_connections=per_shard))
            for _ in range(shards)]
        self.in_flight = [0] * shards
        # A new connection per check: a kept one can be closed by the server's keep-alive
        # timer at the moment of the check (uvicorn's and the mock's are 5 s, the default
        # interval), which made teams flap down and up; and connecting is part of "up".
        self.health = httpx.AsyncClient(
            base_url=base, headers=headers, trust_env=False,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=0),
            timeout=httpx.Timeout(settings.health_timeout))
        self.active = 0

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
        latency = _ms(time.perf_counter() - t0)
        if response.status_code != 200:
            return {"up": False, "latency_ms": latency,
                    "error": f"GET models answered {response.status_code}"}
        model = ""
        with contextlib.suppress(orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            model = str(orjson.loads(response.content)["data"][0]["id"])
        return {"up": True, "latency_ms": latency, "error": "", "model": model}

    def exchange(self, body: dict[str, Any]) -> Exchange:
        return Exchange(self, body)


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
    """One request to a team, streamed or not, with its measurement."""

    def __init__(self, client: TeamClient, body: dict[str, Any]) -> None:
        self.client = client
        self.settings = client.settings
        self.body = body
        self.stream = bool(body.get("stream"))
        self.meter = Meter()
        self.response: httpx.Response | None = None
        self.stop_reason = ""
        self._deadline: asyncio.Timeout | None = None
        self._phase = "first"  # which deadline is armed: first, idle, total, stop
        self._loop = asyncio.get_running_loop()
        self._shard = 0
        self._chunks: AsyncIterator[bytes] | None = None  # the body, while it is being read

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
        """A non-streamed answer, whole, measured (TTFT is the whole time)."""
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
            obj = orjson.loads(body)
            meter.first = meter.last = meter.last_text = now
            if isinstance(obj, dict):
                if isinstance(obj.get("usage"), dict):
                    meter.usage = obj["usage"]
                choices = obj.get("choices")
                if isinstance(choices, list) and choices and isinstance(choices[0], dict):
                    message = choices[0].get("message") or {}
                    content = message.get("content") if isinstance(message, dict) else None
                    if isinstance(content, str):
                        meter.text.append(content[:meter.max_text])
                        meter.text_chars = len(content)
                        meter.chunks = 1
                    meter.finish_reason = choices[0].get("finish_reason")
            meter.done = True
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
