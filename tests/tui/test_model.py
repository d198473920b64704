"""The console's model, fed the messages of protocol.md by hand: no sockets, no screen."""

from __future__ import annotations

from showcase_tui.model import ShowModel
from showcase_tui.wording import describe, matches


def tick(**data: object) -> dict[str, object]:
    return {"seq": None, "type": "tick", "data": data}


def test_demo_text_is_appended_at_its_offset_and_a_gap_asks_for_a_resync() -> None:
    model = ShowModel()
    model.apply_message(tick(demo={"id": 7, "start": True, "teams": {
        "lg": {"status": "waiting", "at": 0, "text": ""}}}))
    model.apply_message(tick(demo={"id": 7, "teams": {
        "lg": {"status": "streaming", "at": 0, "text": "Hello", "chars": 5, "ttft_ms": 12.5}}}))
    effects = model.apply_message(tick(demo={"id": 7, "teams": {
        "lg": {"at": 5, "text": " world", "chars": 11}}}))
    assert model.lanes["lg"].text == "Hello world" and not effects.demo
    assert model.lanes["lg"].ttft_ms == 12.5 and model.lanes["lg"].status == "streaming"
    # A frame lost on the way: the offset is past what we hold, so read /api/demo.
    effects = model.apply_message(tick(demo={"id": 7, "teams": {"lg": {"at": 20, "text": "!"}}}))
    assert effects.demo and model.lanes["lg"].text == "Hello world"
    model.apply_demo({"demo": {"id": 7, "results": {}},
                      "live": {"id": 7, "teams": {"lg": {"status": "ok", "text": "Hello world, "
                                                         "and more!", "chars": 21}}}})
    assert model.lanes["lg"].text == "Hello world, and more!" and model.lanes["lg"].status == "ok"


def test_a_new_demo_and_a_full_frame_replace_what_was_held() -> None:
    model = ShowModel()
    model.apply_message(tick(demo={"id": 1, "start": True, "teams": {"lg": {"at": 0,
                                                                           "text": "old"}}}))
    model.apply_message(tick(demo={"id": 2, "start": True, "teams": {"skt": {"at": 0,
                                                                            "text": "new"}}}))
    assert list(model.lanes) == ["skt"]
    model.apply_message(tick(full=True, health={"lg": {"up": False, "latency_ms": None}},
                             demo={"id": 2, "teams": {"skt": {"at": 0, "text": "newer"}}}))
    assert model.lanes["skt"].text == "newer"
    assert model.health == {"lg": {"up": False, "latency_ms": None}}


def test_events_apply_their_patch_and_a_gap_or_a_misfit_asks_for_the_state() -> None:
    model = ShowModel()
    model.apply_state({"seq": 3, "state": {"current_round": "r1", "rounds": [], "teams": []}})
    effects = model.apply_message({"seq": 4, "ts": 1.0, "type": "team_added", "actor": "op",
                                   "data": {"team": {"id": "kakao"}}, "patch": [
                                       {"op": "add", "path": "/teams/0", "value": {"id": "kakao"}},
                                       {"op": "replace", "path": "/current_round",
                                        "value": "r2"}]})
    assert not effects.state and model.last_seq == 4 and 4 in model.events
    assert model.teams() == [{"id": "kakao"}] and model.round_id() == "r2"
    assert model.state_seq == 4
    effects = model.apply_message({"seq": 5, "ts": 2.0, "type": "round_frozen",
                                   "data": {"round": "r1"}, "patch": []})
    assert effects.script and not effects.state
    # Seq 6 never came: seq 7's patch would apply to the wrong state, so read it whole.
    effects = model.apply_message({"seq": 7, "ts": 3.0, "type": "reveal_speed",
                                   "data": {}, "patch": []})
    assert effects.state and model.state_seq == 5
    # A patch that does not fit what is held is not half-applied: the state is read again.
    model.apply_state({"seq": 7, "state": {"current_round": "r2", "rounds": [], "teams": []}})
    effects = model.apply_message({"seq": 8, "ts": 4.0, "type": "round_started", "data": {},
                                   "patch": [{"op": "replace", "path": "/rounds/3/phase",
                                              "value": "open"}]})
    assert effects.state and model.state_seq == 7
    # The same URL now serves a fresh data directory: its snapshot is behind us.
    effects = model.apply_message({"seq": 2, "type": "snapshot",
                                   "data": {"view": "operator", "state": {"teams": []}}})
    assert effects.reload_log and not model.events and model.seq == 2
    # An older state read never replaces a newer one.
    assert not model.apply_state({"seq": 1, "state": {"teams": [{"id": "x"}]}})


