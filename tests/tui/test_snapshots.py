"""Snapshots of every screen at 80x24 (the smallest terminal a desk may have) and at
160x48, against a real server whose show has nothing live (no health checks, no demo), so
that every figure on screen is fixed; the clock of each event is pinned, as it is the time
of the test run. Review a changed snapshot with the report pytest-textual-snapshot writes;
accept it with ``pytest tests/tui --snapshot-update``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from showcase_tui.app import ConsoleApp
from showcase_tui.screens import log, overview
from textual.pilot import Pilot

from tests.conftest import OPERATOR, Server
from tests.tui.conftest import SCORED_SEQ, until

SIZES = [(80, 24), (160, 48)]


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (log, overview):
        monkeypatch.setattr(module, "fmt_clock", lambda ts: "12:00:00")


def opened(srv: Server, seq: int, keys: tuple[str, ...] = (),
           ready: Callable[[ConsoleApp], Any] = lambda app: True
           ) -> Callable[[Pilot[Any]], Any]:
    """Wait until the console shows the show at ``seq``, then press ``keys``."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await until(pilot, lambda: app.model.connected and app.model.state_seq == seq
                    and len(app.model.events) >= seq, what=f"seq {seq}")
        await pilot.press(*keys)
        await until(pilot, lambda: ready(app))
        await pilot.pause(0.2)

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_overview(quiet: Server, snap_compare: Any, size: tuple[int, int]) -> None:
    app = ConsoleApp(quiet.url, OPERATOR)
    assert snap_compare(app, terminal_size=size, run_before=opened(quiet, SCORED_SEQ))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_demo(quiet: Server, snap_compare: Any, size: tuple[int, int]) -> None:
    app = ConsoleApp(quiet.url, OPERATOR)
    assert snap_compare(app, terminal_size=size, run_before=opened(
        quiet, SCORED_SEQ, ("2", "escape"), ready=lambda app: app.screen.query("TickBox")))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_scores(quiet: Server, snap_compare: Any, size: tuple[int, int]) -> None:
    quiet.post("/api/teams/upstage/disqualify", {"reason": "weights copied"})
    app = ConsoleApp(quiet.url, OPERATOR)
    assert snap_compare(app, terminal_size=size,
                        run_before=opened(quiet, SCORED_SEQ + 1, ("3",)))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_reveal_mid_way(quiet: Server, snap_compare: Any, size: tuple[int, int]) -> None:
    quiet.post("/api/rounds/r1/freeze")
    for step in (1, 2, 3):
        assert quiet.post("/api/reveal/goto", {"to": step}).status_code == 201
    app = ConsoleApp(quiet.url, OPERATOR)
    assert snap_compare(app, terminal_size=size, run_before=opened(
        quiet, SCORED_SEQ + 4, ("4",), ready=lambda app: len(app.model.steps()) > 0))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_log(quiet: Server, snap_compare: Any, size: tuple[int, int]) -> None:
    app = ConsoleApp(quiet.url, OPERATOR)
    assert snap_compare(app, terminal_size=size, run_before=opened(quiet, SCORED_SEQ, ("5",)))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_bench_before_any_run(quiet: Server, snap_compare: Any, size: tuple[int, int]) -> None:
    app = ConsoleApp(quiet.url, OPERATOR)
    assert snap_compare(app, terminal_size=size, run_before=opened(quiet, SCORED_SEQ, ("6",)))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_votes_before_voting(quiet: Server, snap_compare: Any, size: tuple[int, int]) -> None:
    app = ConsoleApp(quiet.url, OPERATOR)
    assert snap_compare(app, terminal_size=size, run_before=opened(
        quiet, SCORED_SEQ, ("8",), ready=lambda app: app.screen.query_one("#votes-line")
        .content.plain.endswith("o opens it with a battle pool")))


def test_help_80x24(quiet: Server, snap_compare: Any) -> None:
    app = ConsoleApp(quiet.url, OPERATOR)
    assert snap_compare(app, terminal_size=(80, 24), run_before=opened(quiet, SCORED_SEQ,
                                                                        ("3", "f1")))
