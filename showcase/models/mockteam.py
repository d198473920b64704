"""A stand-in for a team's OpenAI-compatible GPU endpoint (vLLM, llama.cpp server, ...).

Tests, ``showcase demo`` and rehearsals run it where a team's server would be. It streams
on an absolute schedule (chunk k at t0 + ttft + k * itl, from the loop clock, so sleeps
never drift), speaks the wire format of the server it imitates (``dialect``) and fails the
ways real servers fail (``fault``): an HTTP error before the stream, an error event inside
it, a TCP reset, no ``[DONE]``, a malformed event, events cut at awkward byte boundaries,
a stall, an endless answer.

The HTTP/1.1 server is written on asyncio streams rather than uvicorn: the faults need
byte-exact writes and a real reset (SO_LINGER 0, then close), and a mock that measures
others should cost next to nothing in CPU. A request may carry ``"mock": {...}`` with any
:class:`MockConfig` field but ``api_key`` and ``seed``, so one mock serves many tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import itertools
import logging
import math
import random
import re
import socket
import struct
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson

from showcase.core.errors import ShowcaseError

__all__ = ["DIALECTS", "FAULTS", "MockConfig", "MockConfigError", "MockServer", "serve_mock"]

log = logging.getLogger(__name__)

DIALECTS = ("vllm", "llamacpp", "plain")
FAULTS = ("none", "http_error", "error_in_stream", "reset", "no_done", "malformed", "split",
          "stall", "huge")
MAX_HEAD = 16 * 1024
MAX_BODY = 1024 * 1024
KEEPALIVE_IDLE_S = 5.0  # uvicorn's default, which vLLM keeps: idle connections get closed
SPLIT_PAUSE_S = 0.001

_NOT_OVERRIDABLE = frozenset({"api_key", "seed"})
_HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")
_LEAD_BYTE = re.compile(rb"[\xc0-\xff]")
_DONE = b"[DONE]"
_MALFORMED = b'{"choices": [{"delta": {"content": "broken'
_MARK = "\x00mock-delta\x00"
_FINGERPRINT = "b0000-mockteam"


def _words(text: str) -> list[str]:
    return text.split()


_ANSWER_EN = _words(
    "Thank you for the question. Here is a short answer from the mock team server, "
    "which stands in for a real model on this stage. It sends one word at a time, at a "
    "steady pace, so that every screen can show the tokens as they arrive. A real model "
    "would think harder \u2014 this one keeps talking, politely and right on schedule.")
_ANSWER_KO = _words(
    "질문해 주셔서 감사합니다. 무대 위의 실제 모델을 대신하는 모의 팀 서버가 짧게 답해 "
    "드립니다. 모든 화면이 토큰을 도착하는 대로 보여 줄 수 있도록 한 단어씩 일정한 속도로 "
    "보내 드립니다. 진짜 모델이라면 더 깊이 생각하겠지만, 이 모델은 예의 바르게 제시간에 "
    "말을 이어 갑니다.")
_REASONING_EN = _words(
    "The user asks a question. I should answer briefly and kindly, and keep to time.")
_REASONING_KO = _words("사용자가 질문했습니다. 짧고 친절하게, 제시간에 답하겠습니다.")


class MockConfigError(ShowcaseError):
    """A mock team setting is out of range; ``field`` names the MockConfig field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


