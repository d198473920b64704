"""SSE parsing and the metrics' definitions, without sockets."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from showcase.core.stats import percentile
from showcase.models.upstream import Meter, SSEParser


def chunk(text: str = "", *, reasoning: str = "", finish: str | None = None,
          usage: dict[str, int] | None = None, choices: bool = True) -> bytes:
    obj: dict[str, object] = {"object": "chat.completion.chunk"}
    delta = {k: v for k, v in (("content", text), ("reasoning_content", reasoning)) if v}
    obj["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else []
    if usage is not None:
        obj["usage"] = usage
    return orjson.dumps(obj)


STREAM = (b": hello\n\n" + b"data: " + chunk("안녕") + b"\n\n"
          + b"event: message\ndata: " + chunk(" world") + b"\n\n"
          + b"data: [DONE]\n\n")


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_every_split_of_a_stream_gives_the_same_events(eol: bytes) -> None:
    stream = STREAM.replace(b"\n", eol)
    parser = SSEParser()
    whole = parser.feed(stream) + parser.flush()
    assert [d for _, d in whole] == [None, chunk("안녕"), chunk(" world"), b"[DONE]"]
    assert b"".join(raw for raw, _ in whole) == stream  # bytes pass through as sent
    for cut in range(1, len(stream)):
        parser = SSEParser()
        events = parser.feed(stream[:cut]) + parser.feed(stream[cut:]) + parser.flush()
        assert events == whole, cut
    one_by_one = SSEParser()
    events = [e for i in range(len(stream)) for e in one_by_one.feed(stream[i:i + 1])]
    assert events + one_by_one.flush() == whole


def test_multi_line_data_is_joined_and_an_endless_event_is_refused() -> None:
    assert SSEParser().feed(b"data: a\ndata: b\n\n") == [(b"data: a\ndata: b\n\n", b"a\nb")]
    assert SSEParser().feed(b"data:x\n\n")[0][1] == b"x"
    parser = SSEParser(max_event=100)
    with pytest.raises(ValueError, match="longer than 100 bytes"):
        parser.feed(b"data: " + b"x" * 200)


def feed(meter: Meter, at: float, data: bytes) -> None:
    meter.on_data(data, meter.t0 + at)


def test_metrics_follow_the_vllm_definitions() -> None:
    m = Meter(t0=100.0)
    feed(m, 0.150, orjson.dumps({"choices": [{"delta": {"role": "assistant", "content": ""}}]}))
    for i in range(10):
        feed(m, 0.200 + i * 0.020, chunk(f" t{i}"))
    feed(m, 0.380, chunk(finish="stop"))
    feed(m, 0.381, chunk(choices=False, usage={"completion_tokens": 10, "prompt_tokens": 7}))
    feed(m, 0.382, b"[DONE]")
    r = m.result()
    assert r["ttft_ms"] == pytest.approx(200)  # the role-only chunk carries no token
    assert r["itl_ms_p50"] == pytest.approx(20)
    assert r["e2e_ms"] == pytest.approx(381)  # the last chunk before [DONE]
    assert r["output_tokens"] == 10 and r["tokens_estimated"] is False
    assert r["tpot_ms"] == pytest.approx((381 - 200) / 9, abs=1e-3)
    assert r["decode_tps"] == pytest.approx(9 / 0.181, rel=1e-3)
    assert r["e2e_tps"] == pytest.approx(10 / 0.381, rel=1e-3)
    assert r["finish_reason"] == "stop" and r["done"] is True and r["prompt_tokens"] == 7
    assert m.answer() == "".join(f" t{i}" for i in range(10))


def test_without_usage_tokens_are_counted_and_marked_estimated() -> None:
    m = Meter(t0=0.0)
    for i in range(4):
        feed(m, 0.1 * (i + 1), chunk("two words"))
    r = m.result()
    assert r["output_tokens"] == 4 and r["tokens_estimated"] is True


def test_reasoning_counts_as_output_but_not_as_answer_text() -> None:
    m = Meter(t0=0.0)
    feed(m, 0.1, chunk(reasoning="thinking"))
    feed(m, 0.2, chunk("answer"))
    assert m.result()["ttft_ms"] == pytest.approx(100)
    assert m.answer() == "answer" and m.reasoning_chars == len("thinking")


def test_an_error_in_the_stream_and_garbage_raise_with_the_reason() -> None:
    with pytest.raises(ValueError, match="error in its stream: overloaded"):
        Meter().on_data(b'{"error": {"message": "overloaded"}}', 1.0)
    with pytest.raises(ValueError, match="unreadable chunk"):
        Meter().on_data(b'{"choices": [', 1.0)


def test_kept_text_is_capped_but_counted() -> None:
    m = Meter(t0=0.0, max_text=10)
    for i in range(5):
        feed(m, 0.1 * (i + 1), chunk("abcd"))
    assert m.answer() == "abcdabcdab" and m.text_truncated and m.text_chars == 20


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([], 50) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([10.0, 20.0], 95) == pytest.approx(19.5)


def test_the_teams_clock_starts_when_the_request_is_written() -> None:
    """The wait for a pooled connection is the proxy's (queue_ms), opening one is
    connect_ms, and the team's TTFT and E2E run from the request written (issue 21)."""
    m = Meter(t0=10.0)
    m.trace("connection.connect_tcp.started", 11.0)   # a second in the pool's queue
    m.trace("http11.send_request_headers.started", 11.002)
    feed(m, 1.202, chunk("hi"))
    feed(m, 1.302, chunk(" there", finish="stop"))
    r = m.result()
    assert r["queue_ms"] == pytest.approx(1000) and r["connect_ms"] == pytest.approx(2)
    assert r["ttft_ms"] == pytest.approx(200) and r["e2e_ms"] == pytest.approx(300)
    reused = Meter(t0=10.0)
    reused.trace("http11.send_request_headers.started", 10.5)
    assert reused.result()["queue_ms"] == pytest.approx(500)
    assert reused.result()["connect_ms"] is None


