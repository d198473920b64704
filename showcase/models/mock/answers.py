"""What the mock answers and how it sends it: the words, the schedule, each dialect's
wire format, and the awkward cuts of the ``split`` fault."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from showcase.models.mock.config import SPLIT_PAUSE_S, MockConfig, is_int
from showcase.models.mock.connection import ClientGone, Connection, HttpError, chunk

_HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")
_LEAD_BYTE = re.compile(rb"[\xc0-\xff]")
DONE = b"[DONE]"
MALFORMED = b'{"choices": [{"delta": {"content": "broken'
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
class Plan:
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


def plan_answer(config: MockConfig, request: dict[str, Any], number: int, seed: int,
          answers: Mapping[str, tuple[str, str]] | None = None) -> Plan:
    stream = request.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise HttpError(400, "'stream' must be true or false")
    options = request.get("stream_options") or {}
    if not isinstance(options, dict) or not isinstance(options.get("include_usage", False), bool):
        raise HttpError(400, "'stream_options' must be an object with a boolean include_usage")
    limit: int | None = None  # the request's cap on the tokens generated
    for key in ("max_tokens", "max_completion_tokens"):
        cap = request.get(key)
        if cap is not None and (not is_int(cap) or cap < 1):
            raise HttpError(400, f"'{key}' must be a whole number >= 1")
        if cap is not None:
            limit = cap if limit is None else min(limit, cap)
    messages = request["messages"]
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    asked = _text(users[-1].get("content")) if users else ""
    korean = bool(_HANGUL.search(asked))
    answer = _ANSWER_KO if korean else _ANSWER_EN
    keyed = answers.get(asked) if answers else None
    # What the model would say unbounded: its reasoning (llamacpp) and its answer. The
    # request's cap then cuts the whole, reasoning first, as an engine's max_tokens does,
    # and only a cut answer ends on "length": the count is then exactly the cap.
    thinking = 0
    if keyed is not None:
        # A benchmark item: right or wrong by a draw fixed per item, so a team's accuracy
        # over a suite is close to config.accuracy and the same on every run.
        right = random.Random(f"{seed}/{config.model}/{asked}").random() < config.accuracy
        answer = _words(keyed[0] if right else keyed[1])
        said = min(config.tokens, len(answer))
        if config.dialect == "llamacpp":
            # A keyed answer comes after a little reasoning, which yields to the answer
            # under a cap: cut short, it would be graded wrong for the mock's reason.
            thinking = 4 if limit is None else max(0, min(4, limit - said))
    else:
        thinking = config.tokens // 4 if config.dialect == "llamacpp" else 0
        said = config.tokens - thinking
    count, finish = thinking + said, "stop"
    if limit is not None and limit < count:
        count, finish = limit, "length"
        said = min(said, count)
        thinking = count - said if keyed is not None else min(thinking, count)
        said = count - thinking
    size = config.chunk_tokens
    chunks: Iterable[tuple[str, str, int]]
    total: int | None = count
    if config.fault == "huge":
        chunks, total = _group("content", _tokens(answer, None), size), None
    elif thinking:
        chunks = [*_group("reasoning_content",
                          _tokens(_REASONING_KO if korean else _REASONING_EN, thinking), size),
                  *_group("content", _tokens(answer, said), size)]
    else:
        chunks = list(_group("content", _tokens(answer, said), size))
    rng = random.Random(f"{seed}/{number}")
    return Plan(
        chunks=chunks, total=total, finish=finish,
        prompt_tokens=sum(len(_text(m.get("content")).split()) for m in messages
                          if isinstance(m, dict)),
        stream=bool(stream), include_usage=options.get("include_usage", False), rng=rng,
        chat_id=f"chatcmpl-{rng.getrandbits(128):032x}", created=int(time.time()))


class Wire:
    """The JSON a dialect sends. Content chunks, the bulk of a stream, are spliced into
    a template encoded once per answer."""

    def __init__(self, config: MockConfig, plan: Plan) -> None:
        self.dialect = config.dialect
        self.model = config.model
        self.sends_usage = config.usage
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
            extra = ({"usage": self.usage(completion), "timings": timings}
                     if done and self.sends_usage else {})
            events = [self._dumps(self._choice({}, finish), extra=extra)]
        else:
            events = [self._dumps(self._choice({}, finish, stop_reason=None))]
            if self.dialect == "vllm" and self.plan.include_usage and done and self.sends_usage:
                events.append(self._dumps(None, extra={"usage": self.usage(completion)}))
        return [*events, DONE] if done else events

    def error(self) -> bytes:
        return orjson.dumps({"error": {"message": "mock team: the model failed mid-answer",
                                       "type": "server_error", "code": 500}})

    def completion(self, text: dict[str, str], completion: int,
                   timings: dict[str, Any]) -> bytes:
        """A whole (non-streamed) answer."""
        finish, content = self.plan.finish, text.get("content", "")
        counts = ({"usage": self.usage(completion), "timings": timings}
                  if self.sends_usage else {})
        if self.dialect == "llamacpp":
            message = {"role": "assistant", "content": content,
                       "reasoning_content": text.get("reasoning_content", "")}
            return orjson.dumps({
                "choices": [{"finish_reason": finish, "index": 0, "message": message}],
                "created": self.plan.created, "model": self.model,
                "system_fingerprint": _FINGERPRINT, "object": "chat.completion",
                "id": self.plan.chat_id, **counts})
        if self.dialect == "vllm":
            choice = {"index": 0, "message": {"role": "assistant", "content": content,
                                              "refusal": None, "tool_calls": [],
                                              "reasoning_content": None},
                      "logprobs": None, "finish_reason": finish, "stop_reason": None}
            return self._dumps(choice, "chat.completion",
                               {**{k: v for k, v in counts.items() if k == "usage"},
                                "prompt_logprobs": None})
        return self._dumps({"index": 0, "message": {"role": "assistant", "content": content},
                            "finish_reason": finish}, "chat.completion")


def tokenize(dialect: str, request: object) -> bytes:
    """The mock's tokenizer, one token a word as its answers are sent, in the shape of
    vLLM's /tokenize ("prompt" in, "count" out) or llama.cpp's ("content" in, "tokens")."""
    if not isinstance(request, dict):
        raise HttpError(400, "the body must be a JSON object")
    text = request.get("prompt" if dialect == "vllm" else "content")
    if not isinstance(text, str):
        raise HttpError(400, f"'{'prompt' if dialect == 'vllm' else 'content'}' must be a "
                             "string")
    tokens = list(range(100, 100 + len(text.split())))
    if dialect == "vllm":
        return orjson.dumps({"count": len(tokens), "max_model_len": 4096, "tokens": tokens})
    return orjson.dumps({"tokens": tokens})


def awkward_cuts(event: bytes) -> list[int]:
    """Where to cut an event: in "data:", inside the JSON, inside a UTF-8 character,
    and between each \\r and \\n of the closing blank line."""
    cuts = {3, 9, len(event) - 3, len(event) - 1}
    lead = _LEAD_BYTE.search(event)
    if lead is not None:
        cuts.add(lead.start() + 1)
    return sorted(c for c in cuts if 0 < c < len(event))


class EventWriter:
    """Writes SSE events as HTTP chunks: one write per call, or cut into pieces (fault split)."""

    def __init__(self, conn: Connection, split: bool) -> None:
        self.conn = conn
        self.split = split
        self.events = 0

    async def send(self, events: list[bytes]) -> None:
        if not self.split:
            await self.conn.send(chunk(b"".join(b"data: %b\n\n" % e for e in events)))
            return
        for data in events:
            if self.events:
                await self._piece(b": keep-alive\r\n\r\n")
            self.events += 1
            event = b"data: %b\r\n\r\n" % data
            start = 0
            for cut in [*awkward_cuts(event), len(event)]:
                await self._piece(event[start:cut])
                start = cut

    async def _piece(self, data: bytes) -> None:
        await self.conn.send(chunk(data))
        if not await self.conn.pause_until(self.conn.loop.time() + SPLIT_PAUSE_S):
            raise ClientGone
