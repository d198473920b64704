"""The reveal: its script, secrecy through every step, and the presenter's presses."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from showcase.core import commands, reveal
from showcase.core.errors import Conflict, ShowFileError
from showcase.core.reveal import build_script
from showcase.core.showfile import load_show, sample_show_path
from tests.conftest import JUDGE, OPERATOR, PRESENTER, Server, score_sample_round
from tests.streams import Viewer
from tests.test_scoring import hand_round

NAMES = {"lg": "LG AI Research", "skt": "SK Telecom", "upstage": "Upstage",
         "naver": "Naver Cloud", "ncai": "NC AI"}


def row(team: str, position: int, points: tuple[float, float, float], status: str = "active",
        rank: int | None = None) -> dict[str, Any]:
    return {"team": team, "status": status, "rank": rank or position, "position": position,
            "points": dict(zip(("benchmark", "expert", "feedback"), points, strict=True)),
            "total": round(sum(points), 2), "advances": status == "active", "reason": ""}


def test_script_from_hand_made_results_with_a_jury_tie_and_a_disqualified_team() -> None:
    show = load_show(sample_show_path())
    # skt and upstage tie at 60 across the cut; the jury put skt first. naver is out.
    publication = {"round": "r1", "eliminated": ["upstage", "ncai"], "standings": {
        "round": "r1", "cut": {"rule": "the bottom 2 are eliminated", "survivors": 2},
        "rows": [row("lg", 1, (30, 30, 20)), row("skt", 2, (20, 25, 15)),
                 row("upstage", 3, (25, 20, 15), "eliminated", rank=2),
                 row("ncai", 4, (10, 10, 10), "eliminated"),
                 {**row("naver", 0, (0, 0, 0), "disqualified"), "position": None,
                  "rank": None, "reason": "weights match a foreign model"}]}}
    steps = build_script(show, "r1", publication, NAMES)
    kinds = [s["kind"] for s in steps]
    assert kinds == ["title", "status"] + ["points"] * 12 + ["cut", "eliminate", "eliminate",
                                                              "survivors"]
    assert [s["n"] for s in steps] == list(range(1, 19))
    assert steps[1]["team"] == "naver" and "weights match" in steps[1]["text"]
    # Until its status step, the sealed disqualification is a plain row like any other:
    # a row missing from the title card would give it away one step early.
    title = steps[0]["board"]["rows"]
    assert [(r["team"], r["status"], r["total"]) for r in title] == [
        (t, "active", 0.0) for t in ("lg", "skt", "upstage", "naver", "ncai")]
    assert [(r["team"], r["status"], r["position"]) for r in steps[1]["board"]["rows"]][3:] == [
        ("ncai", "active", 4), ("naver", "disqualified", None)]
    # A disqualification the public knows already is on the board from the start.
    known = build_script(show, "r1", publication, NAMES, frozenset({"naver"}))
    assert known[0]["board"]["rows"][-1] == {
        "team": "naver", "points": dict.fromkeys(("benchmark", "expert", "feedback")),
        "total": None, "status": "disqualified", "position": None}
    # Criterion by criterion, from the bottom of the final standings up.
    assert [s["team"] for s in steps[2:6]] == ["ncai", "upstage", "skt", "lg"]
    assert [s["criterion"] for s in steps[2:14:4]] == ["benchmark", "expert", "feedback"]
    # After the benchmark points upstage (25) leads skt (20): rows move with the totals.
    board = steps[5]["board"]
    assert [r["team"] for r in board["rows"]][:4] == ["lg", "upstage", "skt", "ncai"]
    assert board["rows"][1]["points"] == {"benchmark": 25, "expert": None, "feedback": None}
    # Nothing a later step reveals is on an earlier board.
    assert all(r["points"]["expert"] is None for r in steps[5]["board"]["rows"])
    # The cut puts the jury's order on the board; then each elimination, worst first.
    cut = steps[14]["board"]
    assert [r["team"] for r in cut["rows"]][:4] == ["lg", "skt", "upstage", "ncai"]
    assert cut["cut"]["survivors"] == 2
    assert [(s["team"], s["confirm"]) for s in steps[15:17]] == [("ncai", True),
                                                                 ("upstage", True)]
    assert steps[17]["teams"] == ["lg", "skt"] and steps[17]["board"]["final"]
    assert not any(s["confirm"] for s in steps if s["kind"] != "eliminate")


def test_the_reveal_order_comes_from_the_show_file(tmp_path: Path) -> None:
    text = sample_show_path().read_text(encoding="utf-8").replace(
        'tie_break = ["benchmark", "expert", "feedback"]',
        'tie_break = ["benchmark", "expert", "feedback"]\n'
        'reveal = { order = ["title", "points", "eliminations"], points = "criterion" }', 1)
    path = tmp_path / "show.toml"
    path.write_text(text, encoding="utf-8")
    show = load_show(path)
    publication = {"round": "r1", "eliminated": ["ncai"], "standings": {
        "round": "r1", "cut": {"rule": "the bottom 1 leave", "survivors": 3},
        "rows": [row("lg", 1, (30, 30, 20)), row("skt", 2, (20, 25, 15)),
                 row("upstage", 3, (25, 20, 14)), row("ncai", 4, (10, 10, 10), "eliminated"),
                 {**row("naver", 0, (0, 0, 0), "disqualified"), "position": None,
                  "rank": None}]}}
    steps = build_script(show, "r1", publication, NAMES)
    assert [s["kind"] for s in steps] == ["title", "points", "points", "points", "eliminate"]
    # Without a status section, naver stays a plain row until the final order shows it.
    assert ("naver", "active") in [(r["team"], r["status"]) for r in steps[3]["board"]["rows"]]
    assert steps[1]["points"] == {"ncai": 10, "upstage": 25, "skt": 20, "lg": 30}
    last = steps[-1]["board"]
    assert last["final"] and [r["team"] for r in last["rows"]] == [
        "lg", "skt", "upstage", "ncai", "naver"]

    for order, problem in ((["title", "cut", "points", "eliminations"], "before 'points'"),
                           (["points"], "must include 'eliminations'"),
                           (["points", "eliminations", "finale"], "not a section"),
                           (["points", "points", "eliminations"], "listed twice")):
        path.write_text(text.replace('order = ["title", "points", "eliminations"]',
                                     f"order = {orjson.dumps(order).decode()}"), encoding="utf-8")
        with pytest.raises(ShowFileError, match=problem):
            load_show(path)


def post(srv: Server, path: str, body: Any = None, token: str = PRESENTER) -> httpx.Response:
    return srv.post(path, body if body is not None else {}, token=token)


def frozen_server(srv: Server) -> list[dict[str, Any]]:
    score_sample_round(srv)
    assert post(srv, "/api/teams/naver/disqualify",
                {"reason": "weights match a foreign model"}, OPERATOR).status_code == 201
    assert post(srv, "/api/rounds/r1/freeze", token=OPERATOR).status_code == 201
    script = httpx.get(f"{srv.url}/api/reveal/script",
                       headers={"Authorization": f"Bearer {PRESENTER}"}).json()
    return script["steps"]  # type: ignore[no-any-return]


def test_secrecy_through_every_step(server: Server) -> None:
    viewer = Viewer(server.url)
    try:
        steps = frozen_server(server)
        elimination = next(s["n"] for s in steps if s["kind"] == "eliminate")
        public = server.state(None)["state"]
        assert public["rounds"][0]["reveal"] == {"step": 0, "speed": 1.0, "current": None}
        for k in range(1, len(steps) + 1):
            if k == elimination:
                assert post(server, "/api/reveal/arm", {"to": k}).status_code == 201
            moved = post(server, "/api/reveal/next", {"to": k})
            assert moved.status_code == 201, moved.text
            state = server.state(None)["state"]
            reveal = state["rounds"][0]["reveal"]
            assert reveal["step"] == k
            assert reveal["current"]["board"] == steps[k - 1]["board"]
            # No value revealed only by a later step is anywhere in the public state.
            text = orjson.dumps(state).decode()
            for later in steps[k:]:
                if later["kind"] == "points" and not _shown(steps[:k], later):
                    assert f'"{later["criterion"]}":{_num(later["points"])}' not in text or \
                        _same_value_shown(steps[:k], later)
        server_seq = server.state(OPERATOR)["seq"]
        messages = viewer.wait_seq(server_seq)
    finally:
        viewer.close()
    # The viewer's stream carried each step once, and never a step before its time.
    shown = [m["data"]["step"] for m in messages if m["type"] == "reveal_step"]
    assert shown == list(range(1, len(steps) + 1))
    frozen = [m for m in messages if m["type"] == "round_frozen"]
    assert frozen and frozen[0]["data"] == {"round": "r1"}
    assert not any("next" in m["data"] or "total" in m["data"] for m in messages
                   if m["type"] == "reveal_step")
    armed = [m for m in messages if m["type"] in ("reveal_armed", "sealed")]
    assert armed and all(m["type"] == "sealed" for m in armed)
    final = server.state(None)["state"]
    assert final["rounds"][0]["phase"] == "published"
    assert {t["id"]: t["status"] for t in final["teams"]}["ncai"] == "eliminated"


def _num(value: float) -> str:
    return orjson.dumps(value).decode()


def _shown(steps: list[dict[str, Any]], later: dict[str, Any]) -> bool:
    return any(s["kind"] == "points" and s["team"] == later["team"]
               and s["criterion"] == later["criterion"] for s in steps)


def _same_value_shown(steps: list[dict[str, Any]], later: dict[str, Any]) -> bool:
    """Another team may have the same points for the criterion, revealed already."""
    return any(s["kind"] == "points" and s["criterion"] == later["criterion"]
               and s["points"] == later["points"] for s in steps)


def test_presses_are_idempotent_and_refused_with_the_current_step(server: Server) -> None:
    steps = frozen_server(server)
    assert post(server, "/api/reveal/next", {"to": 1}).status_code == 201
    again = post(server, "/api/reveal/next", {"to": 1})  # a double press or a retry
    assert again.status_code == 409 and again.json()["step"] == 1
    assert "stale press" in again.json()["error"]
    skip = post(server, "/api/reveal/next", {"to": 3})
    assert skip.status_code == 409 and skip.json()["step"] == 1
    # A button box cannot know the step: a second press within the debounce is ignored.
    time.sleep(0.9)
    assert post(server, "/api/reveal/next").status_code == 201
    bounce = post(server, "/api/reveal/next")
    assert bounce.status_code == 409 and "double press" in bounce.json()["error"]
    assert post(server, "/api/reveal/back", {"to": 1}).status_code == 201
    assert post(server, "/api/reveal/goto", {"to": 5}).status_code == 201
    assert server.state(None)["state"]["rounds"][0]["reveal"]["current"]["board"] == \
        steps[4]["board"]
    # Back rolls every public view back consistently.
    assert post(server, "/api/reveal/back", {"to": 4}).status_code == 201
    assert server.state(None)["state"]["rounds"][0]["reveal"]["current"]["board"] == \
        steps[3]["board"]
    # Fast-forward stops at the next pause, and never runs through an elimination.
    ff = post(server, "/api/reveal/ff", {})
    assert ff.status_code == 201
    at = server.state(None)["state"]["rounds"][0]["reveal"]["step"]
    assert steps[at - 1]["pause"] and at > 4
    elimination = next(s["n"] for s in steps if s["kind"] == "eliminate")
    refused = post(server, "/api/reveal/goto", {"to": elimination})
    assert refused.status_code == 409 and "arm it, then confirm" in refused.json()["error"]
    assert post(server, "/api/reveal/goto", {"to": elimination - 1}).status_code == 201
    unarmed = post(server, "/api/reveal/next", {"to": elimination})
    assert unarmed.status_code == 409 and "arm" in unarmed.json()["error"]
    presenter = server.state(PRESENTER)["state"]["presenter"]["reveal"]
    assert presenter["next"]["kind"] == "eliminate" and presenter["next"]["confirm"]
    assert presenter["next"]["text"] == "NC AI is eliminated" and "board" not in presenter["next"]
    assert post(server, "/api/reveal/arm", {"to": elimination}).status_code == 201
    assert server.state(PRESENTER)["state"]["presenter"]["reveal"]["armed"] == elimination
    # A button box's confirm (no 'to') right after arming is deliberate, not a double press.
    assert post(server, "/api/reveal/next").status_code == 201
    # Nothing past the end; nothing before the start.
    assert post(server, "/api/reveal/goto", {"to": 0}).status_code == 201
    start = post(server, "/api/reveal/back", {"to": -1})
    assert start.status_code == 409 and "at its start" in start.json()["error"]
    end = post(server, "/api/reveal/goto", {"to": len(steps) + 1})
    assert end.status_code == 409


def test_two_presenters_pressing_at_once_move_one_step(server: Server) -> None:
    frozen_server(server)
    results: list[int] = []

    def press() -> None:
        results.append(post(server, "/api/reveal/next", {"to": 1}).status_code)

    threads = [threading.Thread(target=press) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [201] + [409] * 5
    assert server.state(None)["state"]["rounds"][0]["reveal"]["step"] == 1


def test_freeze_lock_and_bad_input(server: Server) -> None:
    refused = post(server, "/api/reveal/next", {"to": 1})
    assert refused.status_code == 409 and "not frozen" in refused.json()["error"]
    incomplete = post(server, "/api/rounds/r1/freeze", token=OPERATOR)
    assert incomplete.status_code == 409 and "not complete" in incomplete.json()["error"]
    steps = frozen_server(server)
    seq = server.state(OPERATOR)["seq"]
    for path, body, token, status in [
        ("/api/reveal/next", {"to": 1}, None, 401),
        ("/api/reveal/next", {"to": 1}, JUDGE, 403),
        ("/api/reveal/lock", {"locked": True}, PRESENTER, 403),
        ("/api/reveal/next", {"to": "one"}, PRESENTER, 400),
        ("/api/reveal/next", {"step": 1}, PRESENTER, 400),
        ("/api/reveal/goto", {}, PRESENTER, 400),
        ("/api/reveal/speed", {"speed": 10}, PRESENTER, 400),
        ("/api/reveal/arm", {"to": 1}, PRESENTER, 409),
        ("/api/scores", {"criterion": "benchmark", "team": "lg", "value": 1}, OPERATOR, 409),
        ("/api/teams/skt/withdraw", {"reason": "x"}, OPERATOR, 409),
        ("/api/rounds/r1/publish", {}, OPERATOR, 409),
    ]:
        r = server.post(path, body, token=token)
        assert r.status_code == status, (path, body, r.text)
        assert r.json()["error"]
    # Each refusal names the problem: an unknown round lists the rounds there are, a stale
    # or repeated freeze says the round is frozen, a fractional seq is quoted back.
    unknown = post(server, "/api/reveal/next", {"round": "r9"})
    assert unknown.status_code == 404 and unknown.json()["detail"] == "rounds: r1, r2"
    twice = post(server, "/api/rounds/r1/freeze", token=OPERATOR)
    assert (twice.status_code, twice.json()["error"]) == (409, "round 'r1' is frozen already")
    fraction = post(server, "/api/rounds/r1/freeze", {"expect_seq": 53.0}, OPERATOR)
    assert fraction.json()["error"] == "field 'expect_seq' must be a whole number, not 53.0"
    script = httpx.get(f"{server.url}/api/reveal/script?round=r9",
                       headers={"Authorization": f"Bearer {PRESENTER}"})
    assert script.status_code == 404 and "r1, r2" in script.json()["detail"]
    script = httpx.get(f"{server.url}/api/reveal/script?round=r2",
                       headers={"Authorization": f"Bearer {PRESENTER}"})
    assert script.status_code == 409 and script.json()["seq"] == seq
    # Fast-forward with 'to' is an exact press like next's: a stale one moves nothing.
    ff_to = next(s["n"] for s in steps if s["pause"])
    stale_ff = post(server, "/api/reveal/ff", {"to": ff_to + 2})
    assert stale_ff.status_code == 409 and stale_ff.json()["step"] == 0
    assert f"ff goes to step {ff_to}" in stale_ff.json()["error"]
    assert server.state(OPERATOR)["seq"] == seq  # nothing reached the log
    assert httpx.get(f"{server.url}/api/reveal/script").status_code == 401
    assert httpx.get(f"{server.url}/api/reveal/script",
                     headers={"Authorization": f"Bearer {JUDGE}"}).status_code == 403

    assert post(server, "/api/reveal/lock", {"locked": True, "reason": "ad break"},
                OPERATOR).status_code == 201
    for path, body in (("/api/reveal/next", {"to": 1}), ("/api/reveal/arm", {}),
                       ("/api/reveal/speed", {"speed": 2})):
        locked = post(server, path, body)
        assert locked.status_code == 403, path
        assert locked.json() == {"error": "the operator has locked the reveal controls",
                                 "detail": "reason: ad break"}
    assert post(server, "/api/reveal/next", {"to": 1}, OPERATOR).status_code == 201
    assert post(server, "/api/reveal/lock", {"locked": False}, OPERATOR).status_code == 201
    assert post(server, "/api/reveal/speed", {"speed": 2}).status_code == 201
    assert server.state(None)["state"]["rounds"][0]["reveal"]["speed"] == 2.0

    # A late correction: unfreeze only at the start of the reveal, with a reason.
    started = post(server, "/api/rounds/r1/unfreeze", {"reason": "typo"}, OPERATOR)
    assert started.status_code == 409 and "step 1" in started.json()["error"]
    assert post(server, "/api/reveal/reset", {"to": 0}).status_code == 201
    assert post(server, "/api/rounds/r1/unfreeze", {}, OPERATOR).status_code == 400
    assert post(server, "/api/rounds/r1/unfreeze", {"reason": "typo in lg's sheet"},
                OPERATOR).status_code == 201
    assert server.post("/api/scores", {"criterion": "benchmark", "team": "lg", "value": 80,
                                       "reason": "typo"}).status_code == 201
    assert post(server, "/api/rounds/r1/freeze", token=OPERATOR).status_code == 201
    again = httpx.get(f"{server.url}/api/reveal/script",
                      headers={"Authorization": f"Bearer {OPERATOR}"}).json()["steps"]
    assert again != steps  # the new script has the corrected points


def test_a_late_joiner_sees_the_current_step_at_once(server: Server) -> None:
    steps = frozen_server(server)
    for k in range(1, 6):
        assert post(server, "/api/reveal/goto", {"to": k}).status_code == 201
        time.sleep(0.01)
    viewer = Viewer(server.url)
    try:
        first = viewer.wait_for(lambda ms: bool(ms))[0]
    finally:
        viewer.close()
    assert first["type"] == "snapshot"
    reveal = first["data"]["state"]["rounds"][0]["reveal"]
    assert reveal["step"] == 5 and reveal["current"]["board"] == steps[4]["board"]


def test_reveal_double_press_guard_takes_the_time_from_the_caller() -> None:
    s = hand_round()
    s.run(commands.decide_jury, "r1", {"order": ["d", "c"], "reason": "jury vote"})
    s.run(commands.freeze_round, "r1", {})
    first = s.run(reveal.move, "next", "presenter", {}, 0.0)
    assert first.data["step"] == 1
    pressed_at = first.ts  # the event's time: the guard measures from it
    with pytest.raises(Conflict, match="double press"):
        reveal.move(s.state, "next", "presenter", {}, pressed_at + 0.3)
    assert s.run(reveal.move, "next", "presenter", {}, pressed_at + 1.0).data["step"] == 2
    # A press that names its step is exact, so no guard applies to it.
    assert s.run(reveal.move, "next", "presenter", {"to": 3}, pressed_at).data["step"] == 3
