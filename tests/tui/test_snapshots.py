"""Snapshots of the main screens at 80x24 and one wide, against a real server whose show has
nothing live (no health checks, no demo), so that every figure on screen is fixed. Review a
changed snapshot with the report pytest-textual-snapshot writes; accept it with
``pytest tests/tui --snapshot-update``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from showcase_tui.app import ConsoleApp
from textual.pilot import Pilot

from tests.conftest import OPERATOR, Server
from tests.tui.conftest import SCORED_SEQ, until


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


def test_overview_80x24(quiet: Server, snap_compare: Any) -> None:
    app = ConsoleApp(quiet.url, OPERATOR)
    assert snap_compare(app, terminal_size=(80, 24), run_before=opened(quiet, SCORED_SEQ))


def test_scores_80x24(quiet: Server, snap_compare: Any) -> None:
    quiet.post("/api/teams/upstage/disqualify", {"reason": "weights copied"})
    app = ConsoleApp(quiet.url, OPERATOR)
    assert snap_compare(app, terminal_size=(80, 24),
                        run_before=opened(quiet, SCORED_SEQ + 1, ("3",)))


def test_reveal_mid_way_80x24_and_wide(quiet: Server, snap_compare: Any) -> None:
    quiet.post("/api/rounds/r1/freeze")
    for step in (1, 2, 3):
        assert quiet.post("/api/reveal/goto", {"to": step}).status_code == 201
    seq = SCORED_SEQ + 4
    for size in ((80, 24), (140, 32)):
        app = ConsoleApp(quiet.url, OPERATOR)
        assert snap_compare(app, terminal_size=size, run_before=opened(
            quiet, seq, ("4",), ready=lambda app: len(app.model.steps()) > 0))
