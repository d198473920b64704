"""Benchmark runs: grading, normalisation, runs against mock teams, pause, resume, crash."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from showcase.bench import suites as bn
from tests.conftest import OPERATOR, PRESENTER, Server
from tests.streams import Viewer
from tests.test_proxy import Mock, free_port, team

# -- grading ---------------------------------------------------------------------------


def item(grade: dict[str, Any], choices: list[str] | None = None) -> bn.Item:
    line = {"id": "q", "prompt": "?", "grade": grade, **({"choices": choices} if choices else {})}
    return bn._item("t.jsonl", 2, line)


@pytest.mark.parametrize("answer, read", [
    ("B", "B"),
    ("The answer is (C).", "C"),
    ("I think it is D, because the passage says so.", "D"),
    ("정답은 B입니다.", "B"),
    ("답: Ｃ", "C"),                    # a full-width letter
    ("**A**", "A"),
    ("b) Seoul", "B"),
    ("A or B, hard to say", ""),         # two letters and no answer mark: no answer
    ("It is a city", ""),                # the article 'a' is not choice A
])
def test_a_choice_letter_is_read_from_what_models_actually_say(answer: str, read: str) -> None:
    it = item({"choice": "B"}, ["w", "x", "y", "z"])
    right, extracted = bn.grade(it, answer)
    assert extracted == read
    assert right == (read == "B")


def test_numbers_exact_answers_and_patterns() -> None:
    forty_two = item({"number": 42})
    assert bn.grade(forty_two, "정답은 ４２입니다")[0]          # full-width digits
    assert bn.grade(forty_two, "6 × 7: first 6, then... Answer: 42")[0]
    assert not bn.grade(forty_two, "Answer: 43. (42 was a guess)")[0]  # the marked one counts
    assert bn.grade(item({"number": 1234}), "about 1,234 people")[0]
    assert bn.grade(item({"number": 4, "tolerance": 0.005}), "Answer: 4.00 dollars")[0]
    assert not bn.grade(item({"number": 4, "tolerance": 0.005}), "Answer: 4.01")[0]
    seoul = item({"exact": ["Seoul", "서울"]})
    assert bn.grade(seoul, " seoul! ")[0] and bn.grade(seoul, "서울.")[0]
    assert bn.grade(seoul, "Let me think.\nAnswer: Seoul")[0]
    assert not bn.grade(seoul, "Busan")[0]
    pattern = item({"regex": "^\\s*2026-11-24\\s*$"})
    assert bn.grade(pattern, "2026-11-24")[0] and not bn.grade(pattern, "24/11/2026")[0]


def test_normalisation_against_a_hand_computed_table() -> None:
    # Four-choice suites have a baseline of 0.25: 0.25 right scores 0, 0.625 scores 50,
    # below the baseline counts as 0; a baseline-0 suite is its accuracy.
    suites = {
        "a": {"correct": 25, "total": 40, "category": "comprehension", "baseline": 0.25},
        "b": {"correct": 4, "total": 40, "category": "comprehension", "baseline": 0.25},
        "c": {"correct": 18, "total": 20, "category": "problem_solving", "baseline": 0.0},
        "d": {"correct": 3, "total": 10, "category": "writing", "baseline": 0.0},
    }
    out = bn.combine(suites, {"comprehension": 2, "problem_solving": 1, "writing": 1})
    assert out["suites"] == {"a": 50.0, "b": 0.0, "c": 90.0, "d": 30.0}
    assert out["categories"] == {"comprehension": 25.0, "problem_solving": 90.0,
                                 "writing": 30.0}
    assert out["value"] == pytest.approx((2 * 25 + 90 + 30) / 4)  # 42.5
    assert bn.stderr(25, 40) == pytest.approx((0.625 * 0.375 / 39) ** 0.5)


@pytest.mark.parametrize("lines, problem", [
    (['{"id": "q1", "prompt": "?", "grade": {"choice": "A"}}'], "line 1: the first line must "
                                                                 "be the header"),
    (['{"suite": {"id": "s", "category": "art", "language": "en", "baseline": 0}}'],
     "line 1: 'category' must be one of"),
    (['HEADER', '{"id": "q1", "prompt": "?", "grade": {"choice": "A"}', ], "line 2: is not "
                                                                            "valid JSON"),
    (['HEADER', '{"id": "q1", "prompt": "?", "grade": {"choice": "E"}, "choices": ["a", "b"]}'],
     "line 2: grade.choice must be one of the letters A to B"),
    (['HEADER', '{"id": "q1", "prompt": "?", "grade": {"regex": "("}}'], "line 2: grade.regex "
                                                                        "does not compile"),
    (['HEADER', '{"id": "q1", "prompt": "?", "grade": {"number": 1}}',
      '{"id": "q1", "prompt": "?", "grade": {"number": 2}}'], "line 3: item id 'q1' is used "
                                                              "on line 2 already"),
    (['HEADER', '{"id": "q1", "grade": {"number": 1}}'], "line 2: give either 'prompt' or "
                                                         "'messages'"),
])
def test_a_malformed_suite_names_its_file_and_line(tmp_path: Path, lines: list[str],
                                                   problem: str) -> None:
    header = '{"suite": {"id": "s", "category": "writing", "language": "en", "baseline": 0}}'
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(header if x == "HEADER" else x for x in lines) + "\n")
    with pytest.raises(bn.SuiteError) as err:
        bn.load_suite(path)
    assert f"{path}, {problem}" in err.value.message


def test_the_sample_suites_load_and_their_reference_answers_are_right() -> None:
    suites = bn.load_suites([bn.sample_suites_dir()])
    assert {s.language for s in suites} == {"ko", "en"}
    assert {s.category for s in suites} == set(bn.CATEGORIES)
    for suite in suites:
        for it in suite.items:
            assert bn.grade(it, bn.right_answer(it))[0], (suite.id, it.id)
            assert not bn.grade(it, bn.wrong_answer(it))[0], (suite.id, it.id)


# -- runs against mock teams -------------------------------------------------------------

ITEMS = 40


def write_suites(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"suite": {"id": "quiz", "name_en": "Quiz", "category": "comprehension",
                                   "language": "en", "baseline": 0.25, "max_tokens": 32}})]
    lines += [json.dumps({"id": f"c{i}", "prompt": f"Question {i}: pick one.",
                          "choices": ["w", "x", "y", "z"], "grade": {"choice": "ABCD"[i % 4]}})
              for i in range(ITEMS // 2)]
    (folder / "quiz.jsonl").write_text("\n".join(lines) + "\n")
    lines = [json.dumps({"suite": {"id": "sums", "category": "problem_solving",
                                   "language": "ko", "baseline": 0, "max_tokens": 32}})]
    lines += [json.dumps({"id": f"n{i}", "prompt": f"{i} 더하기 {i}은?",
                          "grade": {"number": 2 * i}}) for i in range(ITEMS // 2)]
    (folder / "sums.jsonl").write_text("\n".join(lines) + "\n")


class BenchStage:
    def __init__(self, server: Server, mocks: dict[str, Mock], suites: Path) -> None:
        self.server, self.mocks, self.suites = server, mocks, suites

    def bench(self, token: str | None = OPERATOR) -> dict[str, Any]:
        with self.server.client(token) as c:
            return c.get("/api/bench").json()  # type: ignore[no-any-return]

    def wait(self, predicate: Any, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.bench()
            if got["bench"] and predicate(got["bench"]):
                return got["bench"]  # type: ignore[no-any-return]
            time.sleep(0.05)
        raise AssertionError(f"timed out; the run is {self.bench()['bench']}")

    def done(self, run: dict[str, Any], team: str) -> int:
        return sum(c["done"] for c in run["progress"][team].values())

    def items(self, run_id: int) -> list[dict[str, Any]]:
        with self.server.client(OPERATOR) as c:
            events = c.get("/api/log", params={"type": "bench_item", "limit": 5000}).json()
        return [e["data"] for e in events["events"] if e["data"]["run"] == run_id]


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BenchStage]:
    tmp = tmp_path_factory.mktemp("bench")
    write_suites(tmp / "suites")
    answers = ["--answers", str(tmp / "suites")]
    quick = ["--ttft-ms", "20", "--itl-ms", "2", *answers]
    mocks = {
        "right": Mock("--model", "right", "--accuracy", "1", *quick),
        "wrong": Mock("--model", "wrong", "--dialect", "llamacpp", "--accuracy", "0", *quick),
        "half": Mock("--model", "half", "--dialect", "plain", "--accuracy", "0.5", *quick),
        "slow": Mock("--model", "slow", "--ttft-ms", "150", "--itl-ms", "5", *answers),
    }
    yield from serve_stage(
        tmp, mocks, team("down", f"http://127.0.0.1:{free_port()}/v1")
        + '[bench]\nsuites = ["suites"]\nconcurrency = 4\nretries = 1\n'
        + "[proxy]\nconnect_timeout = 1\nfirst_token_timeout = 2\nidle_timeout = 1\n"
          "health_interval = 0.5\nhealth_timeout = 0.4\n")


def serve_stage(tmp: Path, mocks: dict[str, Mock], rest: str) -> Iterator[BenchStage]:
    """A server for ``mocks`` (one team each) and the suites in ``tmp/suites``; ``rest`` is
    the rest of the show file. Everything is stopped when the fixture ends."""
    show = tmp / "show.toml"
    show.write_text("[show]\ntitle_en = \"Bench test\"\n"
                    + "".join(team(t, f"{m.url}/v1") for t, m in mocks.items()) + rest,
                    encoding="utf-8")
    try:
        server = Server(show, tmp / "data").start()
    except BaseException:
        for mock in mocks.values():
            mock.stop()
        raise
    try:
        yield BenchStage(server, mocks, tmp / "suites")
    finally:
        server.stop()
        for mock in mocks.values():
            mock.stop()


def test_a_run_scores_every_team_and_keeps_its_accuracy_sealed(stage: BenchStage) -> None:
    viewer = Viewer(stage.server.url)
    try:
        started = stage.server.post("/api/bench", {"teams": ["right", "wrong", "half", "down"]})
        assert started.status_code == 201, started.text
        run_id = started.json()["seq"]
        run = stage.wait(lambda r: r["phase"] == "finished")
    finally:
        time.sleep(0.3)
        viewer.close()
    results = run["results"]
    assert results["right"]["suites"]["quiz"]["accuracy"] == 1.0
    assert results["right"]["score"]["value"] == 100.0
    assert results["wrong"]["suites"]["sums"]["correct"] == 0
    assert results["wrong"]["score"]["value"] == 0.0
    half = results["half"]["suites"]
    assert 8 <= half["quiz"]["correct"] + half["sums"]["correct"] <= 32  # 40 draws at 0.5
    assert half["quiz"]["stderr"] is not None
    # A team down for the whole run fails with the reason; the others finish.
    assert "down" in results["down"]["failed"] or "refused" in results["down"]["failed"]
    assert stage.done(run, "down") < ITEMS and stage.done(run, "right") == ITEMS
    # Every item of every answering team is scored exactly once.
    items = stage.items(run_id)
    assert sorted((i["suite"], i["item"]) for i in items if i["team"] == "half") == sorted(
        [("quiz", f"c{i}") for i in range(ITEMS // 2)] + [("sums", f"n{i}")
                                                          for i in range(ITEMS // 2)])
    # The run feeds round r1, so the public saw progress but not who answered right.
    public = [m for m in viewer.messages if m["type"] in ("bench_item", "bench_finished")]
    assert len(public) >= 3 * ITEMS
    assert not any("correct" in m["data"] or "answer" in m["data"] or "results" in m["data"]
                   for m in public)
    ticks = [m["data"]["bench"] for m in viewer.messages
             if m["type"] == "tick" and "bench" in m["data"]]
    assert ticks and all("accuracy" not in p for t in ticks for p in t["teams"].values())
    assert any(p["done"] for t in ticks for p in t["teams"].values())
    public_state = stage.bench(None)["bench"]
    assert public_state["results"] is None
    assert "correct" not in public_state["progress"]["right"]["quiz"]

    # Results become points only when every team answered every item, or on purpose.
    refused = stage.server.post(f"/api/bench/{run_id}/apply", {})
    assert refused.status_code == 409 and "down (" in refused.json()["error"]
    applied = stage.server.post(f"/api/bench/{run_id}/apply", {"count_errors_as_wrong": True})
    assert applied.status_code == 201, applied.text
    values = stage.server.state()["state"]["rounds"][0]["values"]["benchmark"]
    assert values["right"] == 100.0 and values["wrong"] == 0.0 and values["down"] == 0.0


def test_bad_requests_are_refused_and_leave_the_log_alone(stage: BenchStage) -> None:
    seq = stage.server.state()["seq"]
    for body, token, status, words in [
        ({}, None, 401, "needs a token"),
        ({}, PRESENTER, 403, "not allowed for the presenter role"),
        ({"suites": ["nope"]}, OPERATOR, 404, "unknown suite 'nope'"),
        ({"teams": ["kt"]}, OPERATOR, 404, "unknown team 'kt'"),
        ({"teams": []}, OPERATOR, 400, "field 'teams' is empty"),
        ({"concurrency": 0}, OPERATOR, 400, "'concurrency' must be from 1 to 64"),
        ({"round": "r1", "public": True}, OPERATOR, 400, "cannot be public"),
        ({"speed": 2}, OPERATOR, 400, "unknown field 'speed'"),
    ]:
        r = stage.server.post("/api/bench", body, token=token)
        assert r.status_code == status and words in r.json()["error"], (body, r.text)
    assert stage.server.post("/api/bench/pause", {}).status_code == 409
    assert stage.server.post("/api/bench/abc/apply", {}).status_code == 400
    assert stage.server.post("/api/bench/99999/apply", {}).status_code == 404
    # A malformed suite is refused when a run starts, naming the file and the line.
    bad = stage.suites / "broken.jsonl"
    bad.write_text('{"suite": {"id": "broken", "category": "writing", "language": "en", '
                   '"baseline": 0}}\n{"id": "x", "prompt": "?", "grade": {"choice": "Q"}}\n')
    try:
        r = stage.server.post("/api/bench", {})
        assert r.status_code == 400
        assert f"{bad}, line 2: grade.choice must be one of the letters" in r.json()["error"]
    finally:
        bad.unlink()
    assert stage.server.state()["seq"] == seq


def test_pause_resume_and_cancel(stage: BenchStage) -> None:
    started = stage.server.post("/api/bench", {"teams": ["slow"], "concurrency": 1,
                                               "round": None})
    assert started.status_code == 201, started.text
    stage.wait(lambda r: stage.done(r, "slow") >= 2)
    assert stage.server.post("/api/bench/pause", {"reason": "ad break"}).status_code == 201
    time.sleep(0.4)  # the item in flight finishes and is recorded
    paused = stage.done(stage.bench()["bench"], "slow")
    time.sleep(0.8)
    got = stage.bench()
    run = got["bench"]
    assert run["phase"] == "paused" and stage.done(run, "slow") == paused
    assert got["live"]["teams"]["slow"]["status"] == "paused"  # what every screen shows
    assert stage.server.post("/api/bench/pause", {}).status_code == 409
    assert stage.server.post("/api/bench", {}).status_code == 409  # one run at a time
    assert stage.server.post("/api/bench/resume", {}).status_code == 201
    stage.wait(lambda r: stage.done(r, "slow") > paused)
    # An exhibition run (no round) shows its accuracy to everyone.
    public = stage.bench(None)
    assert "correct" in public["bench"]["progress"]["slow"]["quiz"]
    assert "accuracy" in public["live"]["teams"]["slow"]
    assert stage.server.post("/api/bench/cancel", {"reason": "running late"}).status_code == 201
    run = stage.wait(lambda r: r["phase"] == "cancelled")
    stopped = stage.done(run, "slow")
    time.sleep(0.5)
    assert stage.done(stage.bench()["bench"], "slow") == stopped < ITEMS
    assert run["reason"] == "running late"
    # An exhibition run's results enter no round's scores unless the operator names one.
    finished_run = stage.server.post(f"/api/bench/{started.json()['seq']}/apply", {})
    assert finished_run.status_code == 409 and "cancelled" in finished_run.json()["error"]


def test_a_run_resumes_after_a_crash_without_asking_any_item_twice(stage: BenchStage) -> None:
    started = stage.server.post("/api/bench", {"teams": ["slow"], "concurrency": 2,
                                               "round": None})
    run_id = started.json()["seq"]
    stage.wait(lambda r: stage.done(r, "slow") >= 6)
    requests_before = stage.mocks["slow"].stats()["requests"]
    stage.server.kill9()
    stage.server.start(free_port())
    run = stage.wait(lambda r: r["phase"] == "finished", timeout=40)
    assert run["id"] == run_id and stage.done(run, "slow") == ITEMS
    exhibition = stage.server.post(f"/api/bench/{run_id}/apply", {})
    assert exhibition.status_code == 409 and "exhibition" in exhibition.json()["error"]
    items = stage.items(run_id)
    assert len(items) == ITEMS == len({(i["suite"], i["item"]) for i in items})
    # At most the items in flight at the kill (2) were asked again.
    asked = stage.mocks["slow"].stats()["requests"] - requests_before
    scored_before = ITEMS - asked
    assert asked <= ITEMS - 6 + 2 and scored_before >= 4


# -- the command line ------------------------------------------------------------------


def test_showcase_bench_rehearses_without_a_server(stage: BenchStage, tmp_path: Path) -> None:
    out = tmp_path / "items.json"
    done = subprocess.run(
        [sys.executable, "-m", "showcase", "bench", str(stage.suites), "--team", "right",
         "--url", f"{stage.mocks['right'].url}/v1", "--json", str(out)],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "quiz" in done.stdout and "100.0%" in done.stdout
    assert "benchmark score 100.00 / 100" in done.stdout
    assert f"{ITEMS}/{ITEMS}" in done.stderr  # the progress bar reached the end
    saved = json.loads(out.read_text())
    assert len(saved["items"]) == ITEMS and saved["summary"]["errors"] == 0

    refused = subprocess.run(
        [sys.executable, "-m", "showcase", "bench", "--team", "x",
         "--url", f"http://127.0.0.1:{free_port()}/v1"], capture_output=True, text=True,
        timeout=30)
    assert refused.returncode == 2
    assert "does not answer GET /models" in refused.stderr


LM_EVAL = {  # the shape lm-evaluation-harness 0.4 writes, trimmed
    "results": {"kmmlu": {"alias": "kmmlu", "acc,none": 0.625, "acc_stderr,none": 0.01},
                "gsm8k": {"alias": "gsm8k", "exact_match,strict-match": 0.8,
                          "exact_match_stderr,strict-match": 0.011}},
    "n-samples": {"kmmlu": {"original": 35030, "effective": 35030},
                  "gsm8k": {"original": 1319, "effective": 1319}},
    "config": {"model": "hf", "model_args": "pretrained=team/model-32b"},
}


def test_results_from_lm_evaluation_harness_become_the_benchmark_score(
        stage: BenchStage) -> None:
    tasks = {"kmmlu": {"category": "comprehension", "baseline": 0.25, "language": "ko"},
             "gsm8k": {"category": "problem_solving", "baseline": 0}}
    seq = stage.server.state()["seq"]
    for body, words in [
        ({"team": "half", "results": {"nope": 1}, "tasks": tasks}, "lm-evaluation-harness"),
        ({"team": "half", "results": LM_EVAL, "tasks": {"arc": tasks["gsm8k"]}},
         "task 'arc' is not in the results"),
        ({"team": "half", "results": LM_EVAL,
          "tasks": {"kmmlu": {"category": "maths", "baseline": 0.25}}},
         "field 'tasks.kmmlu.category' must be one of comprehension"),
        ({"team": "half", "results": LM_EVAL,
          "tasks": {"kmmlu": {**tasks["kmmlu"], "metric": "f1"}}}, "no accuracy from 0 to 1"),
    ]:
        r = stage.server.post("/api/bench/import", body)
        assert r.status_code == 400 and words in r.json()["error"], r.text

    def recorded_since(seq: int) -> list[str]:  # the health checks record meanwhile
        with stage.server.client(OPERATOR) as c:
            events = c.get("/api/log", params={"since": seq}).json()["events"]
        return [e["type"] for e in events if e["type"] != "team_health"]

    assert recorded_since(seq) == []
    body = {"team": "half", "results": LM_EVAL, "tasks": tasks, "reason": "offline run"}
    with stage.server.client(OPERATOR) as c:
        r = c.post("/api/bench/import", json=body, headers={"Idempotency-Key": "import-1"})
        assert r.status_code == 201, r.text
        # Sent again with its Idempotency-Key: the first answer, nothing more recorded.
        again = c.post("/api/bench/import", json=body, headers={"Idempotency-Key": "import-1"})
    assert (again.status_code, again.json()) == (201, r.json())
    assert recorded_since(seq) == ["bench_imported", "score_entered"]
    # kmmlu: (0.625 - 0.25) / 0.75 = 50; gsm8k: 80; equal category weights: 65.
    assert r.json()["value"] == 65.0
    state = stage.server.state()["state"]
    assert state["rounds"][0]["values"]["benchmark"]["half"] == 65.0
    imported = state["bench_imports"]["half"]
    assert imported["source"] == "pretrained=team/model-32b"
    assert imported["suites"]["kmmlu"]["items"] == 35030
    assert imported["suites"]["gsm8k"]["metric"] == "exact_match,strict-match"
    assert "bench_imports" not in stage.server.state(None)["state"]  # sealed like any score