@dataclass(slots=True)
class MockConfig:
    """How a mock team answers. Times are in milliseconds.

    ``itl_ms`` is the gap between chunks, which is the gap between tokens when
    ``chunk_tokens`` is 1. Mid-stream faults happen once ``fault_after`` tokens are out (at
    a chunk boundary), or at the end of a shorter answer. A running server reads its
    config at every request, so a test may change it between requests.
    """

    model: str = "mock-model"
    dialect: str = "vllm"
    ttft_ms: float = 200.0
    itl_ms: float = 20.0
    jitter_ms: float = 0.0
    tokens: int = 64
    chunk_tokens: int = 1
    error_rate: float = 0.0
    stall_after: int | None = None
    fault: str = "none"
    fault_after: int = 3
    status: int = 500
    api_key: str | None = None
    seed: int = 0
    accuracy: float = 1.0  # share of benchmark items answered right (with an answer key)

    def validate(self) -> None:
        """Raise :class:`MockConfigError` for the first field that cannot be used."""
        if not isinstance(self.model, str) or not self.model:
            raise MockConfigError("model", "must be a non-empty string")
        for name, allowed in (("dialect", DIALECTS), ("fault", FAULTS)):
            if getattr(self, name) not in allowed:
                raise MockConfigError(name, f"must be one of {', '.join(allowed)}, "
                                            f"not {getattr(self, name)!r}")
        for name in ("ttft_ms", "itl_ms", "jitter_ms"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 <= value < math.inf:
                raise MockConfigError(name, f"must be a number of milliseconds >= 0, not {value!r}")
        for name in ("error_rate", "accuracy"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 <= value <= 1:
                raise MockConfigError(name, f"must be between 0 and 1, not {value!r}")
        for name, low in (("tokens", 0), ("chunk_tokens", 1), ("fault_after", 0),
                          ("stall_after", 0)):
            value = getattr(self, name)
            if not (value is None and name == "stall_after") and (
                    not _is_int(value) or value < low):
                raise MockConfigError(name, f"must be a whole number >= {low}, not {value!r}")
        if not _is_int(self.status) or not 400 <= self.status <= 599:
            raise MockConfigError("status", f"must be an HTTP error status (400 to 599), "
                                            f"not {self.status!r}")
        if self.api_key is not None and (not isinstance(self.api_key, str) or not self.api_key):
            raise MockConfigError("api_key", "must be a non-empty string")
        if not _is_int(self.seed):
            raise MockConfigError("seed", f"must be a whole number, not {self.seed!r}")

    def with_overrides(self, overrides: object) -> MockConfig:
        """This config with a request's ``"mock"`` object applied (all fields but api_key, seed)."""
        if not isinstance(overrides, dict):
            raise MockConfigError("mock", "must be an object of mock settings")
        allowed = {f.name for f in dataclasses.fields(self)} - _NOT_OVERRIDABLE
        unknown = sorted(set(overrides) - allowed)
        if unknown:
            raise MockConfigError("mock", f"has unknown settings {', '.join(map(repr, unknown))} "
                                          f"(known: {', '.join(sorted(allowed))})")
        config = dataclasses.replace(self, **overrides)
        try:
            config.validate()
        except MockConfigError as exc:
            raise MockConfigError(f"mock.{exc.field}", exc.problem) from None
        return config


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


async def serve_mock(config: MockConfig, host: str = "127.0.0.1", port: int = 0,
                     answers: Mapping[str, tuple[str, str]] | None = None) -> MockServer:
    """Start a mock team on ``host:port`` (0: a free port) in the running event loop."""
    config.validate()
    server = MockServer(config, host, answers)
    await server.start(port)
    return server


# -- HTTP ------------------------------------------------------------------------------


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _ClientGone(Exception):
    """The client closed its side of the connection while an answer was under way."""


@dataclass(slots=True)
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    keep_alive: bool
    body: bytes = b""


def _parse_head(head: bytes) -> _Request:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise _HttpError(400, "malformed request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise _HttpError(400, f"malformed header line {line[:80]!r}")
        key, value = name.lower(), value.strip()
        if key in headers and key == "content-length" and headers[key] != value:
            raise _HttpError(400, "conflicting Content-Length headers")
        headers[key] = f"{headers[key]}, {value}" if key in headers and key != "content-length" \
            else value
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    keep_alive = "close" not in tokens if parts[2] == "HTTP/1.1" else "keep-alive" in tokens
    return _Request(parts[0], parts[1].split("?", 1)[0], headers, keep_alive)


def _status_line(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return f"HTTP/1.1 {status} {phrase}\r\n"


def _head(status: int, content_type: str, keep_alive: bool, length: int | None = None) -> bytes:
    framing = "transfer-encoding: chunked" if length is None else f"content-length: {length}"
    closing = "" if keep_alive else "connection: close\r\n"
    return (f"{_status_line(status)}content-type: {content_type}\r\n{framing}\r\n"
            f"server: mockteam\r\n{closing}\r\n").encode("latin-1")


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def _error_type(status: int) -> str:
    return {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
            404: "not_found_error", 429: "rate_limit_error"}.get(
        status, "server_error" if status >= 500 else "invalid_request_error")


def _error_body(status: int, message: str) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": _error_type(status),
                                   "code": status}})


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Connection:
    """One client connection: buffered reads, and a watch for the client leaving."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.loop = asyncio.get_running_loop()
        self.buf = bytearray()
        self.eof = False
        self.gone = False
        self._waiter: asyncio.Future[None] | None = None

    async def _fill(self) -> None:
        try:
            data = await self.reader.read(65536)
        except OSError:  # a reset from the client is an end like any other
            data = b""
        if data:
            self.buf += data
        else:
            self.eof = True

    async def read_head(self) -> bytes | None:
        """The next request's head, or None when the client is done (or idle too long)."""
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end > MAX_HEAD or (end < 0 and len(self.buf) > MAX_HEAD):
                raise _HttpError(431, "the request head is over 16 KiB")
            if end >= 0:
                head = bytes(self.buf[:end])
                del self.buf[:end + 4]
                return head
            if self.eof:
                if self.buf.strip():
                    raise _HttpError(400, "the request ended inside its head")
                return None
            if self.buf:
                await self._fill()
                continue
            try:
                async with asyncio.timeout(KEEPALIVE_IDLE_S):
                    await self._fill()
            except TimeoutError:
                return None

    async def read_body(self, length: int) -> bytes:
        while len(self.buf) < length:
            if self.eof:
                raise _ClientGone
            await self._fill()
        body = bytes(self.buf[:length])
        del self.buf[:length]
        return body

    async def watch(self) -> None:
        """Read ahead while an answer is sent, to notice at once when the client leaves."""
        while not self.eof and len(self.buf) <= MAX_HEAD + MAX_BODY:
            await self._fill()
        if self.eof:
            self.gone = True
            if self._waiter is not None:
                _wake(self._waiter)

    async def pause_until(self, when: float | None) -> bool:
        """Sleep until ``when`` on the loop clock (None: forever); False if the client left."""
        if self.gone:
            return False
        if when is None or when > self.loop.time():
            waiter: asyncio.Future[None] = self.loop.create_future()
            self._waiter = waiter
            timer = None if when is None else self.loop.call_at(when, _wake, waiter)
            try:
                await waiter
            finally:
                if timer is not None:
                    timer.cancel()
                self._waiter = None
        return not self.gone

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def drop(self) -> None:
        """End the connection now (the server is closing): every wait in it returns."""
        self.gone = True
        if self._waiter is not None:
            _wake(self._waiter)
        self.writer.transport.abort()

    def reset(self) -> None:
        """Drop the connection with a TCP RST, as a crashed server or a middlebox does."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()
        self.gone = True


# -- answers ---------------------------------------------------------------------------


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content
                        if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _tokens(words: list[str], count: int | None) -> Iterator[str]:
    """Word tokens with their leading space, repeating the words; count None: endless."""
    i = 0
    while count is None or i < count:
        yield (" " if i else "") + words[i % len(words)]
        i += 1


def _group(field: str, tokens: Iterable[str], size: int) -> Iterator[tuple[str, str, int]]:
    batch: list[str] = []
    for token in tokens:
        batch.append(token)
        if len(batch) == size:
            yield field, "".join(batch), size
            batch = []
    if batch:
        yield field, "".join(batch), len(batch)


def delays(config: MockConfig, rng: random.Random) -> Iterator[float]:
    """The seconds before the first token, then between each token and the next: the
    configured TTFT and ITL, each moved by up to ``jitter_ms`` either way (never below 0).
    The stream sends each chunk at the running sum of these, from the request's arrival."""
    jitter = config.jitter_ms / 1e3
    base = config.ttft_ms / 1e3
    while True:
        yield max(0.0, base + rng.uniform(-jitter, jitter)) if jitter else base
        base = config.itl_ms / 1e3


@dataclass(slots=True)
class _Plan:
    """One answer: its chunks as (delta field, text, tokens), and how it ends."""

    chunks: Iterable[tuple[str, str, int]]
    total: int | None  # None: endless
    finish: str
    prompt_tokens: int
    stream: bool
    include_usage: bool
    rng: random.Random
    chat_id: str
    created: int


def _plan(config: MockConfig, request: dict[str, Any], number: int, seed: int,
          answers: Mapping[str, tuple[str, str]] | None = None) -> _Plan:
    stream = request.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise _HttpError(400, "'stream' must be true or false")
    options = request.get("stream_options") or {}
    if not isinstance(options, dict) or not isinstance(options.get("include_usage", False), bool):
        raise _HttpError(400, "'stream_options' must be an object with a boolean include_usage")
    count, finish = config.tokens, "stop"
    for key in ("max_tokens", "max_completion_tokens"):
        cap = request.get(key)
        if cap is not None and (not _is_int(cap) or cap < 1):
            raise _HttpError(400, f"'{key}' must be a whole number >= 1")
        if cap is not None and cap < count:
            count, finish = cap, "length"
    messages = request["messages"]
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    asked = _text(users[-1].get("content")) if users else ""
    korean = bool(_HANGUL.search(asked))
    answer = _ANSWER_KO if korean else _ANSWER_EN
    keyed = answers.get(asked) if answers else None
    if keyed is not None:
        # A benchmark item: right or wrong by a draw fixed per item, so a team's accuracy
        # over a suite is close to config.accuracy and the same on every run.
        right = random.Random(f"{seed}/{config.model}/{asked}").random() < config.accuracy
        answer = _words(keyed[0] if right else keyed[1])
        if count > len(answer):
            count = len(answer)
    size = config.chunk_tokens
    chunks: Iterable[tuple[str, str, int]]
    total: int | None = count
    if config.fault == "huge":
        chunks, total = _group("content", _tokens(answer, None), size), None
    elif config.dialect == "llamacpp":
        # A keyed answer is given whole after a little reasoning: cut short, it would be
        # graded wrong for a reason that is the mock's, not the model's.
        thinking = 4 if keyed is not None else count // 4
        said = count if keyed is not None else count - thinking
        chunks = [*_group("reasoning_content",
                          _tokens(_REASONING_KO if korean else _REASONING_EN, thinking), size),
                  *_group("content", _tokens(answer, said), size)]
        total = thinking + said
    else:
        chunks = list(_group("content", _tokens(answer, count), size))
    rng = random.Random(f"{seed}/{number}")
    return _Plan(
        chunks=chunks, total=total, finish=finish,
        prompt_tokens=sum(len(_text(m.get("content")).split()) for m in messages
                          if isinstance(m, dict)),
        stream=bool(stream), include_usage=options.get("include_usage", False), rng=rng,
        chat_id=f"chatcmpl-{rng.getrandbits(128):032x}", created=int(time.time()))


class _Wire:
    """The JSON a dialect sends. Content chunks, the bulk of a stream, are spliced into
    a template encoded once per answer."""

    def __init__(self, config: MockConfig, plan: _Plan) -> None:
        self.dialect = config.dialect
        self.model = config.model
        self.plan = plan
        self._templates: dict[str, tuple[bytes, bytes]] = {}
        for field in ("content", "reasoning_content"):
            whole = self._dumps(self._choice({field: _MARK}, None))
            before, _, after = whole.partition(orjson.dumps(_MARK))
            self._templates[field] = (before, after)

    def _choice(self, delta: dict[str, Any], finish: str | None, **extra: Any) -> dict[str, Any]:
        if self.dialect == "llamacpp":
            return {"finish_reason": finish, "index": 0, "delta": delta}
        if self.dialect == "vllm":
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish, **extra}
        return {"index": 0, "delta": delta, "finish_reason": finish}

    def _dumps(self, choice: dict[str, Any] | None, obj: str = "chat.completion.chunk",
               extra: dict[str, Any] | None = None) -> bytes:
        plan, choices = self.plan, [] if choice is None else [choice]
        if self.dialect == "llamacpp":
            return orjson.dumps({"choices": choices, "created": plan.created, "id": plan.chat_id,
                                 "model": self.model, "system_fingerprint": _FINGERPRINT,
                                 "object": obj, **(extra or {})})
        return orjson.dumps({"id": plan.chat_id, "object": obj, "created": plan.created,
                             "model": self.model, "choices": choices, **(extra or {})})

    def role(self) -> list[bytes]:
        if self.dialect == "plain":
            return []
        content = None if self.dialect == "llamacpp" else ""
        return [self._dumps(self._choice({"role": "assistant", "content": content}, None))]

    def delta(self, field: str, text: str) -> bytes:
        before, after = self._templates[field]
        return before + orjson.dumps(text) + after

    def usage(self, completion: int) -> dict[str, int]:
        prompt = self.plan.prompt_tokens
        return {"prompt_tokens": prompt, "total_tokens": prompt + completion,
                "completion_tokens": completion}

    def timings(self, completion: int, prompt_s: float, predicted_s: float) -> dict[str, Any]:
        prompt_n, prompt_ms = self.plan.prompt_tokens, prompt_s * 1e3
        predicted_ms = predicted_s * 1e3
        return {
            "prompt_n": prompt_n, "prompt_ms": round(prompt_ms, 3),
            "prompt_per_token_ms": round(prompt_ms / prompt_n, 3) if prompt_n else 0.0,
            "prompt_per_second": round(prompt_n * 1e3 / prompt_ms, 3) if prompt_ms else 0.0,
            "predicted_n": completion, "predicted_ms": round(predicted_ms, 3),
            "predicted_per_token_ms": round(predicted_ms / completion, 3) if completion else 0.0,
            "predicted_per_second": round(completion * 1e3 / predicted_ms, 3)
            if predicted_ms else 0.0,
        }

    def tail(self, completion: int, timings: dict[str, Any], done: bool) -> list[bytes]:
        """What follows the last token: finish chunk, usage where the dialect sends it, [DONE]."""
        finish = self.plan.finish
        if self.dialect == "llamacpp":
            extra = {"usage": self.usage(completion), "timings": timings} if done else {}
            events = [self._dumps(self._choice({}, finish), extra=extra)]
        else:
            events = [self._dumps(self._choice({}, finish, stop_reason=None))]
            if self.dialect == "vllm" and self.plan.include_usage and done:
                events.append(self._dumps(None, extra={"usage": self.usage(completion)}))
        return [*events, _DONE] if done else events

    def error(self) -> bytes:
        return orjson.dumps({"error": {"message": "mock team: the model failed mid-answer",
                                       "type": "server_error", "code": 500}})

    def completion(self, text: dict[str, str], completion: int,
                   timings: dict[str, Any]) -> bytes:
        """A whole (non-streamed) answer."""
        finish, content = self.plan.finish, text.get("content", "")
        if self.dialect == "llamacpp":
            message = {"role": "assistant", "content": content,
                       "reasoning_content": text.get("reasoning_content", "")}
            return orjson.dumps({
                "choices": [{"finish_reason": finish, "index": 0, "message": message}],
                "created": self.plan.created, "model": self.model,
                "system_fingerprint": _FINGERPRINT, "object": "chat.completion",
                "usage": self.usage(completion), "id": self.plan.chat_id, "timings": timings})
        if self.dialect == "vllm":
            choice = {"index": 0, "message": {"role": "assistant", "content": content,
                                              "refusal": None, "tool_calls": [],
                                              "reasoning_content": None},
                      "logprobs": None, "finish_reason": finish, "stop_reason": None}
            return self._dumps(choice, "chat.completion", {"usage": self.usage(completion),
                                                           "prompt_logprobs": None})
        return self._dumps({"index": 0, "message": {"role": "assistant", "content": content},
                            "finish_reason": finish}, "chat.completion")


