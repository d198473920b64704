"""The fold: a replay gives the identical state; rounds, replacement teams, reinstatement;
and the one fold reaches every client as patches that rebuild each view's state exactly."""

from __future__ import annotations

import asyncio
import copy
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from showcase_tui.model import apply_patch

from showcase.bench.suites import sample_suites_dir
from showcase.core import commands
from showcase.core import events as ev
from showcase.core.errors import Conflict, LogError
from showcase.core.showfile import sample_show_path
from showcase.core.state import State, fold
from showcase.core.views import operator_state, public_state
from tests.conftest import JUDGE, OPERATOR, PRESENTER, Server, score_sample_round
from tests.streams import Viewer
from tests.test_proxy import Mock
from tests.test_scoring import Show, hand_round


def test_replaying_the_log_gives_byte_identical_state() -> None:
    s = hand_round()
    s.run(commands.decide_jury, "r1", {"order": ["c", "d"], "reason": "jury"})
    s.run(commands.publish_round, "r1", {})
    events = [ev.event_from_json(orjson.loads(orjson.dumps(e.to_json())))
              for e in s.events]
    replayed = fold(events)
    assert orjson.dumps(operator_state(replayed)) == orjson.dumps(operator_state(s.state))
    assert orjson.dumps(public_state(replayed)) == orjson.dumps(public_state(s.state))


def test_a_gap_in_the_log_is_refused() -> None:
    state = State()
    with pytest.raises(LogError, match="gap"):
        state.apply(ev.Event(2, 0.0, ev.ROUND_STARTED, "operator", {"round": "r1"}))


def test_replacement_team_joins_the_next_round_only() -> None:
    s = hand_round()
    with pytest.raises(Conflict, match="publish it first"):
        commands.start_round(s.state, "r2", {})
    s.run(commands.decide_jury, "r1", {"order": ["d", "c"], "reason": "jury"})
    s.run(commands.publish_round, "r1", {})
    s.run(commands.add_team, {"id": "kakao", "name_ko": "카카오", "name_en": "Kakao",
                              "colour": "#ffcd00"})
    assert "kakao" not in s.state.rounds["r1"].roster
    s.run(commands.start_round, "r2", {})
    # survivors of r1 and the replacement; eliminated and disqualified teams stay out
    assert list(s.state.rounds["r2"].roster) == ["a", "b", "d", "kakao"]
    assert s.state.current_round == "r2"


def test_a_team_cannot_join_a_round_under_way() -> None:
    s = Show()
    s.run(commands.add_team, {"id": "kt", "name_ko": "KT", "name_en": "KT"})  # for r2
    with pytest.raises(Conflict, match="has started"):
        commands.add_team(s.state, {"id": "konan", "name_ko": "코난", "name_en": "Konan",
                                    "round": "r1"})


def test_reinstated_team_counts_again() -> None:
    s = Show()
    s.run(commands.change_status, ev.TEAM_DISQUALIFIED, "a", {"reason": "suspected copying"})
    with pytest.raises(Conflict, match="disqualified"):
        s.score("benchmark", "a", 50)
    s.run(commands.change_status, ev.TEAM_REINSTATED, "a",
          {"reason": "cleared in the public verification session", "announce": True})
    s.score("benchmark", "a", 50)
    assert s.state.teams["a"].status == "active"
    assert s.state.teams["a"].public_reason == "cleared in the public verification session"


def test_unannounced_disqualification_stays_out_of_the_public_view() -> None:
    s = Show()
    s.run(commands.change_status, ev.TEAM_DISQUALIFIED, "b", {"reason": "weights match"})
    public = {t["id"]: t for t in public_state(s.state)["teams"]}
    assert public["b"]["status"] == "active"
    assert "weights match" not in orjson.dumps(public_state(s.state)).decode()
    assert s.state.teams["b"].status == "disqualified"


