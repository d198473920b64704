"""The HTTP API over a real uvicorn server with a real SQLite log."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import httpx
import pytest

from tests.conftest import JUDGE, OPERATOR, PRESENTER, Server, score_sample_round
from tests.streams import Viewer, read_sse


def seq_of(srv: Server) -> int:
    return int(srv.state()["seq"])


def test_each_role_gets_its_own_view(server: Server) -> None:
    score_sample_round(server)
    public = server.state(None)
    assert public["view"] == "public"
    assert public["state"]["rounds"][0]["standings"] is None  # nothing announced yet
    assert "endpoint" not in public["state"]["teams"][0]
    operator = server.state(OPERATOR)
    assert operator["view"] == "operator"
    rows = operator["state"]["rounds"][0]["standings"]["rows"]
    assert [r["team"] for r in rows] == ["lg", "skt", "upstage", "naver", "ncai"]
    assert rows[0]["total"] == 80.65
    assert operator["state"]["teams"][0]["endpoint"] == "http://127.0.0.1:9101/v1"
    judge = server.state(JUDGE)
    assert judge["view"] == "judge"
    assert [j["id"] for j in judge["state"]["judges"]][:2] == ["kim", "lee"]
    assert judge["state"]["rounds"][0]["standings"] is None
    assert server.state(PRESENTER)["view"] == "presenter"


BAD_INPUTS: list[tuple[str, Any, str | None, int, str]] = [
    ("/api/scores", {"criterion": "benchmark", "team": "kakao", "value": 50}, OPERATOR, 404,
     "unknown team 'kakao'"),
    ("/api/scores", {"criterion": "speed", "team": "lg", "value": 50}, OPERATOR, 404,
     "unknown criterion 'speed'"),
    ("/api/scores", {"criterion": "benchmark", "team": "lg", "value": 101}, OPERATOR, 400,
     "out of range"),
    ("/api/scores", {"criterion": "benchmark", "team": "lg", "value": "50"}, OPERATOR, 400,
     "field 'value' must be a number or null, not a string"),
    ("/api/scores", {"criterion": "benchmark", "team": "lg", "value": 50, "note": "x"}, OPERATOR,
     400, "unknown field 'note'"),
    ("/api/scores", {"criterion": "benchmark", "team": "lg"}, OPERATOR, 400,
     "field 'value' is missing"),
    ("/api/scores", [1, 2], OPERATOR, 400, "must be a JSON object"),
    ("/api/scores", {"criterion": "benchmark", "team": "lg", "value": 50}, None, 401,
     "needs a token"),
    ("/api/scores", {"criterion": "benchmark", "team": "lg", "value": 50}, "wrong-token-123",
     401, "not valid"),
    ("/api/scores", {"criterion": "benchmark", "team": "lg", "value": 50}, JUDGE, 403,
     "entered by an operator"),
    ("/api/scores", {"criterion": "expert", "team": "lg", "value": 50}, JUDGE, 400,
     "give 'judge'"),
    ("/api/scores", {"criterion": "expert", "team": "lg", "value": 50, "judge": "zed"}, JUDGE,
     404, "unknown judge 'zed'"),
    ("/api/scores", {"criterion": "benchmark", "team": "lg", "value": 50}, PRESENTER, 403,
     "not allowed for the presenter role"),
    ("/api/teams/lg/disqualify", {}, OPERATOR, 400, "field 'reason' is missing"),
    ("/api/teams/lg/disqualify", {"reason": " "}, OPERATOR, 400, "needs a reason"),
    ("/api/teams/nobody/withdraw", {"reason": "x"}, OPERATOR, 404, "unknown team"),
    ("/api/teams/lg/reinstate", {"reason": "x"}, OPERATOR, 409, "only a disqualified"),
    ("/api/rounds/r1/publish", {}, OPERATOR, 409, "not complete: missing"),
    ("/api/rounds/r9/publish", {}, OPERATOR, 404, "unknown round 'r9'"),
    ("/api/rounds/r2/start", {}, OPERATOR, 409, "still open"),
    ("/api/rounds/r1/jury", {"order": ["lg"], "reason": "x"}, OPERATOR, 409, "not complete"),
    ("/api/teams", {"id": "kakao", "name_ko": "카카오"}, OPERATOR, 400, "'name_en' is missing"),
    ("/api/teams", {"id": "Kakao!", "name_ko": "카카오", "name_en": "Kakao"}, OPERATOR, 400,
     "not a valid team id"),
    ("/api/teams", {"id": "lg", "name_ko": "x", "name_en": "y"}, OPERATOR, 409,
     "exists already"),
    ("/api/teams", {"id": "kt", "name_ko": "x", "name_en": "y", "colour": "blue"}, OPERATOR, 400,
     "not a colour"),
]


@pytest.mark.parametrize(("path", "body", "token", "status", "message"), BAD_INPUTS)
def test_bad_command_is_refused_by_name_and_logs_nothing(
        server: Server, path: str, body: Any, token: str | None, status: int, message: str
) -> None:
    before = seq_of(server)
    response = server.post(path, body, token)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert set(response.json()) >= {"error", "detail"}
    assert seq_of(server) == before


def test_malformed_and_oversized_bodies_are_refused(server: Server) -> None:
    before = seq_of(server)
    with server.client() as c:
        bad = c.post("/api/scores", content=b'{"criterion": "benchmark", ')
        assert bad.status_code == 400
        assert bad.json()["error"] == "the body is not valid JSON"
        huge = c.post("/api/scores", content=b'{"reason": "' + b"x" * 100_000 + b'"}')
        assert huge.status_code == 413
        assert "too large" in huge.json()["error"]
        wrong_method = c.get("/api/scores")
        assert wrong_method.status_code == 405
        assert "GET is not allowed" in wrong_method.json()["error"]
        assert c.get("/api/nothing").json()["error"] == "no such endpoint: GET /api/nothing"
    assert seq_of(server) == before


def test_concurrent_commands_all_land_in_one_order(server: Server) -> None:
    teams = ["lg", "skt", "upstage", "naver", "ncai"]
    before = seq_of(server)

    def send(i: int) -> int:
        body = {"criterion": "benchmark", "team": teams[i % 5], "value": 50 + i % 7,
                "reason": f"operator {i}"}
        response = server.post("/api/scores", body)
        assert response.status_code == 201, response.text
        return int(response.json()["seq"])

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        seqs = list(pool.map(send, range(100)))
    assert sorted(seqs) == list(range(before + 1, before + 101))
    with server.client() as c:
        log = c.get("/api/log", params={"since": before, "limit": 1000}).json()["events"]
    assert [e["seq"] for e in log] == sorted(seqs)


def test_stale_expect_seq_is_refused_with_the_current_seq(server: Server) -> None:
    seq = seq_of(server)
    first = server.post("/api/teams/naver/disqualify", {"reason": "weights", "expect_seq": seq})
    assert first.status_code == 201
    second = server.post("/api/teams/ncai/withdraw", {"reason": "pulled out", "expect_seq": seq})
    assert second.status_code == 409
    assert second.json()["seq"] == seq + 1
    assert "moved on" in second.json()["error"]
    assert server.state()["state"]["teams"][4]["status"] == "active"


def test_audit_log_shows_who_changed_what_and_why(server: Server) -> None:
    with server.client() as c:
        c.headers["X-Showcase-User"] = "desk-2"
        c.post("/api/scores", json={"criterion": "benchmark", "team": "lg", "value": 70})
        c.post("/api/scores", json={"criterion": "benchmark", "team": "lg", "value": 74,
                                    "reason": "grader fix"}).raise_for_status()
        log = c.get("/api/log", params={"type": "score_entered"}).json()["events"]
        assert c.get("/api/log", params={"type": "bogus"}).status_code == 400
    last = log[-1]
    assert last["actor"] == "operator:desk-2"
    assert last["data"]["previous"] == 70 and last["data"]["value"] == 74
    assert last["data"]["reason"] == "grader fix"
    assert last["ts"] > 1.7e9
    assert server.post("/api/scores", {}, None).status_code == 401
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/api/log").status_code == 401


def test_two_desks_correcting_one_cell_cannot_overwrite_each_other(server: Server) -> None:
    assert server.post("/api/scores", {"criterion": "benchmark", "team": "skt",
                                       "value": 60}).status_code == 201
    # Both desks read 60; desk 1 corrects it first, so desk 2's correction is refused.
    first = server.post("/api/scores", {"criterion": "benchmark", "team": "skt", "value": 61,
                                        "reason": "grader fix", "expect_previous": 60})
    assert first.status_code == 201
    second = server.post("/api/scores", {"criterion": "benchmark", "team": "skt", "value": 65,
                                         "reason": "typo", "expect_previous": 60})
    assert second.status_code == 409 and second.json()["previous"] == 61
    assert second.json()["error"] == ("'benchmark' of team 'skt' is 61 now, not 60: "
                                      "it changed after you read it")
    fresh = server.post("/api/scores", {"criterion": "benchmark", "team": "ncai", "value": 50,
                                        "expect_previous": None})
    assert fresh.status_code == 201  # None: "it was empty when I looked"
    values = server.state()["state"]["rounds"][0]["values"]["benchmark"]
    assert values["skt"] == 61 and values["ncai"] == 50


def test_the_log_reads_its_latest_events_of_a_type(server: Server) -> None:
    for value in range(40, 46):
        server.post("/api/scores", {"criterion": "benchmark", "team": "lg", "value": value,
                                    "reason": "again"}).raise_for_status()
    with server.client() as c:
        latest = c.get("/api/log", params={"last": 3, "type": "score_entered"}).json()
        assert [e["data"]["value"] for e in latest["events"]] == [43, 44, 45]
        assert c.get("/api/log", params={"last": 3, "since": 1}).status_code == 400
        assert c.get("/api/log", params={"last": 0}).status_code == 400
        everything = c.get("/api/log", params={"last": 5000}).json()["events"]
    assert everything[0]["seq"] == 1 and everything[-1]["seq"] == latest["seq"]


def test_sse_resumes_after_since_with_no_gap_and_no_duplicate(server: Server) -> None:
    start = seq_of(server)
    for i in range(5):
        server.post("/api/scores", {"criterion": "benchmark", "team": "lg", "value": 60 + i,
                                    **({"reason": "r"} if i else {})}).raise_for_status()
    resumed = read_sse(server.url, 3, params={"since": start + 2},
                       headers={"Authorization": f"Bearer {OPERATOR}"})
    assert [m["seq"] for m in resumed] == [start + 3, start + 4, start + 5]
    assert [m["_id"] for m in resumed] == [start + 3, start + 4, start + 5]
    assert resumed[0]["data"]["value"] == 62
    by_header = read_sse(server.url, 1, headers={"Last-Event-ID": str(start + 4)})
    assert by_header[0]["seq"] == start + 5
    assert by_header[0]["type"] == "sealed"  # a viewer: the score stays sealed
    unknown = read_sse(server.url, 1, params={"since": 999_999})
    assert unknown[0]["type"] == "snapshot" and unknown[0]["seq"] == start + 5
    fresh = read_sse(server.url, 1)
    assert fresh[0]["type"] == "snapshot" and fresh[0]["data"]["view"] == "public"


def test_websocket_follows_live_and_a_garbage_sender_is_closed_alone(server: Server) -> None:
    good = Viewer(server.url)
    bad = Viewer(server.url)
    try:
        snapshot = good.wait_for(lambda ms: len(ms) >= 1)[0]
        assert snapshot["type"] == "snapshot"
        bad.ws.send("x" * 10_000)
        assert bad.closed.wait(5)
        seq = server.post("/api/teams/naver/disqualify",
                          {"reason": "weights", "announce": True}).json()["seq"]
        messages = good.wait_seq(seq)
        assert messages[-1]["type"] == "team_disqualified"
        assert messages[-1]["data"] == {"team": "naver", "round": "r1", "reason": "weights"}
    finally:
        good.close()
        bad.close()


def test_stream_with_a_wrong_token_is_refused(server: Server) -> None:
    response = httpx.get(f"{server.url}/events", params={"token": "not-a-token-at-all"})
    assert response.status_code == 401


def test_restart_replays_to_the_identical_state(server: Server) -> None:
    score_sample_round(server)
    server.post("/api/teams/naver/disqualify", {"reason": "weights"}).raise_for_status()
    with server.client() as c:
        before = c.get("/api/state").content
        before_public = httpx.get(f"{server.url}/api/state").content
    server.restart()
    with server.client() as c:
        assert c.get("/api/state").content == before
    assert httpx.get(f"{server.url}/api/state").content == before_public


def test_health_and_metrics(server: Server) -> None:
    health = httpx.get(f"{server.url}/healthz").json()
    assert health["ok"] is True and health["seq"] == 1
    server.post("/api/scores", {"criterion": "benchmark", "team": "lg", "value": 1})
    metrics = httpx.get(f"{server.url}/metrics").text
    assert "showcase_seq 2" in metrics
    assert "showcase_log_appended_total 1" in metrics
    assert 'showcase_subscribers{view="public"} 0' in metrics


def test_stream_details_a_client_author_relies_on(server: Server) -> None:
    from websockets.sync.client import connect

    with connect(server.url.replace("http", "ws") + "/ws?token=bad-token-given") as ws:
        try:
            ws.recv(timeout=5)
        except Exception as exc:  # closed by the server, with the reason
            assert "not valid" in str(exc)
        assert ws.close_code == 1008
    with connect(server.url.replace("http", "ws") + "/ws") as ws:
        assert '"snapshot"' in ws.recv(timeout=5)
        ws.send('{"type": "ping"}')  # as json.dumps writes it
        seq = server.post("/api/scores", {"criterion": "benchmark", "team": "lg",
                                          "value": 9}).json()["seq"]
        assert f'"seq":{seq}' in ws.recv(timeout=5)
    # Last-Event-ID (sent by EventSource on reconnect) wins over a stale since in the URL
    resumed = read_sse(server.url, 1, params={"since": 0}, headers={"Last-Event-ID": "1"})
    assert resumed[0]["seq"] == 2


def test_commands_take_tokens_from_the_header_only_and_names_in_utf8(server: Server) -> None:
    with httpx.Client(base_url=server.url) as c:
        refused = c.post("/api/scores", params={"token": OPERATOR},
                         json={"criterion": "benchmark", "team": "lg", "value": 5})
        assert refused.status_code == 401
        ok = c.post("/api/scores", json={"criterion": "benchmark", "team": "lg", "value": 5},
                    headers={"Authorization": f"Bearer {OPERATOR}",
                             "X-Showcase-User": "김지원".encode()})
        assert ok.status_code == 201
        log = c.get("/api/log", headers={"Authorization": f"Bearer {OPERATOR}"}).json()
    assert log["events"][-1]["actor"] == "operator:김지원"


def test_each_kind_of_error_is_answered_with_its_status() -> None:
    # The core names what failed; the web edge alone knows HTTP.
    from showcase.bench.suites import SuiteError
    from showcase.core import errors
    from showcase.models.upstream import UpstreamError
    from showcase.server.web import status_of

    kinds = [errors.InvalidRequest, errors.NotAuthenticated, errors.NotPermitted,
             errors.Unknown, errors.StateConflict, errors.TooLarge, errors.LogUnavailable,
             errors.LogError]
    assert [status_of(kind("x")) for kind in kinds] == [400, 401, 403, 404, 409, 413, 503, 500]
    assert status_of(UpstreamError(504, "timeout", "team 'lg' did not answer in time")) == 504
    assert status_of(SuiteError("ko-math.jsonl", 2, "no 'prompt'")) == 400
    assert not hasattr(errors.ShowcaseError("x"), "code")
