"""Secrecy: no sealed value travels on a public connection, in any message, before its reveal."""

from __future__ import annotations

import base64
import hashlib
import itertools
from typing import Any

import httpx
import orjson
from showcase_tui.model import apply_patch

from showcase.core.events import VIEWS, event_from_json
from showcase.core.merkle import canonical_line
from showcase.core.patches import Views
from showcase.core.secrecy import sealed
from showcase.core.state import State
from showcase.core.views import view_state
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
    for message in messages:  # the event as the view sees it, and its patch
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
            events = [m["type"] for m in messages[1:] if m["type"] != "checkpoint"]
            assert events == ["sealed"] * len(events)
            assert_nothing_sealed(messages, numbers, texts, who)
        public_state = httpx.get(f"{server.url}/api/state").json()
        assert_nothing_sealed([{"type": "snapshot", "data": public_state}], numbers, texts,
                              "GET /api/state")
        assert SECRET_REASON not in str(public_state)
        late = read_sse(server.url, dq, params={"since": 0})  # history, replayed to a viewer
        assert_nothing_sealed(late, numbers, texts, "sse replay")
        # Freezing fixes the results and the script; what the public gets of it (the event
        # and its patch to the public state) holds none of them.
        frozen = server.post("/api/rounds/r1/freeze").json()["seq"]
        for who, viewer in viewers.items():
            message = viewer.wait_seq(frozen)[-1]
            assert message["type"] == "round_frozen" and message["patch"], who
            assert_nothing_sealed([message], numbers, texts, who)
        server.post("/api/rounds/r1/unfreeze", {"reason": "publish at once instead"})

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


def whole_show_log(server: Server) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A whole show on a real server (scores, a correction, secret and announced team
    changes, a frozen round's reveal with locks and arming): its log and reveal script."""
    score_sample_round(server)
    server.post("/api/scores", {"criterion": "feedback", "team": "lg", "value": 4.5,
                                "reason": "recount"}).raise_for_status()
    server.post("/api/teams/naver/disqualify", {"reason": SECRET_REASON}).raise_for_status()
    server.post("/api/teams/naver/reinstate", {"reason": "appeal"}).raise_for_status()
    server.post("/api/teams/naver/withdraw", {"reason": SECRET_REASON}).raise_for_status()
    server.post("/api/rounds/r1/freeze").raise_for_status()
    steps = httpx.get(f"{server.url}/api/reveal/script",
                      headers={"Authorization": f"Bearer {PRESENTER}"}).json()["steps"]
    server.post("/api/reveal/lock", {"locked": True, "reason": "hold"}).raise_for_status()
    server.post("/api/reveal/lock", {"locked": False}).raise_for_status()
    for step in steps:
        if step["kind"] == "eliminate":
            server.post("/api/reveal/arm", {"to": step["n"]}, PRESENTER).raise_for_status()
        server.post("/api/reveal/next", {"to": step["n"]}, PRESENTER).raise_for_status()
    with server.client() as op:
        log = op.get("/api/log", params={"since": 0, "limit": 5000}).json()["events"]
    return log, steps


def test_an_event_sealed_for_a_view_changes_nothing_that_view_shows(server: Server) -> None:
    """What lets the server skip a sealed event's view (and send it no patch) is that the
    event cannot change what the view shows: checked on a whole show's real log."""
    log, steps = whole_show_log(server)
    state = State()
    views = Views(state)
    sealed_for = {view: 0 for view in VIEWS}
    for raw in log:
        event = event_from_json(raw)
        before = {view: orjson.dumps(view_state(state, view)) for view in VIEWS}
        state.apply(event)
        messages = {view: orjson.loads(wire) for view, wire in views.commit(state, event).items()}
        for view in VIEWS:
            if sealed(event, view):
                sealed_for[view] += 1
                assert orjson.dumps(view_state(state, view)) == before[view], (view, raw)
                # Its leaf hash only: RFC 6962's, of the event's line in the export.
                leaf = hashlib.sha256(b"\x00" + canonical_line(raw)).digest()
                assert messages[view] == {"seq": event.seq, "ts": event.ts, "type": "sealed",
                                          "data": {"leaf": base64.b64encode(leaf).decode()}}
            else:
                assert messages[view]["type"] == event.type
                assert apply_patch(orjson.loads(before[view]), messages[view]["patch"]) == \
                    orjson.loads(orjson.dumps(view_state(state, view)))
    # Scores, the unannounced changes and the arming and locking were all sealed for the
    # public; the presenter saw the arming and locking; the operator saw everything.
    arms = sum(1 for step in steps if step["kind"] == "eliminate")
    assert sealed_for["public"] == sealed_for["judge"] == 35 + 1 + 3 + 2 + arms
    assert sealed_for["presenter"] == 35 + 1 + 3
    assert sealed_for["operator"] == 0


def test_a_whole_show_committed_in_batches_reaches_clients_exactly(server: Server) -> None:
    """The log commits events in batches; each view's change is sent once per batch, with
    the last message the view may see, and the batch's earlier messages carry an empty
    patch. A client applying every patch holds, after each batch, exactly the view's state,
    whatever the batch sizes."""
    log, _ = whole_show_log(server)
    events = [event_from_json(raw) for raw in log]
    # Every size from 1 to 8, each with its batches starting at every offset, so that
    # each pair of neighbouring event types shares a batch in some replay.
    for size, shift in [(n, k) for n in range(1, 9) for k in range(n)]:
        state = State()
        views = Views(state)
        held = {view: orjson.loads(orjson.dumps(view_state(state, view))) for view in VIEWS}
        bounds = [0, *range(shift + 1, len(events), size), len(events)]
        for start, end in itertools.pairwise(bounds):
            batch = events[start:end]
            for event in batch:
                state.apply(event)
            wires = views.commit_batch(state, batch)
            for view in VIEWS:
                messages = [orjson.loads(w[view]) for w in wires]
                visible = [m for m in messages if m["type"] != "sealed"]
                assert all(m["patch"] == [] for m in visible[:-1]), (size, view)
                for message in visible:
                    held[view] = apply_patch(held[view], message["patch"])
                assert held[view] == orjson.loads(orjson.dumps(view_state(state, view))), \
                    (size, shift, view, batch[0].seq)
        assert views.seq == events[-1].seq