def test_reinstating_after_publication_leaves_the_announced_round_alone() -> None:
    s = hand_round()
    s.run(commands.decide_jury, "r1", {"order": ["d", "c"], "reason": "jury"})
    s.run(commands.publish_round, "r1", {})
    before = orjson.dumps(s.state.standings("r1").to_json())
    event = s.run(commands.change_status, ev.TEAM_REINSTATED, "e", {"reason": "cleared"})
    assert event.data["round"] == "r2"
    assert orjson.dumps(s.state.standings("r1").to_json()) == before
    s.run(commands.start_round, "r2", {})
    assert "e" in s.state.rounds["r2"].roster


def test_reinstating_a_replacement_team_does_not_pull_it_into_the_open_round() -> None:
    s = Show()
    s.run(commands.add_team, {"id": "kakao", "name_ko": "카카오", "name_en": "Kakao"})
    s.run(commands.change_status, ev.TEAM_WITHDRAWN, "kakao", {"reason": "changed its mind"})
    s.run(commands.change_status, ev.TEAM_REINSTATED, "kakao", {"reason": "back in"})
    assert "kakao" not in s.state.rounds["r1"].roster


def test_a_health_change_already_recorded_is_refused() -> None:
    """Every node checks every team: the one that records a change second finds it
    recorded when its command is checked (again, after losing the race) and is refused,
    so the log holds each change once."""
    s = hand_round()
    down = {"up": False, "latency_ms": None, "error": "connection refused"}
    s.run(commands.team_health, "a", down)
    with pytest.raises(Conflict, match="recorded as down already"):
        s.run(commands.team_health, "a", {**down, "error": "timed out"})
    up = s.run(commands.team_health, "a", {"up": True, "latency_ms": 12.0, "error": ""})
    assert up.data["up"] is True
    assert [e.data["up"] for e in s.events if e.type == ev.TEAM_HEALTH] == [False, True]


# -- one fold: clients apply the server's patches ------------------------------------------


class PatchClient:
    """A client as the overlays and the console are: it holds its view's state from the
    stream's snapshot and applies each event's ``patch``, knowing nothing of the events."""

    def __init__(self, url: str, query: str = "", read: dict[str, Any] | None = None) -> None:
        self.viewer = Viewer(url, query)
        # A state read before (GET /api/state), then the stream resumed after its seq.
        self.state: Any = read["state"] if read else None
        self.seq = read["seq"] if read else 0
        self.used = 0  # messages of the viewer consumed so far

    def resume(self, url: str) -> PatchClient:
        """Drop the connection after what it delivered, and go on with ``since``."""
        self.catch_up(max(self.seq, max((m["seq"] or 0) for m in self.viewer.messages)))
        self.viewer.close()
        return PatchClient(url, f"since={self.seq}", {"state": self.state, "seq": self.seq})

    def catch_up(self, seq: int) -> Any:
        for message in self.viewer.wait_seq(seq, timeout=30)[self.used:]:
            self.used += 1
            if message["seq"] is None:
                continue  # ticks and keepalives: volatile, not part of the state
            if message["type"] == "snapshot":
                self.state, self.seq = message["data"]["state"], message["seq"]
                continue
            assert message["seq"] == self.seq + 1, "a gap in the stream"
            self.seq = message["seq"]
            if message["type"] == "sealed":
                assert "patch" not in message
                continue
            self.state = apply_patch(self.state, message["patch"])
        return self.state