def _awkward_cuts(event: bytes) -> list[int]:
    """Where to cut an event: in "data:", inside the JSON, inside a UTF-8 character,
    and between each \\r and \\n of the closing blank line."""
    cuts = {3, 9, len(event) - 3, len(event) - 1}
    lead = _LEAD_BYTE.search(event)
    if lead is not None:
        cuts.add(lead.start() + 1)
    return sorted(c for c in cuts if 0 < c < len(event))


class _EventWriter:
    """Writes SSE events as HTTP chunks: one write per call, or cut into pieces (fault split)."""

    def __init__(self, conn: _Connection, split: bool) -> None:
        self.conn = conn
        self.split = split
        self.events = 0

    async def send(self, events: list[bytes]) -> None:
        if not self.split:
            await self.conn.send(_chunk(b"".join(b"data: %b\n\n" % e for e in events)))
            return
        for data in events:
            if self.events:
                await self._piece(b": keep-alive\r\n\r\n")
            self.events += 1
            event = b"data: %b\r\n\r\n" % data
            start = 0
            for cut in [*_awkward_cuts(event), len(event)]:
                await self._piece(event[start:cut])
                start = cut

    async def _piece(self, data: bytes) -> None:
        await self.conn.send(_chunk(data))
        if not await self.conn.pause_until(self.conn.loop.time() + SPLIT_PAUSE_S):
            raise _ClientGone


