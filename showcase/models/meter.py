"""Measuring one answer from a team, chunk by chunk: the figures shown on air.

Definitions follow vLLM's ``benchmark_serving`` (benchmarks/backend_request_func.py), with
the proxy's own wait kept apart (docs/protocol.md, section 14.1, states each one):

- the clock of the team's figures starts when the request is **written** to the team's
  connection (``sent``), not when it reached the proxy: the wait for a pooled connection
  is the proxy's, ``queue_ms``, and opening a new connection is ``connect_ms``;
- TTFT: to the first chunk that carries a token (a delta with ``content`` or reasoning,
  an empty string included, other than the role chunk); ITL: the gaps between such
  chunks; E2E: to the last data event before ``[DONE]``;
  TPOT = (E2E - TTFT) / (output tokens - 1);
- a non-streamed answer has no TTFT, TPOT or ITL: it counts for E2E and tokens only.

Output tokens come from the first of these that applies, and ``tokens_method`` says which:
``usage`` (the team's ``completion_tokens``), ``timings`` (llama.cpp's ``predicted_n``),
``max_tokens`` (the answer stopped on ``length``: it generated exactly the cap it was
given), ``tokenize`` (the team's own tokenizer counted the answer's text, asked after the
answer ended) or ``chunks`` (one token per chunk that carried one: exact for servers that
stream one token a chunk, an estimate otherwise, and ``tokens_estimated`` is then true).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from showcase.core.stats import percentile

OK = "ok"

TOKEN_METHODS = ("usage", "timings", "max_tokens", "tokenize", "chunks")
DEFINITIONS = "vllm-benchmark-serving"  # what the metrics say they follow


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(slots=True)
class Meter:
    """Everything measured about one answer, fed one SSE event at a time."""

    t0: float = field(default_factory=time.perf_counter)  # the request reached us
    connecting: float | None = None  # a new connection to the team was being opened
    sent: float | None = None  # the request began to be written to the team
    stream: bool = True
    max_tokens: int | None = None  # the cap the request gave, if any
    first: float | None = None  # when the first chunk with a token arrived
    last_text: float | None = None
    last: float | None = None  # the last data event before [DONE]
    itl: list[float] = field(default_factory=list)
    chunks: int = 0  # chunks that carried a token
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    text_chars: int = 0
    reasoning_chars: int = 0
    usage: dict[str, Any] | None = None
    timings: dict[str, Any] | None = None  # llama.cpp's own counts and times
    counted: int | None = None  # output tokens by the team's tokenizer (tokenize)
    prompt_counted: int | None = None  # prompt tokens by the team's tokenizer
    finish_reason: str | None = None
    done: bool = False  # [DONE] seen
    nbytes: int = 0
    status: str = OK
    error: str = ""
    max_text: int = 16 * 1024  # text kept for the record; the rest is counted
    text_truncated: bool = False
    text_kept: int = 0
    usage_only: bool = False  # the last event was a usage chunk with no choices

    # -- the clock -----------------------------------------------------------------

    def trace(self, event: str, now: float) -> None:
        """httpx's trace events: when a connection was opened and the request written."""
        if event == "connection.connect_tcp.started":
            self.connecting = now
        elif event.endswith(".send_request_headers.started"):
            self.sent = now

    @property
    def start(self) -> float:
        """Where the team's figures start: the request written (else its arrival)."""
        return self.sent if self.sent is not None else self.t0

    # -- the answer ----------------------------------------------------------------

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
        if isinstance(obj.get("timings"), dict):
            self.timings = obj["timings"]
        choices = obj.get("choices")
        self.usage_only = not choices and isinstance(usage, dict)
        if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
            return None
        choice = choices[0]
        if choice.get("finish_reason"):
            self.finish_reason = str(choice["finish_reason"])
        delta = choice.get("delta") or choice.get("message") or {}
        if not isinstance(delta, dict) or "role" in delta:
            return None  # the role chunk: no token yet (vLLM's has "content": "")
        content = delta.get("content")
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if not isinstance(content, str) and not isinstance(reasoning, str):
            return None  # a finish or usage chunk
        # A token's chunk, even with empty text: llama.cpp's servers send "" for a token
        # that ends inside a UTF-8 character, whose bytes come with a later one.
        content = content if isinstance(content, str) else ""
        reasoning = reasoning if isinstance(reasoning, str) else ""
        if self.first is None:
            self.first = now
        elif self.last_text is not None:
            self.itl.append(now - self.last_text)
        self.last_text = now
        self.chunks += 1
        self.reasoning_chars += len(reasoning)
        self.text_chars += len(content)
        self._keep(self.reasoning, reasoning)
        self._keep(self.text, content)
        return content, reasoning

    def _keep(self, into: list[str], piece: str) -> None:
        if not piece or self.text_truncated:
            return
        room = self.max_text - self.text_kept
        if len(piece) > room:
            piece = piece[:room]
            self.text_truncated = True
        into.append(piece)
        self.text_kept += len(piece)

    def whole(self, obj: Any, now: float) -> None:
        """A non-streamed answer, read whole at ``now``: no TTFT, one E2E."""
        self.last = now
        self.done = True
        if not isinstance(obj, dict):
            return
        if isinstance(obj.get("usage"), dict):
            self.usage = obj["usage"]
        if isinstance(obj.get("timings"), dict):
            self.timings = obj["timings"]
        choices = obj.get("choices")
        if not (isinstance(choices, list) and choices and isinstance(choices[0], dict)):
            return
        message = choices[0].get("message") or {}
        if isinstance(message, dict):
            for key, into in (("content", self.text), ("reasoning_content", self.reasoning)):
                value = message.get(key)
                if isinstance(value, str) and value:
                    self._keep(into, value)
                    if key == "content":
                        self.text_chars = len(value)
                    else:
                        self.reasoning_chars = len(value)
            self.chunks = 1 if self.text_chars or self.reasoning_chars else 0
        if choices[0].get("finish_reason"):
            self.finish_reason = str(choices[0]["finish_reason"])

    # -- counts --------------------------------------------------------------------

    @property
    def tokens_method(self) -> str:
        """Which of TOKEN_METHODS gives ``output_tokens`` (see the module's docstring)."""
        if self.usage and _int(self.usage.get("completion_tokens")) is not None:
            return "usage"
        if self.timings and _int(self.timings.get("predicted_n")) is not None:
            return "timings"
        if self.finish_reason == "length" and self.max_tokens is not None:
            return "max_tokens"
        if self.counted is not None:
            return "tokenize"
        return "chunks"

    @property
    def output_tokens(self) -> int:
        method = self.tokens_method
        if method == "usage":
            return int(self.usage["completion_tokens"])  # type: ignore[index]
        if method == "timings":
            return int(self.timings["predicted_n"])  # type: ignore[index]
        if method == "max_tokens":
            return int(self.max_tokens)  # type: ignore[arg-type]
        if method == "tokenize":
            return int(self.counted)  # type: ignore[arg-type]
        return self.chunks

    @property
    def estimated(self) -> bool:
        return self.tokens_method == "chunks"

    @property
    def needs_count(self) -> bool:
        """Whether the team's tokenizer should be asked: no better count is at hand, and
        the whole text was kept to be counted."""
        return (self.status == OK and not self.text_truncated
                and self.tokens_method == "chunks" and bool(self.text or self.reasoning))

    def prompt_tokens(self) -> tuple[int | None, str | None]:
        """The prompt's tokens and how they were counted (usage, timings, tokenize)."""
        if self.usage and _int(self.usage.get("prompt_tokens")) is not None:
            return int(self.usage["prompt_tokens"]), "usage"
        if self.timings and _int(self.timings.get("prompt_n")) is not None:
            return int(self.timings["prompt_n"]), "timings"
        if self.prompt_counted is not None:
            return self.prompt_counted, "tokenize"
        return None, None

    def answer(self) -> str:
        return "".join(self.text)

    def generated(self) -> str:
        """All the text the team generated, reasoning first: what its tokenizer counts."""
        return "".join(self.reasoning) + "".join(self.text)

    # -- figures -------------------------------------------------------------------

    def running(self, now: float) -> dict[str, Any]:
        """Live figures while the answer streams (for the volatile channel)."""
        tokens = self.chunks
        decode = None
        if self.first is not None and tokens > 1 and self.last_text is not None:
            span = self.last_text - self.first
            decode = round((tokens - 1) / span, 2) if span > 0 else None
        return {"ttft_ms": ms(None if self.first is None else self.first - self.start),
                "tokens": tokens, "decode_tps": decode, "elapsed_ms": ms(now - self.start)}

    def result(self, end: float | None = None) -> dict[str, Any]:
        """The finished answer's metrics, as they go into the log."""
        start = self.start
        last = self.last if self.last is not None else end
        e2e = None if last is None else last - start
        ttft = None if self.first is None else self.first - start
        tokens = self.output_tokens
        tpot = decode_tps = None
        if ttft is not None and e2e is not None and tokens > 1 and e2e > ttft:
            tpot = (e2e - ttft) / (tokens - 1)
            decode_tps = round((tokens - 1) / (e2e - ttft), 3)
        queued = (self.connecting if self.connecting is not None else self.sent)
        prompt_tokens, prompt_method = self.prompt_tokens()
        return {
            "ttft_ms": ms(ttft),
            "tpot_ms": ms(tpot),
            "itl_ms_p50": ms(percentile(self.itl, 50)),
            "itl_ms_p99": ms(percentile(self.itl, 99)),
            "itl_ms_max": ms(max(self.itl) if self.itl else None),
            "e2e_ms": ms(e2e),
            "queue_ms": ms(None if queued is None else queued - self.t0),
            "connect_ms": ms(None if self.connecting is None or self.sent is None
                             else self.sent - self.connecting),
            "output_tokens": tokens,
            "tokens_method": self.tokens_method,
            "tokens_estimated": self.estimated,
            "prompt_tokens": prompt_tokens,
            "prompt_tokens_method": prompt_method,
            "decode_tps": decode_tps,
            "e2e_tps": round(tokens / e2e, 3) if e2e and tokens else None,
            "chunks": self.chunks,
            "bytes": self.nbytes,
            "finish_reason": self.finish_reason,
            "done": self.done,
            "streamed": self.stream,
            "definitions": DEFINITIONS,
        }