def wait_until(what: str, predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def live_show(tmp_path: Path) -> Iterator[Server]:
    """The sample show with every team answered by one mock team (demos, a benchmark run)."""
    mock = Mock("--ttft-ms", "5", "--itl-ms", "1", "--tokens", "12", "--accuracy", "0.5",
                "--answers", str(sample_suites_dir()))
    try:
        show = tmp_path / "show.toml"
        text = re.sub(r"http://127\.0\.0\.1:910\d/v1", f"{mock.url}/v1",
                      sample_show_path().read_text(encoding="utf-8"))
        show.write_text(text + "\n[proxy]\nhealth_interval = 0\n", encoding="utf-8")
        srv = Server(show, tmp_path / "data").start()
        try:
            yield srv
        finally:
            srv.stop()
    finally:
        mock.stop()


def test_clients_applying_only_patches_end_with_the_state_of_every_view(
        live_show: Server) -> None:
    srv = live_show
    tokens = {"public": None, "judge": JUDGE, "presenter": PRESENTER, "operator": OPERATOR}
    clients = {view: PatchClient(srv.url, f"token={token}" if token else "")
               for view, token in tokens.items()}
    late: PatchClient | None = None
    try:
        def press(path: str, body: dict[str, Any], token: str = OPERATOR) -> int:
            response = srv.post(path, body, token=token)
            assert response.status_code == 201, response.text
            return int(response.json()["seq"])

        score_sample_round(srv)
        press("/api/scores", {"criterion": "feedback", "team": "skt", "value": 4.1,
                              "reason": "a late ballot"})
        press("/api/teams/naver/disqualify", {"reason": "weights match a foreign model"})
        # A viewer that joins now and then drops: it resumes with since, as client.js does.
        start = srv.state(None)["seq"]
        late = PatchClient(srv.url, f"since={start}", srv.state(None))
        press("/api/rounds/r1/freeze", {})
        steps = httpx.get(f"{srv.url}/api/reveal/script",
                          headers={"Authorization": f"Bearer {PRESENTER}"}).json()["steps"]
        for step in steps:
            if step["kind"] == "eliminate":
                press("/api/reveal/arm", {"to": step["n"]}, PRESENTER)
            press("/api/reveal/next", {"to": step["n"]}, PRESENTER)
            if step["n"] == 1:
                press("/api/reveal/speed", {"speed": 1.5}, PRESENTER)
                press("/api/reveal/lock", {"locked": True, "reason": "a word"})
                press("/api/reveal/lock", {"locked": False})
            if step["n"] == 2:  # the late viewer drops mid-reveal and resumes
                late = late.resume(srv.url)
        press("/api/rounds/r2/start", {})
        press("/api/teams/skt/withdraw", {"reason": "the team asked", "announce": True})
        press("/api/teams/skt/reinstate", {"reason": "it asked again", "announce": True})
        demo = press("/api/demo", {"prompt": "Introduce yourself.", "max_tokens": 12}, PRESENTER)
        wait_until("the demo", lambda: srv.state()["state"]["demo"]["phase"] == "finished")
        run = press("/api/bench", {"suites": ["ko-math"], "concurrency": 4})
        wait_until("the run", lambda: srv.state()["state"]["bench"]["phase"] == "finished")
        assert srv.state()["state"]["bench"]["id"] == run and demo < run
        with srv.client() as op:
            r2 = op.get("/api/state").json()["state"]["rounds"][1]
        for team in r2["roster"]:
            press("/api/scores", {"round": "r2", "criterion": "benchmark", "team": team,
                                  "value": 50})
        press("/api/teams/upstage/disqualify", {"reason": "late weights", "announce": True})

        last = srv.state()["seq"]
        for view, client in {**clients, "late": late}.items():
            token = tokens.get(view)
            expected = srv.state(token)
            assert expected["seq"] == last
            assert client.catch_up(last) == expected["state"], view
        # Every kind of event went by: the stream carried what each client needed.
        kinds = {m["type"] for m in clients["operator"].viewer.messages}
        assert {"score_entered", "team_disqualified", "round_frozen", "reveal_step",
                "reveal_armed", "reveal_speed", "reveal_locked", "round_started", "team_withdrawn",
                "team_reinstated", "demo_started", "demo_result", "bench_started",
                "bench_item", "bench_finished"} <= kinds
    finally:
        for client in [*clients.values(), *([late] if late else [])]:
            client.viewer.close()


def state_at(messages: list[dict[str, Any]], seq: int) -> Any:
    """The state a client held after applying the stream's ``messages`` up to ``seq``."""
    state = None
    for message in messages:
        if message["seq"] is None or message["seq"] > seq:
            continue
        if message["type"] == "snapshot":
            state = message["data"]["state"]
        elif "patch" in message:
            state = apply_patch(copy.deepcopy(state), message["patch"])
    return state


async def _burst(url: str, bodies: list[tuple[str, dict[str, Any]]], writers: int) -> list[int]:
    """Send every command at once from ``writers`` connections, as concurrent users do: the
    log commits them in shared batches (one fsync for many)."""
    limits = httpx.Limits(max_connections=writers, max_keepalive_connections=writers)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30,
                                 headers={"Authorization": f"Bearer {OPERATOR}"}) as client:
        answers = await asyncio.gather(*(client.post(path, json=body) for path, body in bodies))
    assert [a.status_code for a in answers] == [201] * len(bodies), answers[0].text
    return [int(a.json()["seq"]) for a in answers]


