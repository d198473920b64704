"""Commands with a deadline and a safe retry: an Idempotency-Key makes a retry return the
first answer and record nothing more; a log that stops answering makes a command answer
503 within the deadline, saying it may have been recorded, and /healthz not writable; the
retry with the same key once the log is back is recorded exactly once (a real
redis-server of the test's own, paused with SIGSTOP). Demos and benchmark runs too: a
retried start starts one demo or one run (mock teams over real HTTP count the requests)."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from showcase.core.showfile import sample_show_path
from tests.conftest import OPERATOR, Server
from tests.redis_server import RedisServer, own_redis  # noqa: F401 - a fixture
from tests.test_bench import write_suites
from tests.test_proxy import Mock, team

SCORE = {"criterion": "benchmark", "team": "lg", "value": 71.5}


def send(srv: Server, body: dict[str, Any], key: str | None, path: str = "/api/scores"
         ) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    with srv.client(OPERATOR) as client:
        return client.post(path, json=body, headers=headers)


def logged(srv: Server) -> list[dict[str, Any]]:
    with srv.client(OPERATOR) as client:
        return client.get("/api/log", params={"limit": 5000}).json()["events"]  # type: ignore[no-any-return]


def test_a_retry_with_the_same_key_gets_the_first_answer_and_records_nothing(
        server: Server) -> None:
    key = uuid.uuid4().hex
    first = send(server, SCORE, key)
    assert first.status_code == 201
    # The command front answers the table's paths; an escaped path goes through the app:
    # both find the key.
    for path in ("/api/scores", "/api/%73cores"):
        again = send(server, SCORE, key, path)
        assert (again.status_code, again.json()) == (201, first.json())
    assert server.state()["seq"] == first.json()["seq"]
    (event,) = [e for e in logged(server) if e.get("key") == key]
    assert (event["seq"], event["actor"]) == (first.json()["seq"], "operator")

    # A new key is a new command: the same value again is a correction, which needs a reason.
    refused = send(server, SCORE, uuid.uuid4().hex)
    assert refused.status_code == 400 and "needs a reason" in refused.json()["error"]
    # Another caller's key is theirs: the same key from another desk is another command.
    with server.client(OPERATOR) as desk2:
        other = desk2.post("/api/scores", json={**SCORE, "team": "skt"},
                           headers={"Idempotency-Key": key, "X-Showcase-User": "desk-2"})
    assert other.status_code == 201 and other.json()["seq"] == first.json()["seq"] + 1


def test_a_key_used_for_another_command_or_malformed_is_refused(server: Server) -> None:
    key = "desk-1:0001"
    assert send(server, SCORE, key).status_code == 201
    seq = server.state()["seq"]
    reused = send(server, {"reason": "asked to"}, key, "/api/teams/ncai/withdraw")
    assert reused.status_code == 400
    assert reused.json()["error"] == (f"Idempotency-Key {key!r} was used for another command "
                                      f"(seq {seq}, score_entered)")
    malformed = send(server, {**SCORE, "team": "skt"}, "no spaces allowed")
    assert malformed.status_code == 400
    assert malformed.json()["error"].startswith("Idempotency-Key must be 1 to 64 letters")
    assert server.state()["seq"] == seq  # the log is untouched


class RedisNode(Server):
    """``showcase serve --redis URL``, with a command deadline of one second."""

    def __init__(self, folder: Path, redis_url: str) -> None:
        show = folder / "show.toml"
        show.write_text(sample_show_path().read_text(encoding="utf-8").replace(
            "[show]\n", "[show]\ncommand_deadline = 1\n", 1)
            + "\n[proxy]\nhealth_interval = 0\n", encoding="utf-8")
        super().__init__(show, folder / "data", ["--redis", redis_url])


def writable(srv: Server) -> bool:
    return bool(httpx.get(f"{srv.url}/healthz", timeout=10).json()["writable"])


def test_a_stalled_redis_answers_503_in_time_and_the_keyed_retry_is_recorded_once(
        tmp_path: Path, own_redis: RedisServer) -> None:  # noqa: F811 - the fixture
    node = RedisNode(tmp_path, own_redis.url).start()
    assert own_redis.proc is not None
    try:
        assert writable(node)
        start = node.state()["seq"]
        key = uuid.uuid4().hex
        own_redis.proc.send_signal(signal.SIGSTOP)
        try:
            began = time.monotonic()
            stalled = send(node, SCORE, key)
            took = time.monotonic() - began
            assert stalled.status_code == 503, stalled.text
            assert stalled.json()["recorded"] == "unknown"
            assert "may have been recorded" in stalled.json()["error"]
            # Within the deadline (1 s), give or take a busy machine: not the 5-15 s of a
            # connection timing out.
            assert took < 4, took
            assert not writable(node)  # the log stopped acknowledging
        finally:
            own_redis.proc.send_signal(signal.SIGCONT)
        # The desk sends it again with the same key until it gets an answer.
        answers = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            answer = send(node, SCORE, key)
            answers.append(answer.status_code)
            if answer.status_code == 201:
                break
            assert answer.status_code == 503, answer.text
            time.sleep(0.2)
        assert answers[-1] == 201, answers
        seq = answer.json()["seq"]
        assert send(node, SCORE, key).json()["seq"] == seq  # and again: the same answer
        scores = [e for e in logged(node) if e["type"] == "score_entered"]
        assert [(e["seq"], e.get("key")) for e in scores] == [(start + 1, key)]
        assert seq == start + 1
        assert writable(node)
    finally:
        node.stop()


def test_a_log_written_before_keys_opens_and_keeps_keys_from_then_on(tmp_path: Path) -> None:
    import sqlite3

    from showcase.core.events import Event
    from showcase.log.sqlite import SQLiteLog

    old = sqlite3.connect(tmp_path / "events.sqlite3")
    old.executescript("CREATE TABLE events (seq INTEGER PRIMARY KEY, ts REAL NOT NULL, "
                      "type TEXT NOT NULL, actor TEXT NOT NULL, data BLOB NOT NULL);"
                      "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                      "INSERT INTO meta VALUES ('format', '1');"
                      "INSERT INTO events VALUES (1, 1.0, 'team_health', 'server', x'7b7d');")
    old.commit()
    old.close()
    log = SQLiteLog(tmp_path).open()
    try:
        log.append_now([Event(2, 2.0, "team_health", "server", {}, "k-2")])
        assert [(e.seq, e.key) for e in log.read()] == [(1, ""), (2, "k-2")]
    finally:
        log.close()


# -- demos and benchmark runs: what they start, started once --------------------------------

def demo_show(folder: Path, mock: Mock, extra: str = "") -> Path:
    show = folder / "show.toml"
    show.write_text('[show]\ntitle_en = "Keys"\ncommand_deadline = 1\n'
                    + team("m", f"{mock.url}/v1") + extra
                    + "[proxy]\nhealth_interval = 0\n", encoding="utf-8")
    return show


def of_type(srv: Server, *types: str) -> list[dict[str, Any]]:
    return [e for e in logged(srv) if e["type"] in types]


def settles(check: Any, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_retried_demo_start_starts_one_demo_and_answers_the_same(tmp_path: Path) -> None:
    mock = Mock("--ttft-ms", "1500", "--itl-ms", "5")  # each answer takes over a second
    srv = Server(demo_show(tmp_path, mock), tmp_path / "data").start()
    try:
        demo = {"prompt": "안녕하세요? Say hello.", "max_tokens": 8}
        key = uuid.uuid4().hex
        first = send(srv, demo, key, "/api/demo")
        assert first.status_code == 201, first.text
        again = send(srv, demo, key, "/api/demo")
        assert (again.status_code, again.json()) == (201, first.json())
        # Another key is another demo, refused while this one runs, as without keys.
        other = send(srv, demo, uuid.uuid4().hex, "/api/demo")
        assert other.status_code == 409 and "is still running" in other.json()["error"]
        # Cancelled once, however often the press is sent.
        stop_key = uuid.uuid4().hex
        cancelled = send(srv, {"reason": "over time"}, stop_key, "/api/demo/cancel")
        assert cancelled.status_code == 201, cancelled.text
        assert send(srv, {"reason": "over time"}, stop_key, "/api/demo/cancel").json() == \
            cancelled.json()
        # The key of the start sent with the cancel is another command's: refused.
        misused = send(srv, {}, key, "/api/demo/cancel")
        assert misused.status_code == 400 and "was used for another command" in \
            misused.json()["error"]
        settles(lambda: len(of_type(srv, "demo_result")) == 1)
        assert mock.stats()["requests"] == 1  # the team was asked once
        assert [e["seq"] for e in of_type(srv, "demo_started")] == [first.json()["seq"]]
        assert len(of_type(srv, "demo_cancelled")) == 1
        # Once it is over, a new key starts the next demo.
        assert send(srv, demo, uuid.uuid4().hex, "/api/demo").json()["seq"] > \
            cancelled.json()["seq"]
    finally:
        srv.stop()
        mock.stop()


def test_a_retried_benchmark_run_starts_one_run_and_answers_the_same(tmp_path: Path) -> None:
    write_suites(tmp_path / "suites")
    mock = Mock("--ttft-ms", "150", "--itl-ms", "5", "--answers", str(tmp_path / "suites"))
    srv = Server(demo_show(tmp_path, mock, '[bench]\nsuites = ["suites"]\nconcurrency = 1\n'),
                 tmp_path / "data").start()
    try:
        run = {"round": None}
        key = uuid.uuid4().hex
        first = send(srv, run, key, "/api/bench")
        assert first.status_code == 201, first.text
        assert send(srv, run, key, "/api/bench").json() == first.json()
        other = send(srv, run, uuid.uuid4().hex, "/api/bench")
        assert other.status_code == 409
        assert f"benchmark run {first.json()['seq']} is running" in other.json()["error"]
        for action in ("pause", "resume", "cancel"):
            press = uuid.uuid4().hex
            answer = send(srv, {}, press, f"/api/bench/{action}")
            assert answer.status_code == 201, answer.text
            assert send(srv, {}, press, f"/api/bench/{action}").json() == answer.json()
        kinds = [e["type"] for e in of_type(srv, "bench_started", "bench_paused",
                                            "bench_resumed", "bench_cancelled")]
        assert kinds == ["bench_started", "bench_paused", "bench_resumed", "bench_cancelled"]
        # One run's workers: one item in flight at a time, so at most one more asked than
        # recorded, however many times the start was sent.
        time.sleep(0.5)
        items = len(of_type(srv, "bench_item"))
        assert mock.stats()["requests"] <= items + 1
    finally:
        srv.stop()
        mock.stop()


def test_a_demo_recorded_after_its_503_runs_once_and_the_retry_gets_its_seq(
        tmp_path: Path, own_redis: RedisServer) -> None:  # noqa: F811 - the fixture
    mock = Mock("--ttft-ms", "50", "--itl-ms", "5")
    srv = Server(demo_show(tmp_path, mock), tmp_path / "data",
                 ["--redis", own_redis.url]).start()
    assert own_redis.proc is not None
    try:
        demo = {"prompt": "Say hello.", "max_tokens": 8}
        key = uuid.uuid4().hex
        own_redis.proc.send_signal(signal.SIGSTOP)
        try:
            stalled = send(srv, demo, key, "/api/demo")
            assert stalled.status_code == 503, stalled.text
            assert stalled.json()["recorded"] == "unknown"
        finally:
            own_redis.proc.send_signal(signal.SIGCONT)
        answers = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            answer = send(srv, demo, key, "/api/demo")
            answers.append(answer.status_code)
            if answer.status_code != 503:
                break
            time.sleep(0.2)
        assert answers[-1] == 201, (answers, answer.text)
        (started,) = of_type(srv, "demo_started")
        assert started["seq"] == answer.json()["seq"] and started["key"] == key
        # The demo the log recorded after the 503 was run, once: its answer is recorded.
        settles(lambda: len(of_type(srv, "demo_result")) == 1)
        (result,) = of_type(srv, "demo_result")
        assert result["data"]["status"] == "ok", result
        assert mock.stats()["requests"] == 1
    finally:
        srv.stop()
        mock.stop()


def test_an_idle_node_reports_not_writable_soon_after_redis_stops_answering(
        tmp_path: Path, own_redis: RedisServer) -> None:  # noqa: F811 - the fixture
    node = RedisNode(tmp_path, own_redis.url).start()  # command_deadline = 1
    assert own_redis.proc is not None
    try:
        assert writable(node)
        time.sleep(0.5)  # idle: nothing of this node's own in flight
        own_redis.proc.send_signal(signal.SIGSTOP)
        try:
            began = time.monotonic()
            while writable(node):
                # about half the deadline (0.5 s) after a probe goes unanswered; the tail
                # alone took about 7 s
                assert time.monotonic() - began < 3, "still writable 3 s after Redis stopped"
                time.sleep(0.05)
            assert httpx.get(f"{node.url}/healthz", timeout=10).status_code == 200  # serving
        finally:
            own_redis.proc.send_signal(signal.SIGCONT)
        began = time.monotonic()
        while not writable(node):
            assert time.monotonic() - began < 5, "not writable 5 s after Redis came back"
            time.sleep(0.05)
        assert send(node, SCORE, uuid.uuid4().hex).status_code == 201
    finally:
        node.stop()


def test_a_retried_apply_enters_a_runs_results_once(tmp_path: Path) -> None:
    from showcase.bench.suites import sample_suites_dir

    mock = Mock("--ttft-ms", "5", "--itl-ms", "1", "--answers", str(sample_suites_dir()))
    show = tmp_path / "show.toml"
    show.write_text(sample_show_path().read_text(encoding="utf-8").replace(
        "http://127.0.0.1:9101/v1", f"{mock.url}/v1") + "\n[proxy]\nhealth_interval = 0\n",
        encoding="utf-8")
    srv = Server(show, tmp_path / "data").start()
    try:
        started = send(srv, {"teams": ["lg"], "round": "r1"}, uuid.uuid4().hex, "/api/bench")
        assert started.status_code == 201, started.text
        run = started.json()["seq"]
        settles(lambda: len(of_type(srv, "bench_finished")) == 1, 60)
        key = uuid.uuid4().hex
        first = send(srv, {"count_errors_as_wrong": True}, key, f"/api/bench/{run}/apply")
        assert first.status_code == 201, first.text
        again = send(srv, {"count_errors_as_wrong": True}, key, f"/api/bench/{run}/apply")
        assert (again.status_code, again.json()) == (201, first.json())
        scores = of_type(srv, "score_entered")
        assert [(e["seq"], e["key"]) for e in scores] == [(first.json()["seq"], f"{key}/lg")]
    finally:
        srv.stop()
        mock.stop()
