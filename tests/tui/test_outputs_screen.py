"""The console's Air section (issue 19): the outputs on air, listed from GET /api/outputs,
reloaded through their own connections, and the graphics taken and cleared with a confirm."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from showcase_tui.app import ConsoleApp
from showcase_tui.widgets.dialog import ActionDialog, PickDialog
from textual.widgets import DataTable
from websockets.sync.client import ClientConnection, connect

from tests.conftest import OPERATOR, Server
from tests.tui.conftest import SCORED_SEQ, console, state, until
from tests.tui.test_console import cells, shown
from tests.tui.test_snapshots import opened


def hello(**fields: Any) -> str:
    return orjson.dumps({"type": "hello", "page": "lower-third", "lang": "ko",
                         "seq": SCORED_SEQ, "build": "0123456789ab",
                         "options": {"team": "lg", "lang": "ko"}, "obs": "program", **fields}
                        ).decode()


@contextmanager
def output(srv: Server, message: str) -> Iterator[ClientConnection]:
    """A page's connection, as an overlay inside OBS opens it, that has said hello."""
    with connect(srv.url.replace("http://", "ws://") + "/ws") as ws:
        ws.send(message)
        yield ws


def reload_received(ws: ClientConnection) -> dict[str, Any]:
    while True:
        message = orjson.loads(ws.recv(timeout=10))
        if message["type"] == "reload":
            return message  # type: ignore[no-any-return]


async def test_the_air_section_lists_outputs_reloads_one_and_clears_a_graphic(
        quiet: Server) -> None:
    with output(quiet, hello()) as page:
        async with console(quiet, size=(80, 24)) as pilot:
            app: ConsoleApp = pilot.app  # type: ignore[assignment]
            await pilot.press("7")
            table = app.screen.query_one("#outputs", DataTable)
            await until(pilot, lambda: table.row_count == 1,
                        what="the output listed")
            row = cells(app, "#outputs")["o1"]
            assert row[1:4] == ["lower-third team=lg", "ko", "0123456"]
            assert row[-1] == "PROGRAM" and row[-2] == "live"
            assert "1 on an older build" in shown(app, "#outputs-line")  # its hash is not ours
            # Reload: a confirm first, then the page's own connection is told.
            await pilot.press("r")
            await until(pilot, lambda: isinstance(app.screen, ActionDialog))
            assert "Reload o1 (lower-third)?" in shown(app, "#dialog-title")
            await pilot.press("ctrl+s")
            message = await asyncio.to_thread(reload_received, page)
            assert message["data"]["build"] != "0123456789ab"
            # Clear the ticker: pick it, confirm, and the log has it.
            await until(pilot, lambda: not isinstance(app.screen, ActionDialog))
            await pilot.press("c")
            await until(pilot, lambda: isinstance(app.screen, PickDialog))
            await pilot.press("down", "down", "down", "enter")  # the fourth: the ticker
            await until(pilot, lambda: isinstance(app.screen, ActionDialog))
            assert "Clear the ticker?" in shown(app, "#dialog-title")
            await pilot.press("ctrl+s")
            await until(pilot, lambda: "ticker CLEAR" in shown(app, "#graphics-line"),
                        what="the ticker cleared")
            assert (await state(quiet))["state"]["graphics"]["ticker"] is False
            # Taking offers only what is clear now.
            await pilot.press("t")
            await until(pilot, lambda: isinstance(app.screen, PickDialog))
            await pilot.press("escape")


def test_air_80x24(quiet: Server, snap_compare: Any) -> None:
    with output(quiet, hello()), output(quiet, hello(page="ticker", lang="en", options={},
                                                     obs=None, seq=SCORED_SEQ - 2)):
        app = ConsoleApp(quiet.url, OPERATOR)
        assert snap_compare(app, terminal_size=(80, 24), run_before=opened(
            quiet, SCORED_SEQ, ("7",),
            ready=lambda app: app.screen.query_one("#outputs", DataTable).row_count == 2))
