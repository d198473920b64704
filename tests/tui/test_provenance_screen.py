"""The console's provenance section against a real server with models on disk: start a
check through the desk's dialog, see it recorded sealed with its verdicts, announce it
through the confirm dialog, and see a refusal as the server words it."""

from __future__ import annotations

from pathlib import Path

import httpx
from showcase_tui.app import ConsoleApp
from textual.widgets import DataTable, Input

from tests.conftest import Server
from tests.test_provenance_show import models, show  # noqa: F401  (fixtures)
from tests.tui.conftest import console, until
from tests.tui.test_console import cells, shown


def public_findings(srv: Server) -> list[dict[str, object]]:
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        return c.get("/api/state").json()["state"]["provenance"]  # type: ignore[no-any-return]


def fill(app: ConsoleApp, **values: str) -> None:
    for name, value in values.items():
        app.screen.query_one(f"#field-{name}", Input).value = value


async def test_provenance_screen_starts_a_check_and_announces_its_finding(
        show: Server, models: Path) -> None:  # noqa: F811
    async with console(show, size=(140, 36)) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await pilot.press("9")
        await pilot.press("s")
        await until(pilot, lambda: app.screen.query("#field-team"), what="the start dialog")
        assert "recorded sealed" in shown(app, "#dialog-explain")
        fill(app, team="naver", reference="Qwen2.5-VL", component="vision")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not app.screen.query("#field-team"), what="dialog closed")

        def sealed() -> str | None:
            return next((k for k, r in cells(app, "#checks").items()
                         if r[1] == "naver" and r[4] == "sealed" and r[3] == "vision"), None)

        await until(pilot, sealed, timeout=60, what="the check recorded")
        key = sealed()
        assert key is not None
        row = cells(app, "#checks")[key]
        assert row[2] == "Qwen2.5-VL" and row[5].startswith("vision derived")
        assert public_findings(show) == []  # sealed: nothing for the public yet

        table = app.screen.query_one("#checks", DataTable)
        table.move_cursor(row=list(cells(app, "#checks")).index(key))
        await pilot.pause()
        assert "100.0% of the weights identical" in shown(app, "#prov-detail")
        await pilot.press("a")
        await until(pilot, lambda: app.screen.query("#dialog-explain"), what="announce dialog")
        assert "becomes public" in shown(app, "#dialog-explain")
        assert "vision: derived" in shown(app, "#dialog-explain")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: cells(app, "#checks")[key][4] == "announced",
                    what="the row announced")
        seq = int(key.removeprefix("seq-"))
        assert any(f["check"] == seq for f in public_findings(show))


async def test_provenance_screen_shows_a_refusal_as_the_server_words_it(
        show: Server) -> None:  # noqa: F811
    async with console(show, size=(140, 36)) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await pilot.press("9", "s")
        await until(pilot, lambda: app.screen.query("#field-team"), what="the start dialog")
        fill(app, team="naver", reference="/etc")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "outside the folders allowed" in shown(app, "#dialog-error"),
                    what="the refusal in the dialog")
        await pilot.press("escape")
        await until(pilot, lambda: not app.screen.query("#field-team"), what="dialog closed")
