"""The mock team server over real HTTP: wire formats, timing, faults, and its command line."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import orjson
import pytest

from showcase.cli import main
from showcase.models.mock.answers import delays
from showcase.models.mock.config import MockConfig
from showcase.models.mock.server import MockServer, serve_mock

HELLO = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]
ANSWER = ["Thank", " you", " for", " the", " question.", " Here", " is", " a"]


@pytest.fixture
async def mock() -> AsyncIterator[MockServer]:
    server = await serve_mock(MockConfig(ttft_ms=10, itl_ms=2, tokens=8))
    try:
        yield server
    finally:
        await server.close()


@dataclass
class Raw:
    """A response read byte by byte: each HTTP chunk as it came, with its arrival time."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    error: Exception | None = None
    ended: bool = False  # the chunked body ended with its zero-length chunk
    started: float = 0.0

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def events(self) -> list[Any]:
        return sse(self.body)


def sse(body: bytes) -> list[Any]:
    """The data of each event: parsed JSON, or the raw string where it is not JSON."""
    out: list[Any] = []
    for block in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = [line[6:] for line in block.split(b"\n") if line.startswith(b"data: ")]
        if not data:
            continue
        text = b"\n".join(data)
        try:
            out.append(orjson.loads(text))
        except orjson.JSONDecodeError:
            out.append(text.decode())
    return out