# -- the server ------------------------------------------------------------------------

_DONE_OK, _DONE_GONE, _DONE_RESET = "completed", "disconnected", "reset"


class MockServer:
    """A running mock team. ``url`` is its OpenAI base URL (``http://host:port/v1``);
    ``stats`` counts chat completion ``requests``, answers in progress (``active_streams``,
    streamed or not), answers sent to their end (``completed``), answers whose client went
    away first (``disconnected``), ``open_connections`` and ``connections`` ever accepted."""

    def __init__(self, config: MockConfig, host: str = "127.0.0.1",
                 answers: Mapping[str, tuple[str, str]] | None = None) -> None:
        self.config = config
        self.host = host
        self.answers = answers  # benchmark prompt -> (a right answer, a wrong one)
        self.port = 0
        self.stats: dict[str, int] = dict.fromkeys(
            ("requests", "active_streams", "completed", "disconnected", "open_connections",
             "connections"), 0)
        self._server: asyncio.Server | None = None
        self._connections: dict[_Connection, asyncio.Task[Any]] = {}
        self._rng = random.Random(config.seed)
        self._started = int(time.time())

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    async def start(self, port: int = 0) -> None:
        # backlog as showcase serve's: a burst of connections must not wait for SYN retries
        self._server = await asyncio.start_server(self._connection, self.host, port,
                                                  backlog=2048)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is None:
            return
        self._server.close()
        for conn in list(self._connections):
            conn.drop()  # its handler then ends on its own: see _connection
        if self._connections:
            _, stuck = await asyncio.wait(list(self._connections.values()), timeout=1.0)
            for task in stuck:
                task.cancel()
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> MockServer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        conn = _Connection(reader, writer)
        self._connections[conn] = task
        self.stats["open_connections"] += 1
        self.stats["connections"] += 1
        clean = False
        try:
            sock = writer.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while await self._request(conn):
                pass
            clean = not conn.gone
        except (OSError, _ClientGone):
            pass  # the client went away: nothing to tell anyone
        except asyncio.CancelledError:
            # Ends the handler quietly: Python 3.11's start_server logs a cancelled
            # handler as "Exception in callback", and nothing awaits this task's result.
            pass
        except Exception:
            log.exception("mock team %s: unexpected error", self.config.model)
        finally:
            self.stats["open_connections"] -= 1
            del self._connections[conn]
            if clean:
                writer.close()
            else:
                writer.transport.abort()

    async def _request(self, conn: _Connection) -> bool:
        """Serve one request; True to keep the connection for the next."""
        try:
            head = await conn.read_head()
            if head is None:
                return False
            request = _parse_head(head)
            if "transfer-encoding" in request.headers:
                raise _HttpError(411, "chunked request bodies are not accepted; "
                                      "send a Content-Length")
            length = request.headers.get("content-length", "0")
            if not (length.isascii() and length.isdigit()):
                raise _HttpError(400, "Content-Length must be a number")
            if int(length) > MAX_BODY:
                raise _HttpError(413, "the request body is over 1 MiB")
            if request.headers.get("expect", "").lower() == "100-continue":
                await conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.body = await conn.read_body(int(length))
        except _HttpError as exc:  # the rest of the request cannot be trusted: close after
            await self._json(conn, exc.status, _error_body(exc.status, exc.message), False)
            return False
        keep_alive = await self._route(conn, request)
        return keep_alive and request.keep_alive and not conn.gone

    async def _json(self, conn: _Connection, status: int, body: bytes, keep_alive: bool) -> bool:
        await conn.send(_head(status, "application/json", keep_alive, len(body)) + body)
        return keep_alive

    async def _route(self, conn: _Connection, request: _Request) -> bool:
        route = (request.method, request.path)
        keep = request.keep_alive
        if route == ("GET", "/mock/stats"):
            return await self._json(conn, 200, orjson.dumps(self.stats), keep)
        if route not in (("GET", "/v1/models"), ("POST", "/v1/chat/completions")):
            return await self._json(conn, 404, _error_body(
                404, f"no route {request.method} {request.path} on this mock team"), keep)
        config = self.config
        if route[1] == "/v1/chat/completions":
            self.stats["requests"] += 1
        if config.api_key is not None and not _authorized(request, config.api_key):
            return await self._json(conn, 401, _error_body(
                401, "a valid API key is needed: Authorization: Bearer KEY"), keep)
        if route[1] == "/v1/models":
            owner = {"vllm": "vllm", "llamacpp": "llamacpp"}.get(config.dialect, "mockteam")
            return await self._json(conn, 200, orjson.dumps({"object": "list", "data": [
                {"id": config.model, "object": "model", "created": self._started,
                 "owned_by": owner}]}), keep)
        return await self._chat(conn, request, config)

    async def _chat(self, conn: _Connection, request: _Request, config: MockConfig) -> bool:
        t0 = conn.loop.time()  # the schedule starts once the request is read
        keep = request.keep_alive
        number = self.stats["requests"]
        try:
            body = orjson.loads(request.body)
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                raise _HttpError(400, "the body must be a JSON object with a 'messages' list")
            if "mock" in body:
                config = config.with_overrides(body["mock"])
            plan = _plan(config, body, number, self.config.seed, self.answers)
        except orjson.JSONDecodeError:
            return await self._json(conn, 400, _error_body(400, "the body is not valid JSON"), keep)
        except MockConfigError as exc:
            return await self._json(conn, 400, _error_body(400, exc.message), keep)
        except _HttpError as exc:
            return await self._json(conn, exc.status, _error_body(exc.status, exc.message), keep)
        if config.error_rate and self._rng.random() < config.error_rate:
            return await self._json(conn, 500, _error_body(
                500, "mock team: the model server failed (error_rate)"), keep)
        if config.fault == "http_error":
            return await self._json(conn, config.status, _error_body(
                config.status, f"mock team: injected HTTP {config.status}"), keep)
        self.stats["active_streams"] += 1
        watcher = conn.loop.create_task(conn.watch())
        try:
            if plan.stream:
                await conn.send(_head(200, "text/event-stream; charset=utf-8", keep))
                outcome = await self._stream(conn, config, plan, t0)
            else:
                outcome = await self._answer(conn, config, plan, t0, keep)
        except (OSError, _ClientGone):
            outcome = _DONE_GONE
        finally:
            self.stats["active_streams"] -= 1
            watcher.cancel()
            await asyncio.wait([watcher])
        if outcome == _DONE_RESET:
            return False
        self.stats[outcome] += 1
        if outcome == _DONE_GONE:
            conn.gone = True
            return False
        if plan.stream:
            await conn.send(b"0\r\n\r\n")
        return keep

    async def _stream(self, conn: _Connection, config: MockConfig, plan: _Plan,
                      t0: float) -> str:
        wire, out = _Wire(config, plan), _EventWriter(conn, config.fault == "split")
        gaps, itl = delays(config, plan.rng), config.itl_ms / 1e3
        fault = config.fault
        point = config.fault_after if plan.total is None else min(config.fault_after, plan.total)
        stall_at = min(config.stall_after if config.stall_after is not None else math.inf,
                       point if fault == "stall" else math.inf)
        ends_in_fault = fault in ("error_in_stream", "reset")
        malformed_due = fault == "malformed"
        when = t0 + next(gaps)
        first_at = when
        chunks = iter(plan.chunks)
        chunk = next(chunks, None)
        sent = 0
        events = wire.role()
        while True:
            if sent >= stall_at:
                await conn.pause_until(None)  # until the client goes away
                return _DONE_GONE
            if ends_in_fault and sent >= point:
                if not await conn.pause_until(when):
                    return _DONE_GONE
                if fault == "reset":
                    conn.reset()
                    return _DONE_RESET
                await out.send([wire.error(), _DONE])
                return _DONE_OK
            if not await conn.pause_until(when):
                return _DONE_GONE
            if malformed_due and sent >= point:
                events.append(_MALFORMED)
                malformed_due = False
            if chunk is not None:
                field, text, count = chunk
                events.append(wire.delta(field, text))
                sent += count
                chunk = next(chunks, None)
                if malformed_due and sent >= point:
                    events.append(_MALFORMED)
                    malformed_due = False
            if chunk is None and not ends_in_fault and sent < stall_at:
                now = conn.loop.time()
                timings = wire.timings(sent, first_at - t0, now - first_at + itl if sent else 0)
                await out.send(events + wire.tail(sent, timings, fault != "no_done"))
                return _DONE_OK
            await out.send(events)
            events = []
            when += next(gaps)

    async def _answer(self, conn: _Connection, config: MockConfig, plan: _Plan,
                      t0: float, keep_alive: bool) -> str:
        """A non-streamed answer, sent whole when its last token would have been."""
        if config.fault in ("huge", "stall") or (
                config.stall_after is not None and plan.total is not None
                and config.stall_after < plan.total):
            await conn.pause_until(None)
            return _DONE_GONE
        chunks = list(plan.chunks)
        itl = config.itl_ms / 1e3
        when = t0 + sum(itertools.islice(delays(config, plan.rng), max(1, len(chunks))))
        if not await conn.pause_until(when):
            return _DONE_GONE
        if config.fault == "reset":
            conn.reset()
            return _DONE_RESET
        if config.fault == "error_in_stream":
            await self._json(conn, 500, _error_body(
                500, "mock team: the model failed mid-answer"), keep_alive)
            return _DONE_OK
        wire = _Wire(config, plan)
        text: dict[str, str] = {}
        for field, piece, _count in chunks:
            text[field] = text.get(field, "") + piece
        sent = plan.total or 0
        body = wire.completion(text, sent, wire.timings(
            sent, config.ttft_ms / 1e3, when - t0 - config.ttft_ms / 1e3 + itl if sent else 0))
        if config.fault == "malformed":
            body = b'{"choices": [{"message": {"content": "broken'
        head = _head(200, "application/json", keep_alive, len(body))
        if config.fault != "split":
            await conn.send(head + body)
            return _DONE_OK
        await conn.send(head)
        start = 0
        for cut in [*_awkward_cuts(body), len(body)]:
            await conn.send(body[start:cut])
            start = cut
            if not await conn.pause_until(conn.loop.time() + SPLIT_PAUSE_S):
                return _DONE_GONE
        return _DONE_OK


def _authorized(request: _Request, key: str) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(),
                                                              key.encode())
