"""Secrecy: no sealed value travels on a public connection, in any message, before its reveal."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import (
    JUDGE,
    OPERATOR,
    PRESENTER,
    SAMPLE_BENCHMARK,
    SAMPLE_FEEDBACK,
    SAMPLE_SHEETS,
    Server,
    score_sample_round,
)
from tests.streams import Viewer, read_sse

SECRET_REASON = "vision encoder weights match a foreign model"


def leaves(value: Any, key: str = "") -> list[Any]:
    """Every number and string in a message, except the timestamp."""
    if isinstance(value, dict):
        return [x for k, v in value.items() if k != "ts" for x in leaves(v, k)]
    if isinstance(value, list):
        return [x for v in value for x in leaves(v, key)]
    return [value]


def sealed_values(srv: Server) -> tuple[set[float], set[str]]:
    """What the operator knows and the public must not: raw values, points, totals."""
    numbers = {float(v) for v in SAMPLE_BENCHMARK.values()} | {
        float(v) for v in SAMPLE_FEEDBACK.values()} | {
        float(v) for sheets in SAMPLE_SHEETS.values() for v in sheets}
    rows = srv.state(OPERATOR)["state"]["rounds"][0]["standings"]["rows"]
    for row in rows:
        numbers |= {float(p) for p in row["points"].values()} | {float(row["total"])}
    return numbers, {SECRET_REASON}


def assert_nothing_sealed(messages: list[dict[str, Any]], numbers: set[float],
                          texts: set[str], who: str) -> None:
    for message in messages:
        for leaf in leaves(message):
            if isinstance(leaf, bool):
                continue
            if isinstance(leaf, (int, float)) and message.get("type") != "snapshot":
                assert float(leaf) not in numbers or leaf == message.get("seq"), (who, message)
            if isinstance(leaf, str):
                assert not any(t in leaf for t in texts), (who, message)
        if message.get("type") == "snapshot":
            for round_ in message["data"]["state"]["rounds"]:
                assert round_["standings"] is None, (who, message)


def test_viewer_connections_never_carry_a_sealed_value_before_publication(
        server: Server) -> None:
    viewers = {"viewer": Viewer(server.url), "presenter": Viewer(server.url, f"token={PRESENTER}"),
               "judge": Viewer(server.url, f"token={JUDGE}")}
    operator = Viewer(server.url, f"token={OPERATOR}")
    try:
        score_sample_round(server)
        dq = server.post("/api/teams/naver/disqualify", {"reason": SECRET_REASON}).json()["seq"]
        numbers, texts = sealed_values(server)
        # the operator sees it all: the test would notice a value if it leaked
        seen = operator.wait_seq(dq)
        assert SECRET_REASON in str(seen[-1])
        for who, viewer in viewers.items():
            messages = viewer.wait_seq(dq)
            assert [m["type"] for m in messages[1:]] == ["sealed"] * (len(messages) - 1)
            assert_nothing_sealed(messages, numbers, texts, who)
        public_state = httpx.get(f"{server.url}/api/state").json()
        assert_nothing_sealed([{"type": "snapshot", "data": public_state}], numbers, texts,
                              "GET /api/state")
        assert SECRET_REASON not in str(public_state)
        late = read_sse(server.url, dq, params={"since": 0})  # history, replayed to a viewer
        assert_nothing_sealed(late, numbers, texts, "sse replay")

        published = server.post("/api/rounds/r1/publish").json()["seq"]
        after = viewers["viewer"].wait_seq(published)[-1]
        assert after["type"] == "round_published"
        rows = {r["team"]: r for r in after["data"]["standings"]["rows"]}
        assert rows["lg"]["total"] == 80.65
        assert rows["naver"]["status"] == "disqualified"
        assert rows["naver"]["reason"] == SECRET_REASON
        assert rows["ncai"]["status"] == "eliminated"
        public = httpx.get(f"{server.url}/api/state").json()["state"]
        assert public["rounds"][0]["standings"]["rows"][0]["total"] == 80.65
    finally:
        for viewer in (*viewers.values(), operator):
            viewer.close()