def test_a_burst_of_commands_reaches_patch_clients_once_per_batch(server: Server) -> None:
    """Commands that share a commit: the batch's last message carries the whole batch's
    change and the earlier ones an empty patch; clients that follow, and one that resumes
    from a seq inside a batch, still end with exactly GET /api/state's state."""
    srv = server
    score_sample_round(srv)
    operator = PatchClient(srv.url, f"token={OPERATOR}")
    public = PatchClient(srv.url)
    resumed: list[PatchClient] = []
    try:
        # Corrections of two teams' scores (each changes the operator's live standings,
        # none the public view) and, among them, announced changes the public sees.
        bodies: list[tuple[str, dict[str, Any]]] = [
            ("/api/scores", {"criterion": "benchmark", "team": ("lg", "skt")[i % 2],
                             "value": 40 + i * 0.25, "reason": f"correction {i}"})
            for i in range(240)]
        bodies[80:80] = [("/api/teams/naver/disqualify", {"reason": "weights", "announce": True})]
        bodies[160:160] = [("/api/teams/ncai/withdraw", {"reason": "asked", "announce": True})]
        seqs = asyncio.run(_burst(srv.url, bodies, writers=50))
        last = srv.state()["seq"]
        assert max(seqs) == last

        for client, token in ((operator, OPERATOR), (public, None)):
            assert client.catch_up(last) == srv.state(token)["state"]
        burst = [m for m in operator.viewer.messages if m.get("seq") in set(seqs)]
        assert len(burst) == len(bodies)
        # Every correction changed the standings, yet messages inside a batch carry no
        # patch: the change went out once per batch, with its last message (the burst's
        # last included). How many share a batch depends on the machine's speed; 50
        # writers always make some.
        empty = [m["seq"] for m in burst if m["patch"] == []]
        assert empty, "no two commands of the burst shared a batch"
        assert burst[-1]["patch"] != []
        # The change is the batch's, taken at its end: the message that carries it is the
        # batch's last, so a correction carrying a patch finds its own value there (the
        # latest of its team), never a later one.
        for message in burst:
            if message["type"] == "score_entered" and message["patch"]:
                team, value = message["data"]["team"], message["data"]["value"]
                assert {"op": "replace", "path": f"/rounds/0/values/benchmark/{team}",
                        "value": value} in message["patch"], message

        # Viewers that dropped in the middle of a batch, holding the state as the stream
        # gave it up to there (the view before the batch), resume with since.
        middle = empty[len(empty) // 2]
        for client, token in ((operator, OPERATOR), (public, None)):
            held = {"state": state_at(client.viewer.messages, middle), "seq": middle}
            query = f"since={middle}" + (f"&token={token}" if token else "")
            resumed.append(PatchClient(srv.url, query, held))
            assert resumed[-1].catch_up(last) == srv.state(token)["state"]
    finally:
        for client in (operator, public, *resumed):
            client.viewer.close()
