"""The console's Votes screen (8): the operator opens voting with a battle pool, watches the
counts per pair, the refusals and the flagged voters, and closes it; never who is winning."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
from showcase_tui.app import ConsoleApp
from showcase_tui.widgets.dialog import ActionDialog
from textual.widgets import Input

from tests.conftest import OPERATOR, Server
from tests.test_votes import Voter
from tests.tui.conftest import TEAMS, console, until
from tests.tui.test_console import cells, shown


def write_pool(folder: Path) -> Path:
    path = folder / "pool.json"
    path.write_text(json.dumps([
        {"id": f"p{p}", "text": f"prompt number {p}",
         "answers": {t: f"answer of team number {i} to prompt {p}"
                     for i, t in enumerate(TEAMS)}}
        for p in range(3)]), encoding="utf-8")
    return path


def fill(app: ConsoleApp, **values: str) -> None:
    for name, value in values.items():
        app.screen.query_one(f"#field-{name}", Input).value = value


def vote_early_then_on_time(srv: Server) -> int:
    """One voter votes at once (refused: too soon, kept with the reason), then again once
    the battle's second is up (counted). Returns the status of the early vote."""
    voter = Voter(srv)
    try:
        battle = voter.battle()
        early = voter.vote(battle, "a").status_code
        time.sleep(1.2)
        assert voter.vote(battle, "a").status_code == 201
        return early
    finally:
        voter.close()


def operator_status(srv: Server) -> dict[str, Any]:
    with srv.client(OPERATOR) as op:
        return op.get("/api/rounds/r1/voting").json()  # type: ignore[no-any-return]


async def test_votes_screen_opens_watches_and_closes_voting_without_the_split(
        quiet: Server, tmp_path: Path) -> None:
    async with console(quiet, size=(120, 34)) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await pilot.press("8")
        await until(pilot, lambda: "voting not opened" in shown(app, "#votes-line"),
                    what="the screen read the figures")
        seq = app.model.seq
        # A pool file that is not there: the dialog says so and nothing is sent.
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog), what="the dialog")
        assert "ON AIR: voting opens on round r1" in shown(app, "#dialog-explain")
        fill(app, pool=str(tmp_path / "missing.json"), min_seconds="1")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "cannot read the battle pool" in shown(app, "#dialog-error"),
                    what="the refusal")
        assert app.model.seq == seq
        # The criterion this show's tally enters is its benchmark (it has no "feedback").
        assert app.screen.query_one("#field-criterion", Input).value == "benchmark"
        fill(app, pool=str(write_pool(tmp_path)))
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, ActionDialog), what="sent")
        await until(pilot, lambda: "VOTING OPEN" in shown(app, "#votes-line"), what="open")

        assert await asyncio.to_thread(vote_early_then_on_time, quiet) == 429
        await until(pilot, lambda: "1 votes counted" in shown(app, "#votes-line"), what="1 vote")
        pairs = cells(app, "#pairs")
        assert len(pairs) == 1
        [(label, count, share)] = pairs.values()
        assert " – " in label and count == "1" and share == "100.0%"
        refused = shown(app, "#refusals")
        assert "Refused by rule" in refused
        assert any(rule in refused for rule in operator_status(quiet)["refused"])
        assert "50.0% refused" in shown(app, "#votes-line")

        # Closing asks first, names the votes, and the tally stays sealed on screen too.
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog), what="the dialog")
        assert "the 1 counted vote(s) are tallied" in shown(app, "#dialog-explain")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "VOTING CLOSED" in shown(app, "#votes-line"), what="closed")
        line = shown(app, "#votes-line")
        assert "sealed until the reveal" in line
        tally = operator_status(quiet)["tally"]
        figures = {f"{r[k]:.2f}" for r in tally["results"] for k in ("points", "rating")}
        screen_text = line + shown(app, "#refusals") + json.dumps(cells(app, "#pairs"))
        assert figures and not any(f in screen_text for f in figures - {"0.00"})
        assert "rank" not in screen_text.lower() and "points" not in screen_text.lower()
        public = httpx.get(f"{quiet.url}/api/state").json()
        assert public["seq"] == app.model.seq  # the console followed the closing event


async def test_votes_screen_close_is_refused_by_key_when_voting_is_not_open(
        quiet: Server) -> None:
    async with console(quiet) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await pilot.press("8")
        await until(pilot, lambda: "voting not opened" in shown(app, "#votes-line"))
        await pilot.press("c")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ActionDialog)
        assert any("o opens it" in str(n.message) for n in app._notifications)