async def raw_post(port: int, body: dict[str, Any], read_timeout: float = 5.0,
                   path: str = "/v1/chat/completions", headers: str = "") -> Raw:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = orjson.dumps(body)
    raw = Raw(started=time.monotonic())
    writer.write(f"POST {path} HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\n"
                 f"content-length: {len(payload)}\r\n{headers}\r\n".encode() + payload)
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        raw.status = int(lines[0].split()[1])
        raw.headers = {k.lower(): v.strip() for k, _, v in
                       (line.partition(":") for line in lines[1:] if line)}
        if "content-length" in raw.headers:
            raw.chunks.append(await reader.readexactly(int(raw.headers["content-length"])))
            raw.times.append(time.monotonic() - raw.started)
            return raw
        while True:
            size = int(await asyncio.wait_for(reader.readuntil(b"\r\n"), read_timeout), 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                raw.ended = True
                return raw
            raw.chunks.append(data[:-2])
            raw.times.append(time.monotonic() - raw.started)
    except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
        raw.error = exc
        return raw
    finally:
        writer.close()


def chat(stream: bool = True, **extra: Any) -> dict[str, Any]:
    return {"model": "mock-model", "messages": HELLO, "stream": stream, **extra}


def contents(events: list[Any], key: str = "content") -> list[str]:
    return [e["choices"][0]["delta"][key] for e in events
            if isinstance(e, dict) and e.get("choices") and key in e["choices"][0]["delta"]
            and "role" not in e["choices"][0]["delta"]]


async def stats_when(server: MockServer, done: Any, timeout: float = 1.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while not done(server.stats) and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    return dict(server.stats)


# -- dialects --------------------------------------------------------------------------


async def test_vllm_stream_sends_role_with_first_token_then_stop_and_done(
        mock: MockServer) -> None:
    raw = await raw_post(mock.port, chat())
    assert raw.status == 200 and raw.ended
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.headers["transfer-encoding"] == "chunked"
    first = sse(raw.chunks[0])  # one write: the role chunk and the first token, as vLLM does
    assert [e["choices"][0]["delta"] for e in first] == [
        {"role": "assistant", "content": ""}, {"content": "Thank"}]
    events = raw.events()
    chunk = events[1]
    assert chunk["id"].startswith("chatcmpl-") and chunk["object"] == "chat.completion.chunk"
    assert chunk["model"] == "mock-model" and isinstance(chunk["created"], int)
    assert chunk["choices"] == [{"index": 0, "delta": {"content": "Thank"}, "logprobs": None,
                                 "finish_reason": None}]
    assert contents(events) == ANSWER
    assert events[-2]["choices"][0]["delta"] == {}
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert events[-1] == "[DONE]"
    assert not any("usage" in e for e in events if isinstance(e, dict))


async def test_vllm_usage_chunk_comes_only_when_asked(mock: MockServer) -> None:
    events = (await raw_post(mock.port, chat(stream_options={"include_usage": True}))).events()
    usage = events[-2]
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 4, "completion_tokens": 8, "total_tokens": 12}
    assert events[-3]["choices"][0]["finish_reason"] == "stop" and events[-1] == "[DONE]"


async def test_llamacpp_stream_reasons_first_and_ends_with_usage_and_timings(
        mock: MockServer) -> None:
    events = (await raw_post(mock.port, chat(mock={"dialect": "llamacpp"}))).events()
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    assert contents(events, "reasoning_content") == ["The", " user"]  # the first quarter
    assert contents(events) == ANSWER[:6]
    last = events[-2]  # sent whether or not usage was asked for
    assert last["choices"] == [{"finish_reason": "stop", "index": 0, "delta": {}}]
    assert last["usage"] == {"prompt_tokens": 4, "completion_tokens": 8, "total_tokens": 12}
    assert set(last["timings"]) == {
        "prompt_n", "prompt_ms", "prompt_per_token_ms", "prompt_per_second", "predicted_n",
        "predicted_ms", "predicted_per_token_ms", "predicted_per_second"}
    assert last["timings"]["predicted_n"] == 8 and last["timings"]["prompt_ms"] >= 10
    assert events[-1] == "[DONE]"


async def test_plain_stream_has_no_role_chunk_and_never_usage(mock: MockServer) -> None:
    events = (await raw_post(mock.port, chat(
        stream_options={"include_usage": True}, mock={"dialect": "plain"}))).events()
    assert contents(events) == ANSWER and "role" not in events[0]["choices"][0]["delta"]
    assert events[-2]["choices"][0]["finish_reason"] == "stop" and events[-1] == "[DONE]"
    assert not any("usage" in e for e in events if isinstance(e, dict))


async def test_max_tokens_caps_the_answer_with_finish_length(mock: MockServer) -> None:
    events = (await raw_post(mock.port, chat(
        max_tokens=3, stream_options={"include_usage": True}))).events()
    assert contents(events) == ANSWER[:3]
    assert events[-3]["choices"][0]["finish_reason"] == "length"
    assert events[-2]["usage"]["completion_tokens"] == 3
    async with httpx.AsyncClient(base_url=mock.url) as client:
        answer = (await client.post("/chat/completions",
                                    json=chat(False, max_completion_tokens=5))).json()
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == 5


@pytest.mark.parametrize("dialect", ["vllm", "llamacpp", "plain"])
@pytest.mark.parametrize("chunk_tokens", [1, 3])
async def test_every_dialect_generates_exactly_max_tokens_when_it_stops_on_length(
        mock: MockServer, dialect: str, chunk_tokens: int) -> None:
    """What an engine does, and what the meter's ``max_tokens`` count relies on."""
    options = {"dialect": dialect, "chunk_tokens": chunk_tokens}
    events = (await raw_post(mock.port, chat(max_tokens=5, mock=options,
                                             stream_options={"include_usage": True}))).events()
    said = " ".join(["".join(contents(events)), "".join(contents(events, "reasoning_content"))])
    assert len(said.split()) == 5  # one token a word
    finish = [e["choices"][0]["finish_reason"] for e in events
              if isinstance(e, dict) and e.get("choices") and e["choices"][0]["finish_reason"]]
    assert finish == ["length"]
    usage = [e["usage"] for e in events if isinstance(e, dict) and e.get("usage")]
    assert [u["completion_tokens"] for u in usage] == ([] if dialect == "plain" else [5])
    async with httpx.AsyncClient(base_url=mock.url) as client:
        whole = (await client.post("/chat/completions", json=chat(
            False, max_tokens=5, mock=options))).json()
    message = whole["choices"][0]["message"]
    said = message["content"] + " " + (message.get("reasoning_content") or "")
    assert len(said.split()) == 5 and whole["choices"][0]["finish_reason"] == "length"
    assert whole.get("usage", {}).get("completion_tokens", 5) == 5


@pytest.mark.parametrize("dialect", ["vllm", "llamacpp"])
async def test_a_keyed_answer_stops_on_length_only_when_the_cap_cuts_it(dialect: str) -> None:
    answers = {"Say hello": ("The answer is (B).", "The answer is (C).")}
    server = await serve_mock(MockConfig(ttft_ms=1, itl_ms=0, dialect=dialect), answers=answers)
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            async def ask(cap: int) -> tuple[str, str, int]:
                answer = (await client.post("/chat/completions", json=chat(
                    False, max_tokens=cap))).json()
                return (answer["choices"][0]["message"]["content"],
                        answer["choices"][0]["finish_reason"],
                        answer["usage"]["completion_tokens"])
            # Four words, and four of reasoning first in llama.cpp's dialect: within the
            # cap, the answer is whole and ends on stop (it said "length" before).
            thinking = 4 if dialect == "llamacpp" else 0
            assert await ask(64) == ("The answer is (B).", "stop", 4 + thinking)
            # A cap that leaves the answer whole ends on stop (it said "length" before);
            # reasoning yields to the answer, then the answer is cut, and the count is
            # the cap (it was the cap plus 4 before).
            assert await ask(6) == ("The answer is (B).", "stop", 4 + min(thinking, 2))
            assert await ask(3) == ("The answer is", "length", 3)
    finally:
        await server.close()


async def test_usage_false_sends_no_counts_and_the_tokenizer_counts_words(
        mock: MockServer) -> None:
    for dialect in ("vllm", "llamacpp"):
        events = (await raw_post(mock.port, chat(
            stream_options={"include_usage": True},
            mock={"dialect": dialect, "usage": False}))).events()
        assert not any("usage" in e or "timings" in e for e in events if isinstance(e, dict))
    async with httpx.AsyncClient(base_url=mock.url.removesuffix("/v1")) as client:
        vllm = await client.post("/tokenize", json={"model": "m", "prompt": "Thank you for"})
        assert vllm.json()["count"] == 3 and len(vllm.json()["tokens"]) == 3
        mock.config.dialect = "llamacpp"
        llamacpp = await client.post("/tokenize", json={"content": " Thank you"})
        assert len(llamacpp.json()["tokens"]) == 2 and "count" not in llamacpp.json()
        mock.config.dialect = "plain"  # a plain server serves no tokenizer
        assert (await client.post("/tokenize", json={"content": "x"})).status_code == 404


async def test_non_streamed_answers_follow_each_dialect(mock: MockServer) -> None:
    async with httpx.AsyncClient(base_url=mock.url) as client:
        vllm, llamacpp, plain = [(await client.post("/chat/completions", json=chat(
            False, mock={"dialect": d}))).json() for d in ("vllm", "llamacpp", "plain")]
    assert vllm["object"] == "chat.completion"
    assert vllm["choices"][0]["message"]["content"] == "".join(ANSWER)
    assert vllm["choices"][0]["finish_reason"] == "stop"
    assert vllm["usage"] == {"prompt_tokens": 4, "completion_tokens": 8, "total_tokens": 12}
    message = llamacpp["choices"][0]["message"]
    assert message["reasoning_content"] == "The user" and message["content"] == "".join(ANSWER[:6])
    assert llamacpp["usage"]["completion_tokens"] == 8 and "timings" in llamacpp
    assert "usage" not in plain and plain["choices"][0]["message"]["content"] == "".join(ANSWER)


async def test_chunk_tokens_puts_several_tokens_in_each_chunk(mock: MockServer) -> None:
    events = (await raw_post(mock.port, chat(
        stream_options={"include_usage": True}, mock={"chunk_tokens": 3}))).events()
    assert contents(events) == ["".join(ANSWER[0:3]), "".join(ANSWER[3:6]), "".join(ANSWER[6:])]
    assert events[-2]["usage"]["completion_tokens"] == 8


async def test_hangul_in_the_last_user_message_gets_a_korean_answer(mock: MockServer) -> None:
    body = chat(False)
    body["messages"] = [{"role": "user", "content": [{"type": "text", "text": "안녕하세요"}]}]
    async with httpx.AsyncClient(base_url=mock.url) as client:
        answer = (await client.post("/chat/completions", json=body)).json()
    assert answer["choices"][0]["message"]["content"].startswith("질문해 주셔서 감사합니다.")


async def test_openai_client_streams_from_the_mock_with_extra_body(mock: MockServer) -> None:
    client = openai.AsyncOpenAI(base_url=mock.url, api_key="unused")
    try:
        stream = await client.chat.completions.create(
            model="mock-model", messages=HELLO, stream=True,
            stream_options={"include_usage": True}, extra_body={"mock": {"tokens": 4}})
        chunks = [chunk async for chunk in stream]
    finally:
        await client.close()
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "".join(ANSWER[:4])
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4


# -- timing ----------------------------------------------------------------------------


def test_cli_mock_team_serves_on_schedule_behind_its_key() -> None:
    env = {**os.environ, "SHOWCASE_MOCK_API_KEY": "sesame", "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
            [sys.executable, "-m", "showcase", "mock-team", "--port", "0", "--model", "exaone",
             "--ttft-ms", "100", "--itl-ms", "20", "--tokens", "10"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            found = re.fullmatch(r"mock team exaone \(vllm\) listening on "
                                 r"http://127\.0\.0\.1:(\d+)/v1\n", line)
            assert found, line
            port = int(found.group(1))
            denied = httpx.get(f"http://127.0.0.1:{port}/v1/models")
            assert denied.status_code == 401 and denied.json()["error"]["code"] == 401
            key = "authorization: Bearer sesame\r\n"
            raw = asyncio.run(raw_post(port, chat(), headers=key))
            assert contents(raw.events()) == [*ANSWER, " short", " answer"]
            # --ttft-ms 100 --itl-ms 20 took effect: nothing came sooner than they say (a busy
            # machine can only make it later; the precision is bench_proxy.py's to measure).
            assert raw.times[0] >= 0.099, raw.times
            # The mock keeps to a schedule from the request's arrival, so a late first chunk
            # brings the others closer to it: only the last one's time bounds the gaps.
            assert raw.times[-1] >= 0.279, raw.times
            reset = asyncio.run(raw_post(port, chat(mock={"fault": "reset", "ttft_ms": 1}),
                                         headers=key))
            assert isinstance(reset.error, ConnectionResetError), reset.error  # on uvloop too
            proc.send_signal(signal.SIGTERM)
            _, errors = proc.communicate(timeout=5)
            assert proc.returncode == 0 and errors == ""
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_jitter_moves_each_gap_within_its_bound() -> None:
    """The schedule a stream follows: each gap within itl ± jitter, and not all the same."""
    config = MockConfig(ttft_ms=30, itl_ms=10, jitter_ms=4)
    gaps = list(itertools.islice(delays(config, random.Random(7)), 200))
    assert 0.026 <= gaps[0] <= 0.034
    assert all(0.006 <= g <= 0.014 for g in gaps[1:]), gaps
    assert max(gaps[1:]) - min(gaps[1:]) > 0.006  # spread over most of the ±4 ms
    steady = list(itertools.islice(delays(MockConfig(ttft_ms=30, itl_ms=10), random.Random(7)), 5))
    assert steady == [0.03, 0.01, 0.01, 0.01, 0.01]


async def test_jitter_never_sends_a_token_early(mock: MockServer) -> None:
    """Over the wire, a busy machine can only make tokens late: 12 tokens 10 ± 4 ms apart
    take at least 11 × 6 ms after the first."""
    raw = await raw_post(mock.port, chat(mock={"tokens": 12, "itl_ms": 10, "jitter_ms": 4}))
    assert raw.times == sorted(raw.times)
    assert raw.times[-1] - raw.times[0] >= 11 * 0.006 - 0.002


# -- faults ----------------------------------------------------------------------------


async def test_http_error_and_error_rate_answer_before_any_stream(mock: MockServer) -> None:
    async with httpx.AsyncClient(base_url=mock.url) as client:
        busy = await client.post("/chat/completions", json=chat(
            mock={"fault": "http_error", "status": 503}))
        failing = await client.post("/chat/completions", json=chat(mock={"error_rate": 1.0}))
    assert busy.status_code == 503 and busy.headers["content-type"] == "application/json"
    assert set(busy.json()["error"]) == {"message", "type", "code"}
    assert busy.json()["error"]["code"] == 503
    assert failing.status_code == 500 and failing.json()["error"]["type"] == "server_error"


async def test_error_in_stream_comes_after_fault_after_tokens(mock: MockServer) -> None:
    raw = await raw_post(mock.port, chat(mock={"fault": "error_in_stream", "fault_after": 2}))
    events = raw.events()
    assert raw.status == 200 and raw.ended and contents(events) == ANSWER[:2]
    assert events[-2] == {"error": {"message": "mock team: the model failed mid-answer",
                                    "type": "server_error", "code": 500}}
    assert events[-1] == "[DONE]"


async def test_reset_fault_resets_the_tcp_connection(mock: MockServer) -> None:
    # The reset comes one gap after the third token: a gap long enough for a busy machine
    # to read that token first (a reset drops what the client has not read yet).
    raw = await raw_post(mock.port, chat(mock={"fault": "reset", "fault_after": 3,
                                               "itl_ms": 200}))
    assert contents(raw.events()) == ANSWER[:3]
    assert isinstance(raw.error, ConnectionResetError), raw.error
    stats = await stats_when(mock, lambda s: s["open_connections"] == 0)
    assert stats["active_streams"] == 0 and stats["disconnected"] == 0


async def test_no_done_fault_ends_the_body_without_done_or_usage(mock: MockServer) -> None:
    raw = await raw_post(mock.port, chat(stream_options={"include_usage": True},
                                         mock={"fault": "no_done"}))
    events = raw.events()
    assert raw.ended and contents(events) == ANSWER
    assert events[-1]["choices"][0]["finish_reason"] == "stop"
    assert "[DONE]" not in events and not any("usage" in e for e in events)


async def test_malformed_fault_sends_one_broken_event_and_goes_on(mock: MockServer) -> None:
    events = (await raw_post(mock.port, chat(
        mock={"fault": "malformed", "fault_after": 2}))).events()
    broken = '{"choices": [{"delta": {"content": "broken'
    assert broken in events and contents(events[:events.index(broken)]) == ANSWER[:2]
    assert contents(events) == ANSWER and events[-1] == "[DONE]"


async def test_split_fault_cuts_events_at_awkward_bytes(mock: MockServer) -> None:
    body = chat(stream_options={"include_usage": True}, mock={"fault": "split", "tokens": 4})
    body["messages"] = [{"role": "user", "content": "한국어로 답해 주세요"}]
    raw = await raw_post(mock.port, body)
    whole = dict(body, mock={"tokens": 4})
    plain = (await raw_post(mock.port, whole)).events()
    assert len(raw.events()) == len(plain) and contents(raw.events()) == contents(plain)
    pieces = raw.chunks  # each piece came as its own HTTP chunk
    assert any(a.endswith(b"\r") and b.startswith(b"\n") for a, b in itertools.pairwise(pieces))
    assert any(piece.count(b'"') % 2 for piece in pieces)  # a cut inside a JSON string
    with pytest.raises(UnicodeDecodeError):  # a cut inside a multi-byte character
        for piece in pieces:
            piece.decode("utf-8")
    assert b": keep-alive\r\n\r\n" in pieces
    bare = raw.body.replace(b"\r\n", b"")
    assert b"\r" not in bare and b"\n" not in bare  # every line ends in \r\n


async def test_stall_keeps_the_connection_open_until_the_client_leaves(
        mock: MockServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", mock.port)
    payload = orjson.dumps(chat(mock={"fault": "stall", "fault_after": 2}))
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\ncontent-length: %d\r\n\r\n%b"
                 % (len(payload), payload))
    received = b""
    deadline = time.monotonic() + 2
    while received.count(b"data: ") < 3 and time.monotonic() < deadline:  # role + 2 tokens
        received += await reader.read(65536)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(65536), 0.15)
    assert mock.stats["active_streams"] == 1
    writer.close()
    stats = await stats_when(mock, lambda s: s["disconnected"] == 1, timeout=0.1)
    assert stats["disconnected"] == 1 and stats["active_streams"] == 0


async def test_huge_answer_streams_until_the_client_closes_and_is_counted(
        mock: MockServer) -> None:
    async with httpx.AsyncClient(base_url=mock.url) as client, client.stream(
            "POST", "/chat/completions",
            json=chat(max_tokens=5, mock={"fault": "huge", "itl_ms": 1})) as response:
        seen = 0
        async for line in response.aiter_lines():
            seen += line.startswith("data: ")
            if seen > 40:  # far past max_tokens and the configured 8 tokens
                break
    stats = await stats_when(mock, lambda s: s["disconnected"] == 1)
    assert stats["active_streams"] == 0 and stats["disconnected"] == 1
    assert stats["completed"] == 0


# -- HTTP ------------------------------------------------------------------------------


async def test_api_key_is_required_when_set() -> None:
    async with await serve_mock(MockConfig(api_key="sesame", ttft_ms=1, itl_ms=1)) as server, \
            httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/models")).status_code == 401
        wrong = await client.post("/chat/completions", json=chat(False),
                                  headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.json()["error"]["type"] == "authentication_error"
        key = {"Authorization": "Bearer sesame"}
        models = (await client.get("/models", headers=key)).json()
        assert models["object"] == "list"
        assert models["data"][0]["id"] == "mock-model" and models["data"][0]["owned_by"]
        ok = await client.post("/chat/completions", json=chat(False), headers=key)
        assert ok.status_code == 200
        overridden = await client.post("/chat/completions", headers=key,
                                       json=chat(False, mock={"api_key": None}))
        assert overridden.status_code == 400  # a request cannot lift the key


async def test_unknown_routes_and_bad_bodies_get_openai_errors(mock: MockServer) -> None:
    async with httpx.AsyncClient(base_url=mock.url) as client:
        missing = await client.get("/embeddings")
        bad_json = await client.post("/chat/completions", content=b"{nope")
        no_messages = await client.post("/chat/completions", json={"model": "m"})
        unknown = await client.post("/chat/completions", json=chat(mock={"speed": 3}))
        wrong = await client.post("/chat/completions", json=chat(mock={"fault": "explode"}))
        negative = await client.post("/chat/completions", json=chat(max_tokens=0))
    assert missing.status_code == 404
    assert missing.json() == {"error": {"message": "no route GET /v1/embeddings on this mock team",
                                        "type": "not_found_error", "code": 404}}
    for response in (bad_json, no_messages, unknown, wrong, negative):
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_request_error"
    assert "'speed'" in unknown.json()["error"]["message"]
    assert wrong.json()["error"]["message"].startswith("mock.fault must be one of")


async def test_oversized_and_chunked_request_bodies_are_refused(mock: MockServer) -> None:
    big = await raw_post(mock.port, {"messages": [], "pad": "x" * (1024 * 1024 + 1)})
    assert big.status == 413 and big.headers["connection"] == "close"
    reader, writer = await asyncio.open_connection("127.0.0.1", mock.port)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"
                 b"2\r\n{}\r\n0\r\n\r\n")
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 411 ")
    reader, writer = await asyncio.open_connection("127.0.0.1", mock.port)
    writer.write(b"GET /v1/models HTTP/1.1\r\nx-big: " + b"a" * 17000 + b"\r\n\r\n")
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 431 ")


async def test_keep_alive_serves_many_requests_on_one_connection(mock: MockServer) -> None:
    async with httpx.AsyncClient(base_url=mock.url) as client:
        for _ in range(3):
            async with client.stream("POST", "/chat/completions", json=chat()) as response:
                assert [line async for line in response.aiter_lines() if line][-1] == \
                    "data: [DONE]"
        await client.post("/chat/completions", json=chat(False))
        stats = (await client.get(mock.url.removesuffix("/v1") + "/mock/stats")).json()
        closing = await client.get("/models", headers={"Connection": "close"})
    assert stats == {"requests": 4, "active_streams": 0, "completed": 4, "disconnected": 0,
                     "open_connections": 1, "connections": 1}
    assert closing.headers["connection"] == "close"


# -- command line ----------------------------------------------------------------------


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--ttft-ms", "-5", "--ttft-ms must be a number of milliseconds >= 0"),
    ("--error-rate", "1.5", "--error-rate must be between 0 and 1"),
    ("--chunk-tokens", "0", "--chunk-tokens must be a whole number >= 1"),
    ("--status", "200", "--status must be an HTTP error status"),
])
def test_cli_mock_team_rejects_bad_options_with_exit_2(
        option: str, value: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mock-team", "--port", "0", option, value]) == 2
    assert message in capsys.readouterr().err


def test_cli_mock_team_rejects_an_unknown_dialect(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["mock-team", "--port", "0", "--dialect", "tgi"])
    assert exited.value.code == 2 and "invalid choice: 'tgi'" in capsys.readouterr().err
