"""The benchmark-progress page in a real browser, against a real run on mock teams."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.overlays.conftest import settle, shot
from tests.test_bench import ITEMS, BenchStage, serve_stage, write_suites
from tests.test_proxy import Mock


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BenchStage]:
    tmp = tmp_path_factory.mktemp("bench-page")
    write_suites(tmp / "suites")
    answers = ["--answers", str(tmp / "suites")]
    mocks = {"lg": Mock("--model", "lg", "--accuracy", "1", "--ttft-ms", "60", *answers),
             "skt": Mock("--model", "skt", "--accuracy", "0.5", "--ttft-ms", "90", *answers)}
    yield from serve_stage(tmp, mocks, '[bench]\nsuites = ["suites"]\nconcurrency = 2\n'
                                       "[proxy]\nhealth_interval = 0\n")


def figures(page: Page) -> list[str]:
    return page.locator(".bench .row .total .figs").all_inner_texts()


def test_progress_fills_live_and_a_sealed_run_shows_no_accuracy(stage: BenchStage,
                                                                 page: Page) -> None:
    page.goto(f"{stage.server.url}/overlays/bench.html?lang=ko")
    page.wait_for_selector("#sub:has-text('아직')")  # no run yet, said in Korean
    run = stage.server.post("/api/bench", {}).json()["seq"]  # for round r1: sealed
    page.wait_for_selector(".bench.on .row")
    assert page.locator(".bench .head span").all_inner_texts()[2:] == ["quiz", "sums", "전체"]
    # Bars move while the run goes on, from the tick frames and the public item events.
    page.wait_for_function("() => [...document.querySelectorAll('.bench .total .figs b')]"
                           ".some((b) => Number(b.textContent) > 0)")
    stage.wait(lambda r: r["id"] == run and r["phase"] == "finished")
    page.wait_for_function("() => [...document.querySelectorAll('.bench .total .figs b')]"
                           f".every((b) => b.textContent === '{ITEMS}')")
    text = " ".join(figures(page))
    assert "%" not in text and "완료" in text  # finished, and no accuracy: the run is sealed
    assert "정확도는 결과 발표 때까지 비공개입니다" in page.inner_text("#sub")
    settle(page)
    shot(page, "bench-sealed-ko.png")


def test_an_exhibition_run_shows_each_teams_accuracy(stage: BenchStage, page: Page) -> None:
    page.goto(f"{stage.server.url}/overlays/bench.html")
    stage.server.post("/api/bench", {"round": None}).raise_for_status()
    stage.wait(lambda r: r["public"] and r["phase"] == "finished")
    page.wait_for_function("() => document.querySelectorAll('.bench .row.finished').length == 2")
    lg, skt = figures(page)
    assert "100.0% right" in lg  # the mock that is always right
    assert "% right" in skt and "±" not in skt  # in words, no statistician's jargon
    assert "Exhibition run" in page.inner_text("#sub")
    settle(page)
    shot(page, "bench-exhibition-en.png")
    assert Path(__file__).resolve().parents[2].joinpath(
        "test-artifacts", "overlays", "bench-exhibition-en.png").exists()


@pytest.fixture
def two_rounds(tmp_path: Path) -> Iterator[BenchStage]:
    """A show of two rounds and two mock teams, for what happens between rounds."""
    write_suites(tmp_path / "suites")
    answers = ["--answers", str(tmp_path / "suites")]
    mocks = {team: Mock("--model", team, "--ttft-ms", "20", *answers) for team in ("lg", "skt")}
    yield from serve_stage(tmp_path, mocks, (
        '[bench]\nsuites = ["suites"]\n[proxy]\nhealth_interval = 0\n'
        '[[criteria]]\nid = "benchmark"\npoints = 60\n'
        '[[criteria]]\nid = "feedback"\npoints = 40\n'
        '[[rounds]]\nid = "r1"\ncut = { advance = 2 }\n'
        '[[rounds]]\nid = "r2"\ncut = { advance = 1 }\n'))


def test_a_finished_run_leaves_the_air_when_the_show_moves_to_another_round(
        two_rounds: BenchStage, page: Page) -> None:
    """Issue 19, finding 6: the last run stayed on screen for good, into the next round."""
    server = two_rounds.server
    page.goto(f"{server.url}/overlays/bench.html")
    server.post("/api/bench", {"round": None}).raise_for_status()
    two_rounds.wait(lambda r: r["phase"] == "finished")
    page.wait_for_selector(".bench.on .row.finished")
    for team in ("lg", "skt"):
        for criterion, value in (("benchmark", 50), ("feedback", 30)):
            server.post("/api/scores", {"criterion": criterion, "team": team,
                                        "value": value}).raise_for_status()
    assert server.post("/api/rounds/r1/publish").status_code == 201
    page.wait_for_timeout(500)
    assert page.locator(".bench.on").count() == 1  # the round is over; the show is still in it
    assert server.post("/api/rounds/r2/start").status_code == 201
    page.wait_for_selector(".bench:not(.on)", state="attached")
    assert "No benchmark run yet" in page.inner_text("#sub")