def test_the_log_filter_matches_type_team_actor_and_words() -> None:
    event = {"seq": 9, "type": "score_entered", "actor": "operator:desk-2",
             "data": {"criterion": "feedback", "team": "ncai", "value": 3.6, "previous": 3.5,
                      "reason": "late ballots counted"}}
    assert describe(event) == "feedback ncai: 3.5 → 3.6 (late ballots counted)"
    assert matches(event, ["type:score", "team:ncai", "actor:desk-2"])
    assert matches(event, ["ballots"]) and not matches(event, ["team:lg"])
    assert not matches(event, ["type:reveal"])


def test_the_command_line_needs_a_token_and_never_loads_textual_for_the_server() -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if k not in ("SHOWCASE_OPERATOR_TOKEN", "SHOWCASE_TOKEN")}
    refused = subprocess.run([sys.executable, "-m", "showcase", "console",
                              "http://127.0.0.1:9"], capture_output=True, text=True, env=env,
                             timeout=30)
    assert refused.returncode == 2
    assert "the console needs the operator token" in refused.stderr
    hygiene = subprocess.run([sys.executable, "-c",
                              "import sys, showcase.cli, showcase.server.app; "
                              "print('textual' in sys.modules)"],
                             capture_output=True, text=True, timeout=30)
    assert hygiene.stdout.strip() == "False"


def test_bench_items_change_the_run_by_their_patch_and_a_late_read_is_not_applied_twice(
        ) -> None:
    run = {"id": 42, "phase": "running", "teams": ["lg"], "failed": {}, "results": None,
           "progress": {"lg": {"ko-math": {"done": 1, "errors": 0, "correct": 1, "total": 4}}}}
    model = ShowModel()
    model.apply_state({"seq": 43, "state": {"bench": run}})

    def item(seq: int, done: int, errors: int, correct: int) -> dict[str, object]:
        path = "/bench/progress/lg/ko-math"
        return {"seq": seq, "type": "bench_item", "data": {"run": 42, "team": "lg"},
                "patch": [{"op": "replace", "path": f"{path}/done", "value": done},
                          {"op": "replace", "path": f"{path}/errors", "value": errors},
                          {"op": "replace", "path": f"{path}/correct", "value": correct}]}

    # Items need no state read: the server says what each changes.
    assert not model.apply_message(item(44, 2, 0, 1)).state
    model.apply_message(item(45, 3, 1, 1))
    model.apply_message(item(46, 4, 1, 2))
    counts = (model.bench() or {})["progress"]["lg"]["ko-math"]
    assert (counts["done"], counts["errors"], counts["correct"]) == (4, 1, 2)
    # A state read from before 46 arrives late: it is older than what is held, and dropped.
    assert not model.apply_state({"seq": 45, "state": {"bench": {**run, "progress": {"lg": {
        "ko-math": {"done": 3, "errors": 1, "correct": 1, "total": 4}}}}}})
    counts = (model.bench() or {})["progress"]["lg"]["ko-math"]
    assert (counts["done"], counts["errors"], counts["correct"]) == (4, 1, 2)
    # A read from after 46 already holds 46: replayed again, its patch is not applied twice.
    model.apply_state({"seq": 46, "state": {"bench": {**run, "progress": {"lg": {
        "ko-math": {"done": 4, "errors": 1, "correct": 2, "total": 4}}}}}})
    assert not model.apply_message(item(46, 4, 1, 2)).state
    model.apply_message(item(47, 5, 1, 3))
    assert (model.bench() or {})["progress"]["lg"]["ko-math"]["done"] == 5


def test_bench_frames_replace_each_teams_entry_and_a_missed_start_asks_for_the_run() -> None:
    model = ShowModel()
    model.apply_message(tick(bench={"id": 42, "start": True, "teams": {
        "lg": {"status": "running", "done": 0, "total": 4, "errors": 0, "ips": None}}}))
    model.apply_message(tick(bench={"id": 42, "teams": {
        "lg": {"status": "paused", "done": 2, "total": 4, "errors": 0, "ips": 3.5}}}))
    assert model.bench_live["lg"]["status"] == "paused"
    assert model.apply_message(tick(bench={"id": 50, "teams": {"lg": {"done": 1}}})).bench


def test_log_line_of_a_measured_request_shows_the_proxys_queue_apart() -> None:
    streamed = {"seq": 9, "type": "request_measured", "data": {
        "team": "lg", "source": "proxy", "status": "ok", "error": "",
        "metrics": {"ttft_ms": 230.4, "decode_tps": 41.25, "queue_ms": 1120.0}}}
    whole = {"seq": 10, "type": "request_measured", "data": {
        "team": "skt", "source": "proxy", "status": "ok", "error": "",
        "metrics": {"ttft_ms": None, "e2e_ms": 812.0, "queue_ms": 0.2}}}
    assert describe(streamed) == "lg proxy ok ttft 230 ms, 41.2 tok/s, queued 1120 ms"
    assert describe(whole) == "skt proxy ok e2e 812 ms"
