"""The proxy, live demos and health, over real HTTP against the project's mock team servers.

One server for the module, in front of five teams: vLLM-like (with an API key), llama.cpp-
like, plain (no usage), a slow one, and one whose port nothing listens on. Faults are
chosen per request with the mock's ``mock`` body field, which the proxy passes through.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.conftest import JUDGE, OPERATOR, PRESENTER, Server
from tests.streams import Viewer

TEAM_KEY = "team-secret-key-never-shown"
LISTENING = re.compile(r"listening on (http://\S+)/v1")


class Mock:
    """``showcase mock-team`` as a rehearsing team would run it."""

    def __init__(self, *args: str, port: int = 0) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "showcase", "mock-team", "--port", str(port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        found = LISTENING.search(line)
        if not found:
            self.stop()
            raise RuntimeError(f"mock team did not start: {line}")
        self.url = found.group(1)

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/mock/stats", timeout=5).json()  # type: ignore[no-any-return]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def team(ident: str, endpoint: str, key_env: str = "") -> str:
    return (f'[[teams]]\nid = "{ident}"\nname_ko = "{ident}"\nname_en = "{ident}"\n'
            f'endpoint = "{endpoint}"\n' + (f'api_key_env = "{key_env}"\n' if key_env else ""))


class Stage:
    def __init__(self, server: Server, mocks: dict[str, Mock], down_port: int) -> None:
        self.server = server
        self.mocks = mocks
        self.down_port = down_port

    @property
    def url(self) -> str:
        return self.server.url

    def measured(self, team: str, since: int) -> list[dict[str, Any]]:
        with self.server.client(OPERATOR) as c:
            events = c.get("/api/log", params={"since": since, "type": "request_measured"}).json()
        return [e["data"] for e in events["events"] if e["data"]["team"] == team]

    def last_measured(self, team: str, since: int, timeout: float = 5) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.measured(team, since)
            if found:
                return found[-1]
            time.sleep(0.02)
        raise AssertionError(f"no request_measured for {team} after seq {since}")

    def seq(self) -> int:
        return int(self.server.state(OPERATOR)["seq"])

    def stream(self, team: str, body: dict[str, Any], token: str = PRESENTER
               ) -> tuple[int, list[dict[str, Any]], bytes]:
        """POST a streamed chat completion; the status, the parsed data events, the raw bytes."""
        payload = {"messages": [{"role": "user", "content": "Say something."}],
                   "stream": True, **body}
        with httpx.stream("POST", f"{self.url}/v1/teams/{team}/chat/completions", json=payload,
                          headers={"Authorization": f"Bearer {token}"}, timeout=20) as r:
            raw = r.read()
        events = []
        for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
            for line in block.split(b"\n"):
                if line.startswith(b"data: ") and line != b"data: [DONE]":
                    events.append(orjson.loads(line[6:]))
        return r.status_code, events, raw


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    quick = ["--ttft-ms", "30", "--itl-ms", "5", "--tokens", "20"]
    mocks = {
        "lg": Mock("--dialect", "vllm", "--model", "exaone", "--api-key", TEAM_KEY, *quick),
        "skt": Mock("--dialect", "llamacpp", "--model", "ax", *quick),
        "upstage": Mock("--dialect", "plain", "--model", "solar", *quick),
        "slow": Mock("--dialect", "vllm", "--model", "slow", "--ttft-ms", "700",
                     "--itl-ms", "5", "--tokens", "5"),
    }
    down_port = free_port()
    tmp = tmp_path_factory.mktemp("proxy")
    show = tmp / "show.toml"
    show.write_text(
        "[show]\ntitle_en = \"Proxy test\"\n"
        + "[[judges]]\nid = \"kim\"\nname = \"Kim Jiwon\"\n"  # whose token meets refusals
        + team("lg", f"{mocks['lg'].url}/v1", "SHOWCASE_KEY_LG")
        + team("skt", f"{mocks['skt'].url}/v1")
        + team("upstage", f"{mocks['upstage'].url}/v1")
        + team("slow", f"{mocks['slow'].url}/v1")
        + team("naver", f"http://127.0.0.1:{down_port}/v1")
        + "[proxy]\nconnect_timeout = 1\nfirst_token_timeout = 1\nidle_timeout = 0.5\n"
          "total_timeout = 6\nmax_connections = 4\nmax_answer_bytes = 100000\n"
          "max_answer_tokens = 400\nhealth_interval = 0.5\nhealth_timeout = 0.4\n",
        encoding="utf-8")
    os.environ["SHOWCASE_KEY_LG"] = TEAM_KEY
    server = Server(show, tmp / "data").start()
    try:
        yield Stage(server, mocks, down_port)
    finally:
        server.stop()
        os.environ.pop("SHOWCASE_KEY_LG", None)
        for mock in mocks.values():
            mock.stop()


# -- the proxy -------------------------------------------------------------------------


def test_the_openai_client_streams_through_the_proxy_with_the_key_added(stage: Stage) -> None:
    client = openai.OpenAI(base_url=f"{stage.url}/v1/teams/lg", api_key=PRESENTER)
    since = stage.seq()
    stream = client.chat.completions.create(
        model="lg", messages=[{"role": "user", "content": "Introduce yourself."}],
        stream=True, max_tokens=64)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len(text.split()) == 20
    # The proxy asked for usage itself, and kept the usage-only chunk from this client.
    assert all(c.choices for c in chunks)
    assert chunks[0].model == "exaone"  # "lg" was replaced by the model the team serves
    measured = stage.last_measured("lg", since)
    assert measured["status"] == "ok"
    assert measured["metrics"]["output_tokens"] == 20
    assert measured["metrics"]["tokens_estimated"] is False

    # A client that asks for usage gets it, as the team sent it.
    chunks = list(client.chat.completions.create(
        model="exaone", messages=[{"role": "user", "content": "Again."}], stream=True,
        stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 20

    answer = client.chat.completions.create(
        model="exaone", messages=[{"role": "user", "content": "Not streamed."}])
    assert answer.choices[0].message.content and answer.usage is not None

    models = client.models.list()
    assert [m.id for m in models.data] == ["exaone"]

    # The team's key went to the team (the mock refuses without it) and nowhere else.
    with stage.server.client(OPERATOR) as c:
        everything = c.get("/api/state").text + c.get("/api/log", params={"limit": 5000}).text
    assert TEAM_KEY not in everything


def test_the_proxy_is_not_an_open_relay(stage: Stage) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}]}
    url = f"{stage.url}/v1/teams/lg/chat/completions"
    assert httpx.post(url, json=body).status_code == 401
    refused = httpx.post(url, json=body, headers={"Authorization": f"Bearer {JUDGE}"})
    assert refused.status_code == 403 and "proxy" in refused.json()["error"]
    unknown = httpx.post(f"{stage.url}/v1/teams/openai/chat/completions", json=body,
                         headers={"Authorization": f"Bearer {OPERATOR}"})
    assert unknown.status_code == 404 and "unknown team 'openai'" in unknown.json()["error"]
    for path in ("/v1/teams/lg/../../admin", "/v1/teams/http:%2F%2Fexample.com/models",
                 "/v1/teams/lg/embeddings"):
        r = httpx.post(f"{stage.url}{path}", json=body,
                       headers={"Authorization": f"Bearer {OPERATOR}"})
        assert r.status_code == 404, path
    bad = httpx.post(url, content=b"{not json", headers={"Authorization": f"Bearer {OPERATOR}"})
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]
    empty = httpx.post(url, json={"messages": []},
                       headers={"Authorization": f"Bearer {OPERATOR}"})
    assert empty.status_code == 400 and "messages" in empty.json()["error"]


@pytest.mark.parametrize("team, estimated, reasoning", [
    ("lg", False, False), ("skt", False, True), ("upstage", True, False)])
def test_each_dialect_is_measured(stage: Stage, team: str, estimated: bool,
                                  reasoning: bool) -> None:
    since = stage.seq()
    status, events, _ = stage.stream(team, {})
    assert status == 200
    text = "".join(e["choices"][0]["delta"].get("content") or ""
                   for e in events if e.get("choices"))
    assert text.strip()
    thinking = any(e["choices"][0]["delta"].get("reasoning_content")
                   for e in events if e.get("choices"))
    assert thinking is reasoning
    metrics = stage.last_measured(team, since)["metrics"]
    assert metrics["tokens_estimated"] is estimated
    assert metrics["output_tokens"] == 20
    assert metrics["ttft_ms"] >= 30 and metrics["decode_tps"] > 0


def test_metrics_match_the_mock_timing(stage: Stage) -> None:
    """The proxy's figures lie between what the mock was told (it never sends early) and what
    this test saw itself (the proxy sees each chunk before its client does). Both bounds hold
    on a busy machine; how close the figures come to the configured timing is measured in
    benchmarks/bench_proxy.py, not asserted here."""
    since = stage.seq()
    payload = {"messages": [{"role": "user", "content": "Say something."}], "stream": True,
               "max_tokens": 50, "mock": {"ttft_ms": 200, "itl_ms": 20, "tokens": 50}}
    first = None
    sent = time.perf_counter()
    with httpx.stream("POST", f"{stage.url}/v1/teams/lg/chat/completions", json=payload,
                      headers={"Authorization": f"Bearer {PRESENTER}"}, timeout=20) as r:
        for chunk in r.iter_bytes():
            if first is None and b'"content"' in chunk:
                first = time.perf_counter()
    done = time.perf_counter()
    assert r.status_code == 200 and first is not None
    m = stage.last_measured("lg", since)["metrics"]
    seen_ttft, seen_e2e = (first - sent) * 1e3, (done - sent) * 1e3
    assert m["output_tokens"] == 50 and not m["tokens_estimated"], m
    assert 200 - 2 <= m["ttft_ms"] <= seen_ttft + 2, (m, seen_ttft)
    assert 200 + 49 * 20 - 2 <= m["e2e_ms"] <= seen_e2e + 2, (m, seen_e2e)
    # The definitions (vLLM's benchmark_serving): TPOT over the tokens after the first.
    decode_ms = m["e2e_ms"] - m["ttft_ms"]
    assert m["tpot_ms"] == pytest.approx(decode_ms / 49, abs=0.01), m
    assert m["decode_tps"] == pytest.approx(49 / decode_ms * 1e3, rel=0.01), m
    assert 0 <= m["itl_ms_p50"] <= m["itl_ms_p99"] <= decode_ms, m


def test_multi_token_chunks_count_tokens_from_usage(stage: Stage) -> None:
    since = stage.seq()
    stage.stream("lg", {"mock": {"chunk_tokens": 4, "tokens": 20}})
    m = stage.last_measured("lg", since)["metrics"]
    assert m["chunks"] == 5 and m["output_tokens"] == 20 and not m["tokens_estimated"]


@pytest.mark.parametrize("team", ["lg", "skt", "upstage"])
@pytest.mark.parametrize("stream", [True, False])
def test_an_answer_cut_by_max_tokens_counts_max_tokens_in_every_dialect(
        stage: Stage, team: str, stream: bool) -> None:
    """Three tokens a chunk, and the plain dialect sends no usage: the chunks (3) would say
    otherwise, but an answer that stopped on length generated exactly its cap."""
    since = stage.seq()
    body = {"messages": [{"role": "user", "content": "Say something."}], "stream": stream,
            "max_tokens": 7, "mock": {"tokens": 20, "chunk_tokens": 3}}
    r = httpx.post(f"{stage.url}/v1/teams/{team}/chat/completions", json=body,
                   headers={"Authorization": f"Bearer {PRESENTER}"}, timeout=20)
    assert r.status_code == 200
    m = stage.last_measured(team, since)["metrics"]
    assert m["finish_reason"] == "length" and m["output_tokens"] == 7, m
    assert m["tokens_method"] == ("max_tokens" if team == "upstage" else "usage"), m
    assert m["tokens_estimated"] is False


@pytest.mark.parametrize("stream", [True, False])
def test_without_usage_the_teams_tokenizer_counts_the_answer_and_the_prompt(
        stage: Stage, stream: bool) -> None:
    since = stage.seq()
    body = {"messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "Say something nice."}],
            "stream": stream, "mock": {"tokens": 12, "chunk_tokens": 5, "usage": False}}
    r = httpx.post(f"{stage.url}/v1/teams/lg/chat/completions", json=body,
                   headers={"Authorization": f"Bearer {PRESENTER}"}, timeout=20)
    assert r.status_code == 200 and b"usage" not in r.content
    m = stage.last_measured("lg", since)["metrics"]
    # The mock's tokenizer makes a token of each word, as its answers are generated.
    assert (m["output_tokens"], m["tokens_method"], m["tokens_estimated"]) == (
        12, "tokenize", False), m
    assert (m["prompt_tokens"], m["prompt_tokens_method"]) == (5, "tokenize"), m
    assert m["chunks"] == (3 if stream else 1)


def test_the_wait_for_a_connection_is_queue_ms_not_the_teams_ttft(stage: Stage) -> None:
    """Six streams at once to a team with four connections: two wait for a connection.
    Their wait is the proxy's (queue_ms); the team's TTFT runs from the moment the request
    is written, so it never holds the wait (issue 21: 8 of 24 streams showed 7x the team's
    real TTFT on air). Bounds that hold on a busy machine: the mock never sends before its
    TTFT, and this test's client sees each answer after the proxy does."""
    since = stage.seq()
    seen: dict[int, float] = {}
    together = threading.Barrier(6)

    def ask(cap: int) -> None:
        body = {"messages": [{"role": "user", "content": "Say something."}], "stream": True,
                "max_tokens": cap, "mock": {"ttft_ms": 300, "itl_ms": 5, "tokens": 20}}
        with httpx.Client(headers={"Authorization": f"Bearer {PRESENTER}"}, timeout=20) as c:
            together.wait()  # the clients are made: the six requests leave together
            sent = time.perf_counter()
            with c.stream("POST", f"{stage.url}/v1/teams/lg/chat/completions", json=body) as r:
                for chunk in r.iter_bytes():
                    if cap not in seen and b'"content":"' in chunk.replace(b": ", b":"):
                        seen[cap] = (time.perf_counter() - sent) * 1e3

    threads = [threading.Thread(target=ask, args=(cap,)) for cap in range(2, 8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(seen) == 6
    deadline = time.monotonic() + 5
    while len(measured := stage.measured("lg", since)) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(m["status"] == "ok" for m in measured), measured
    by_cap = {m["metrics"]["output_tokens"]: m["metrics"] for m in measured}
    assert sorted(by_cap) == list(range(2, 8)), by_cap
    for cap, m in by_cap.items():
        assert m["ttft_ms"] >= 300 - 2, m
        assert m["queue_ms"] + m["ttft_ms"] <= seen[cap] + 2, (m, seen[cap])
    waits = sorted(m["queue_ms"] for m in by_cap.values())
    # Two waited for one of the first four answers to end (400 ms and more after it was
    # sent: 300 ms to the first token, 20 more 5 ms apart); the bound leaves 200 ms for the
    # six requests to leave less than together on a busy machine (one run saw 104 ms). The
    # waiters' first token (~700 ms) stays inside the stage's 1 s first-token deadline.
    assert waits[-2] >= 200, waits
    with stage.server.client(None) as c:
        public = c.get("/api/state").json()["state"]["telemetry"]["lg"]
    # On air: the team's figures only. Queued at the proxy, these would be 500 ms or more.
    assert public["ttft_ms_p95"] < min(seen.values()) + max(waits), (public, seen, waits)


def test_a_non_streamed_answer_has_no_ttft_and_leaves_the_ttft_figures_alone(
        stage: Stage) -> None:
    """lm-evaluation-harness sends whole requests: they count for end to end and tokens
    only (issue 21: their whole time went into the team's TTFT)."""
    before = stage.server.state(None)["state"]["telemetry"]["upstage"]
    since = stage.seq()
    client = openai.OpenAI(base_url=f"{stage.url}/v1/teams/upstage", api_key=PRESENTER)
    started = time.perf_counter()
    answer = client.chat.completions.create(
        model="solar", messages=[{"role": "user", "content": "Whole, please."}],
        max_tokens=10, extra_body={"mock": {"ttft_ms": 100, "itl_ms": 40, "tokens": 30}})
    took = (time.perf_counter() - started) * 1e3
    assert answer.choices[0].finish_reason == "length"
    m = stage.last_measured("upstage", since)["metrics"]
    assert m["ttft_ms"] is None and m["tpot_ms"] is None and m["decode_tps"] is None, m
    assert m["itl_ms_p50"] is None and m["streamed"] is False
    assert 100 + 9 * 40 - 2 <= m["e2e_ms"] <= took + 2, (m, took)
    assert m["output_tokens"] == 10 and m["tokens_method"] == "max_tokens"
    after = stage.server.state(None)["state"]["telemetry"]["upstage"]
    assert after["requests"] == before["requests"] + 1
    assert (after["ttft_ms_p50"], after["ttft_ms_p95"]) == (
        before["ttft_ms_p50"], before["ttft_ms_p95"])


@pytest.mark.parametrize("mock, status, result, error", [
    ({"fault": "http_error", "status": 500}, 502, "error", "answered 500"),
    ({"fault": "http_error", "status": 503}, 502, "error", "answered 503"),
    ({"fault": "http_error", "status": 400}, 400, "rejected", "answered 400"),
    ({"fault": "error_in_stream"}, 200, "error", "reported an error in its stream"),
    ({"fault": "reset", "fault_after": 3}, 200, "error", "mid-answer"),
    ({"fault": "no_done"}, 200, "error", "without [DONE]"),
    ({"fault": "malformed"}, 200, "error", "unreadable chunk"),
    ({"fault": "stall", "fault_after": 3}, 200, "timeout", "stalled"),
    ({"ttft_ms": 3000}, 200, "timeout", "no first token within 1 s"),
    ({"fault": "huge", "itl_ms": 0}, 200, "error", "longer than 400 chunks"),
])
def test_faults_become_a_status_and_an_error_never_a_crash(
        stage: Stage, mock: dict[str, Any], status: int, result: str, error: str) -> None:
    since = stage.seq()
    started = time.monotonic()
    got, events, raw = stage.stream("lg", {"mock": mock})
    took = time.monotonic() - started
    assert got == status, raw[:300]
    measured = stage.last_measured("lg", since)
    assert measured["status"] == result
    assert error in measured["error"], measured["error"]
    if status == 200:
        # The client is told in the stream, as the OpenAI clients expect it.
        assert any("error" in e for e in events), raw[-300:]
    assert took < 3, f"{mock} took {took:.1f} s"
    # And the server carries on serving.
    assert stage.stream("lg", {})[0] == 200


def test_a_whole_answer_that_never_comes_times_out_saying_how_long_it_waited(
        stage: Stage) -> None:
    since = stage.seq()
    r = httpx.post(f"{stage.url}/v1/teams/lg/chat/completions",
                   json={"messages": [{"role": "user", "content": "hi"}], "stream": False,
                         "mock": {"ttft_ms": 3000}},
                   headers={"Authorization": f"Bearer {PRESENTER}"}, timeout=10)
    # The show file sets first_token_timeout = 1 and idle_timeout = 0.5: the wait for a
    # whole answer's headers is the longer of the two.
    assert r.status_code == 504 and "no answer within 1 s" in r.json()["error"], r.text
    assert stage.last_measured("lg", since)["status"] == "timeout"


def test_split_sse_with_crlf_and_comments_is_read_whole(stage: Stage) -> None:
    since = stage.seq()
    status, events, raw = stage.stream("lg", {"mock": {"fault": "split"}})
    assert status == 200 and b"\r\n" in raw
    measured = stage.last_measured("lg", since)
    assert measured["status"] == "ok", measured
    assert measured["metrics"]["output_tokens"] == 20
    normal = stage.stream("lg", {})[1]
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events
                   if e.get("choices"))
    assert text == "".join(e["choices"][0]["delta"].get("content") or "" for e in normal
                           if e.get("choices"))


def test_a_client_that_goes_away_frees_the_upstream_connection(stage: Stage) -> None:
    lg = stage.mocks["lg"]
    before = lg.stats()["disconnected"]
    since = stage.seq()
    # More than the team's 4 connections: a leaked one would exhaust the pool.
    for _ in range(6):
        with httpx.stream("POST", f"{stage.url}/v1/teams/lg/chat/completions",
                          json={"messages": [{"role": "user", "content": "go on forever"}],
                                "stream": True, "mock": {"fault": "huge", "itl_ms": 5}},
                          headers={"Authorization": f"Bearer {PRESENTER}"}, timeout=10) as r:
            for n, _chunk in enumerate(r.iter_raw()):
                if n >= 3:
                    break
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        stats = lg.stats()
        if stats["disconnected"] - before >= 6 and stats["active_streams"] == 0:
            break
        time.sleep(0.05)
    assert stats["disconnected"] - before >= 6 and stats["active_streams"] == 0, stats
    cancelled = [m for m in stage.measured("lg", since) if m["status"] == "cancelled"]
    assert len(cancelled) == 6 and "went away" in cancelled[0]["error"]
    status, _, _ = stage.stream("lg", {})
    assert status == 200
    metrics = httpx.get(f"{stage.url}/metrics").text
    assert 'showcase_team_requests_in_flight{team="lg"} 0' in metrics


def test_connections_to_a_team_are_kept_and_reused(stage: Stage) -> None:
    # A new connection per answer would cost every TTFT a handshake (TLS included).
    skt = stage.mocks["skt"]
    stage.stream("skt", {})
    checks = health_rounds(stage)
    before = skt.stats()["connections"]
    for _ in range(5):
        assert stage.stream("skt", {})[0] == 200
    after = skt.stats()["connections"]
    # New connections: the stats request's own, and one per health check (made anew on
    # purpose; one more if a round was under way); none for the five answers.
    assert after - before <= 2 + health_rounds(stage) - checks


def health_rounds(stage: Stage) -> int:
    metrics = httpx.get(f"{stage.url}/metrics").text
    return int(re.search(r"showcase_health_rounds_total (\d+)", metrics).group(1))  # type: ignore[union-attr]


def test_a_down_team_answers_quickly_with_a_clear_error(stage: Stage) -> None:
    started = time.monotonic()
    status, _, raw = stage.stream("naver", {})
    assert status == 502 and b"naver" in raw and b"refused" in raw
    assert time.monotonic() - started < 1.5


# -- health and telemetry --------------------------------------------------------------


def wait_state(stage: Stage, predicate: Any, timeout: float = 5) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = stage.server.state(None)
        if predicate(state) or time.monotonic() > deadline:
            return state


def test_health_shows_a_team_down_then_up(stage: Stage) -> None:
    state = wait_state(stage, lambda s: s["state"]["telemetry"]["naver"]["health"])
    naver = state["state"]["telemetry"]["naver"]["health"]
    assert naver["up"] is False and "error" not in naver  # the reason is for operators
    assert state["state"]["telemetry"]["lg"]["health"]["up"] is True
    assert state["live"]["health"]["lg"]["latency_ms"] > 0
    operator = stage.server.state(OPERATOR)["state"]["telemetry"]["naver"]["health"]
    assert "refused" in operator["error"]

    late = Mock("--dialect", "plain", port=stage.down_port)
    try:
        up = wait_state(stage, lambda s: s["state"]["telemetry"]["naver"]["health"]["up"])
        assert up["state"]["telemetry"]["naver"]["health"]["up"] is True
    finally:
        late.stop()
    down = wait_state(stage, lambda s: not s["state"]["telemetry"]["naver"]["health"]["up"])
    assert down["state"]["telemetry"]["naver"]["health"]["up"] is False


def test_rolling_latency_figures_are_in_the_state(stage: Stage) -> None:
    for _ in range(3):
        stage.stream("skt", {})
    telemetry = stage.server.state(None)["state"]["telemetry"]["skt"]
    assert telemetry["requests"] >= 3
    assert 30 <= telemetry["ttft_ms_p50"] <= telemetry["ttft_ms_p95"] < 500
    assert telemetry["decode_tps_p50"] > 0
    assert telemetry["error_rate"] is not None


# -- live demos ------------------------------------------------------------------------


def demo(stage: Stage, body: dict[str, Any], token: str = PRESENTER) -> httpx.Response:
    return httpx.post(f"{stage.url}/api/demo", json=body,
                      headers={"Authorization": f"Bearer {token}"}, timeout=10)


def no_demo_running(stage: Stage, timeout: float = 10) -> None:
    """Waits for an earlier test's demo to end: only one demo runs at a time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        latest = httpx.get(f"{stage.url}/api/demo", timeout=5).json()["demo"]
        if latest is None or latest["phase"] != "running":
            return
        time.sleep(0.05)
    raise AssertionError("a demo is still running")


def results_of(messages: list[dict[str, Any]], demo_id: int) -> dict[str, dict[str, Any]]:
    return {m["data"]["team"]: m["data"] for m in messages
            if m.get("type") == "demo_result" and m["data"]["demo"] == demo_id}


def test_a_demo_streams_every_team_side_by_side(stage: Stage) -> None:
    wait_state(stage, lambda s: s["state"]["telemetry"]["naver"]["health"] is not None)
    viewer = Viewer(stage.url)
    try:
        started = demo(stage, {"prompt": "한국어로 자기소개를 해 주세요.",
                               "teams": ["lg", "skt", "upstage", "slow", "naver"],
                               "max_tokens": 64})
        assert started.status_code == 201, started.text
        demo_id = started.json()["seq"]
        teams = ["lg", "skt", "upstage", "slow", "naver"]
        messages = viewer.wait_for(lambda ms: len(results_of(ms, demo_id)) == 5, timeout=15)
    finally:
        viewer.close()
    results = results_of(messages, demo_id)
    assert {t: results[t]["status"] for t in teams} == {
        "lg": "ok", "skt": "ok", "upstage": "ok", "slow": "ok", "naver": "skipped"}
    # The text the viewer saw in ticks is the text that was recorded.
    live: dict[str, str] = {}
    for m in messages:
        if m["type"] == "tick" and m["data"].get("demo", {}).get("id") == demo_id:
            for team_id, entry in m["data"]["demo"]["teams"].items():
                if entry["text"]:
                    assert entry["at"] == len(live.get(team_id, ""))
                    live[team_id] = live.get(team_id, "") + entry["text"]
    for team_id in ("lg", "skt", "upstage"):
        assert live[team_id] == results[team_id]["text"] and results[team_id]["text"]
        assert results[team_id]["metrics"]["ttft_ms"] > 0
    assert any("\uac00" <= ch <= "\ud7a3" for ch in results["lg"]["text"])  # Korean answer
    # The slow team did not hold up the others.
    seqs = {m["data"]["team"]: m["seq"] for m in messages if m.get("type") == "demo_result"
            and m["data"]["demo"] == demo_id}
    ts = {m["data"]["team"]: m["ts"] for m in messages if m.get("type") == "demo_result"
          and m["data"]["demo"] == demo_id}
    assert seqs["lg"] < seqs["slow"] and ts["slow"] - ts["lg"] > 0.5
    state = stage.server.state(None)["state"]
    assert state["demo"]["id"] == demo_id and state["demo"]["phase"] == "finished"


def test_a_demo_can_be_cancelled_and_refuses_bad_input(stage: Stage) -> None:
    seq = stage.seq()
    for body, status, words in [
        ({}, 400, "'prompt' is missing"),
        ({"prompt": "  "}, 400, "'prompt' is empty"),
        ({"prompt": "x" * 9000}, 400, "too long"),
        ({"prompt": "hi", "teams": []}, 400, "'teams' is empty"),
        ({"prompt": "hi", "teams": ["lg", "lg"]}, 400, "listed twice"),
        ({"prompt": "hi", "teams": ["nobody"]}, 404, "unknown team 'nobody'"),
        ({"prompt": "hi", "max_tokens": 0}, 400, "'max_tokens'"),
        ({"prompt": "hi", "temperature": 3}, 400, "'temperature'"),
        ({"prompt": "hi", "colour": "red"}, 400, "unknown field 'colour'"),
    ]:
        r = demo(stage, body)
        assert r.status_code == status and words in r.json()["error"], (body, r.text)
    assert demo(stage, {"prompt": "hi"}, token=JUDGE).status_code == 403
    assert stage.seq() == seq or all(
        e["type"] in ("team_health", "request_measured")
        for e in httpx.get(f"{stage.url}/api/log", params={"since": seq},
                           headers={"Authorization": f"Bearer {OPERATOR}"}).json()["events"])

    nothing = httpx.post(f"{stage.url}/api/demo/cancel", json={},
                         headers={"Authorization": f"Bearer {OPERATOR}"})
    assert nothing.status_code == 409 and "no demo is running" in nothing.json()["error"]

    started = demo(stage, {"prompt": "a long answer", "teams": ["slow", "lg"]})
    demo_id = started.json()["seq"]
    again = demo(stage, {"prompt": "another"})
    assert again.status_code == 409 and f"demo {demo_id} is still running" in again.json()["error"]
    time.sleep(0.3)
    cancel = httpx.post(f"{stage.url}/api/demo/cancel", json={"reason": "running long"},
                        headers={"Authorization": f"Bearer {OPERATOR}"})
    assert cancel.status_code == 201, cancel.text
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        current = httpx.get(f"{stage.url}/api/demo").json()["demo"]
        if current["phase"] == "finished":
            break
        time.sleep(0.05)
    assert current["cancelled"] is True and current["phase"] == "finished"
    assert current["results"]["slow"]["status"] == "cancelled"
    assert current["results"]["slow"]["error"] == "running long"
    assert current["results"]["lg"]["status"] == "ok"  # it had finished before the cancel


def test_a_demo_interrupted_by_a_restart_is_recorded_as_interrupted(stage: Stage) -> None:
    started = demo(stage, {"prompt": "slowly", "teams": ["slow"]})
    demo_id = started.json()["seq"]
    stage.server.kill9()
    stage.server.start()
    current = httpx.get(f"{stage.url}/api/demo").json()["demo"]
    assert current["id"] == demo_id
    assert current["results"]["slow"]["status"] == "interrupted"
    assert current["phase"] == "finished"
    assert demo(stage, {"prompt": "after the restart", "teams": ["lg"]}).status_code == 201


def test_a_saturated_team_cannot_starve_the_others(stage: Stage) -> None:
    streaming = [threading.Event() for _ in range(4)]  # lg's max_connections

    def hog(flowing: threading.Event) -> None:
        with httpx.stream("POST", f"{stage.url}/v1/teams/lg/chat/completions",
                          json={"messages": [{"role": "user", "content": "forever"}],
                                "stream": True, "mock": {"fault": "huge", "itl_ms": 5}},
                          headers={"Authorization": f"Bearer {PRESENTER}"}, timeout=10) as r:
            for _ in r.iter_raw():
                flowing.set()

    hogs = [threading.Thread(target=hog, args=(flowing,)) for flowing in streaming]
    for t in hogs:
        t.start()
    try:
        # Every connection to lg is taken once each hog's answer flows (not after a fixed
        # pause: a busy machine may take longer to open four streams).
        assert all(flowing.wait(10) for flowing in streaming)
        started = time.monotonic()
        assert stage.stream("skt", {})[0] == 200
        # skt's own pool answers (~30 ms + 20 x 5 ms); sharing lg's would mean a 504 after
        # the pool's timeout. The bound leaves room for a busy machine.
        assert time.monotonic() - started < 3
        busy, _, raw = stage.stream("lg", {})
        assert busy == 504 and b"every connection to the team is busy" in raw
    finally:
        for t in hogs:
            t.join(10)


def test_demos_and_the_proxy_give_away_no_sealed_fact_and_no_actor(stage: Stage) -> None:
    op = {"Authorization": f"Bearer {OPERATOR}", "X-Showcase-User": "desk-3"}
    withdrawn = httpx.post(f"{stage.url}/api/teams/slow/withdraw", headers=op,
                           json={"reason": "sealed until announced"})
    assert withdrawn.status_code == 201
    try:
        viewer = Viewer(stage.url)
        try:
            no_demo_running(stage)
            started = demo(stage, {"prompt": "Who is still here?", "max_tokens": 5})
            assert started.status_code == 201, started.text
            demo_id = started.json()["seq"]
            stage.stream("lg", {})
            seq = stage.seq()
            messages = viewer.wait_for(lambda ms: any(m.get("seq") == seq for m in ms))
        finally:
            viewer.close()
        public = [m for m in messages if m.get("type") == "demo_started"
                  and m["data"]["demo"] == demo_id]
        # The public list of teams is the announced one: the sealed withdrawal stays sealed.
        assert "slow" in public[0]["data"]["teams"]
        measured = [m for m in messages if m.get("type") == "request_measured"]
        assert measured and all("actor" not in m["data"] for m in measured)
        assert "desk-3" not in orjson.dumps(messages).decode()
        wait_state(stage, lambda s: s["state"]["demo"]["phase"] == "finished")
        state = stage.server.state(None)["state"]
        assert "actor" not in state["demo"]
        assert httpx.get(f"{stage.url}/api/demo",
                         headers={"Authorization": "Bearer nope"}).status_code == 401
    finally:
        httpx.post(f"{stage.url}/api/teams/slow/reinstate", headers=op,
                   json={"reason": "back"}).raise_for_status()


def test_rolling_figures_reach_every_screen_in_a_tick(stage: Stage) -> None:
    viewer = Viewer(stage.url)
    try:
        stage.stream("upstage", {})
        messages = viewer.wait_for(lambda ms: any(
            m["type"] == "tick" and "upstage" in m["data"].get("telemetry", {}) for m in ms))
    finally:
        viewer.close()
    tick = next(m for m in messages if m["type"] == "tick"
                and "upstage" in m["data"].get("telemetry", {}))
    figures = tick["data"]["telemetry"]["upstage"]
    assert figures == stage.server.state(None)["state"]["telemetry"]["upstage"]
    assert figures["ttft_ms_p50"] > 0
