"""The console's benchmark screen against a real server whose teams are one real mock team
that answers the sample suites right four times in five."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from showcase_tui.app import ConsoleApp
from showcase_tui.screens.bench import StartDialog
from showcase_tui.widgets.dialog import ActionDialog
from showcase_tui.wording import fmt_num
from textual.widgets import DataTable, Input, SelectionList

import showcase
from tests.conftest import Server
from tests.test_proxy import Mock
from tests.tui.conftest import console, post, score, state, until, write_show
from tests.tui.test_console import cells, shown

SUITES = Path(showcase.__file__).parent / "suites"


@pytest.fixture(scope="module")
def answering_team() -> Iterator[Mock]:
    mock = Mock("--answers", str(SUITES), "--accuracy", "0.8", "--ttft-ms", "60",
                "--itl-ms", "2")
    yield mock
    mock.stop()


@pytest.fixture
def bench_stage(tmp_path: Path, answering_team: Mock) -> Iterator[Server]:
    srv = Server(write_show(tmp_path, f"{answering_team.url}/v1", 0.5),
                 tmp_path / "data").start()
    try:
        score(srv)
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def slow_bench_stage(tmp_path: Path) -> Iterator[Server]:
    """Teams that take 250 ms an item: a run of 24 items lasts 6 s, long enough to pause
    through a dialog on a loaded machine."""
    mock = Mock("--answers", str(SUITES), "--accuracy", "0.8", "--ttft-ms", "250",
                "--itl-ms", "2")
    srv = Server(write_show(tmp_path, f"{mock.url}/v1", 0.5), tmp_path / "data").start()
    try:
        score(srv)
        yield srv
    finally:
        srv.stop()
        mock.stop()


def phase(app: ConsoleApp) -> str:
    return str((app.model.bench() or {}).get("phase"))


async def test_bench_run_started_here_fills_finishes_and_its_results_are_entered(
        bench_stage: Server) -> None:
    async with console(bench_stage) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await pilot.press("6", "s")
        await until(pilot, lambda: isinstance(app.screen, StartDialog))
        suites = app.screen.query_one("#start-suites", SelectionList)
        suites.deselect_all()
        suites.select("ko-math")
        await pilot.pause()
        explain = shown(app, "#dialog-explain")
        assert "12 items (1 suites) against 3 teams" in explain
        assert "round r1's benchmark criterion" in explain
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, ActionDialog))
        await until(pilot, lambda: phase(app) == "finished" and all(
            r[1] == "finished" for r in cells(app, "#progress").values()))
        progress = cells(app, "#progress")
        assert list(progress) == ["lg", "skt", "upstage"]
        assert all("12/12" in row[2] and row[1] == "finished" for row in progress.values())
        # Sealed from the public, but the operator sees the accuracy and the results.
        assert all("%" in row[6] for row in progress.values())
        results = (app.model.bench() or {})["results"]
        score_row = cells(app, "#results")["--score--"]
        assert score_row[1] == fmt_num(results["lg"]["score"]["value"])

        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        lg = results["lg"]["score"]["value"]
        assert f"lg         80 → {fmt_num(lg)}" in shown(app, "#dialog-explain")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, ActionDialog))
        values = (await state(bench_stage))["state"]["rounds"][0]["values"]["benchmark"]
        assert values == {t: r["score"]["value"] for t, r in results.items()}


async def test_bench_run_pauses_and_resumes_from_the_screen(slow_bench_stage: Server) -> None:
    bench_stage = slow_bench_stage
    async with console(bench_stage) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await pilot.press("6")
        # Another desk starts a run of 24 items a team, one at a time (6 s).
        answer = await post(bench_stage, "/api/bench", {"suites": ["ko-math", "ko-reading"],
                                                        "teams": ["lg", "skt"],
                                                        "concurrency": 1})
        assert answer.status_code == 201
        await until(pilot, lambda: phase(app) == "running")
        await pilot.press("p")  # it asks first, like every change the public sees
        await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        await pilot.press("enter")
        await until(pilot, lambda: {r[1] for r in cells(app, "#progress").values()}
                    == {"paused"}, what="both teams paused")
        assert " paused " in shown(app, "#bench-line")
        assert "r resumes" in shown(app, "#bench-note")
        await pilot.pause(0.3)  # the items in flight finish and are recorded; no new one starts
        stopped = [r[2] for r in cells(app, "#progress").values()]
        await pilot.pause(0.3)
        assert [r[2] for r in cells(app, "#progress").values()] == stopped
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        assert "goes on for every team" in shown(app, "#dialog-explain")
        await pilot.press("enter")
        await until(pilot, lambda: all("24/24" in r[2] and r[1] == "finished"
                                       for r in cells(app, "#progress").values()), timeout=60)
        assert phase(app) == "finished"
        # The console's pause and resume carry its Idempotency-Key into the log (the start
        # came from another desk, without one).
        with bench_stage.client() as op:
            events = op.get("/api/log", params={"type": "bench_started,bench_paused,"
                                                "bench_resumed", "last": 3}).json()["events"]
        assert [(e["type"], len(e.get("key", ""))) for e in events] == [
            ("bench_started", 0), ("bench_paused", 32), ("bench_resumed", 32)]


async def test_bench_refusals_are_shown_as_the_server_words_them(bench_stage: Server) -> None:
    async with console(bench_stage) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await pilot.press("6", "s")
        await until(pilot, lambda: isinstance(app.screen, StartDialog))
        app.screen.query_one("#field-concurrency", Input).value = "0"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: shown(app, "#dialog-error") != "")
        assert "field 'concurrency' must be from 1 to 64, not 0" in shown(app, "#dialog-error")
        assert app.model.bench() is None  # nothing started


async def test_every_progress_column_fits_80_columns(bench_stage: Server) -> None:
    async with console(bench_stage, size=(80, 24)) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await pilot.press("6")
        answer = await post(bench_stage, "/api/bench", {"suites": ["ko-math"],
                                                        "concurrency": 1})
        assert answer.status_code == 201
        await until(pilot, lambda: phase(app) == "finished" and all(
            "%" in r[6] for r in cells(app, "#progress").values()), what="the run's end")
        table = app.screen.query_one("#progress", DataTable)
        labels = [str(c.label) for c in table.ordered_columns]
        assert labels[3:] == ["Err", "it/s", "ETA", "Accuracy ± se"]
        # Errors, rate, time left and accuracy stay on screen: no column is past the edge.
        widths = sum(c.get_render_width(table) for c in table.ordered_columns)
        assert widths <= table.scrollable_content_region.width