def test_an_empty_delta_is_a_token_and_the_role_chunk_is_not() -> None:
    """llama.cpp's servers send "" for a token that ends inside a UTF-8 character."""
    m = Meter(t0=0.0)
    feed(m, 0.1, orjson.dumps({"choices": [{"delta": {"role": "assistant"}}]}))
    feed(m, 0.2, orjson.dumps({"choices": [{"delta": {"content": ""}}]}))
    feed(m, 0.3, chunk("\uac00"))
    feed(m, 0.4, orjson.dumps({"choices": [{"delta": {}, "finish_reason": "stop"}]}))
    r = m.result()
    assert r["ttft_ms"] == pytest.approx(200) and r["chunks"] == 2
    assert (r["output_tokens"], r["tokens_method"], r["tokens_estimated"]) == (2, "chunks", True)
    assert m.answer() == "\uac00"


@pytest.mark.parametrize("extra, tokens, method", [
    ({"usage": {"completion_tokens": 9, "prompt_tokens": 4}}, 9, "usage"),
    ({"timings": {"predicted_n": 8, "prompt_n": 3}}, 8, "timings"),
    ({}, 5, "max_tokens"),
])
def test_output_tokens_say_which_method_counted_them(extra: dict[str, Any], tokens: int,
                                                     method: str) -> None:
    m = Meter(t0=0.0, max_tokens=5)
    for i in range(3):
        feed(m, 0.1 * (i + 1), chunk("three tokens here"))
    feed(m, 0.4, orjson.dumps({"choices": [{"delta": {}, "finish_reason": "length"}], **extra}))
    r = m.result()
    assert (r["output_tokens"], r["tokens_method"], r["tokens_estimated"]) == (
        tokens, method, False)
    assert (r["prompt_tokens"], r["prompt_tokens_method"]) == {
        "usage": (4, "usage"), "timings": (3, "timings")}.get(method, (None, None))


def test_a_tokenizer_count_is_used_when_nothing_better_came() -> None:
    m = Meter(t0=0.0, max_tokens=50)
    feed(m, 0.1, chunk("two words", finish="stop"))
    assert m.needs_count and m.generated() == "two words"
    m.counted, m.prompt_counted = 2, 7
    r = m.result()
    assert (r["output_tokens"], r["tokens_method"], r["tokens_estimated"]) == (2, "tokenize",
                                                                              False)
    assert (r["prompt_tokens"], r["prompt_tokens_method"]) == (7, "tokenize")


def test_a_whole_answer_has_no_ttft() -> None:
    m = Meter(t0=0.0, stream=False)
    m.trace("http11.send_request_headers.started", 0.01)
    m.whole({"choices": [{"message": {"content": "all of it"}, "finish_reason": "stop"}],
             "usage": {"completion_tokens": 3, "prompt_tokens": 2}}, 0.51)
    r = m.result()
    assert r["ttft_ms"] is None and r["tpot_ms"] is None and r["itl_ms_p50"] is None
    assert r["e2e_ms"] == pytest.approx(500) and r["output_tokens"] == 3
    assert r["streamed"] is False and m.answer() == "all of it"
