"""Desk safety (issue 20): the console never surprises the people running the show. A text
field gives up the focus once it sends; whatever goes on air asks first, in a dialog that
names what will happen, whose confirm button is reached the same way everywhere; actions
chosen by name ask for their target; refusals name the key to press."""

from __future__ import annotations

from typing import Any

from showcase_tui.app import SECTIONS, ConsoleApp
from showcase_tui.widgets.dialog import ActionDialog, PickDialog
from showcase_tui.widgets.tickbox import TickBox
from showcase_tui.wording import DESK_KEYS, in_keys
from textual.binding import Binding
from textual.widgets import Button, Checkbox, DataTable, Input

from tests.conftest import Server
from tests.tui.conftest import console, post, state, until
from tests.tui.test_console import cells, shown, toasts


def palette(app: ConsoleApp, title: str) -> Any:
    """The command the palette runs for ``title``, as Ctrl+P lists it."""
    return next(c for c in app.get_system_commands(app.screen) if c.title == title).callback


async def test_a_sent_prompt_gives_up_the_focus_and_the_demo_asks_first(quiet: Server) -> None:
    async with console(quiet) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await pilot.press("2")
        await until(pilot, lambda: len(app.screen.query(Checkbox)) == 3, what="team boxes")
        # On arrival no field has the focus: the section keys still move between screens.
        assert app.screen.focused is None
        await pilot.press("5")
        await until(pilot, lambda: app.screen.id == "screen-log", what="the log screen")
        await pilot.press("2")
        assert app.screen.query_one("#prompt", Input).value == ""
        await pilot.press("ctrl+l", *"Introduce your model.", "enter")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog), what="the dialog")
        explain = shown(app, "#dialog-explain")
        assert "ON AIR: LG AI Research, SK Telecom, Upstage answer this prompt" in explain
        assert "Prompt: Introduce your model." in explain
        await pilot.press("escape")  # cancelled: nothing is sent
        await until(pilot, lambda: not isinstance(app.screen, ActionDialog))
        # What the operator types next are keys: 5 goes to the log, / filters it.
        await pilot.press("5", "slash", *"type:score", "enter")
        await until(pilot, lambda: app.screen.query_one("#filter", Input).value
                    == "type:score", what="the filter typed")
        await pilot.press("2")
        assert app.screen.query_one("#prompt", Input).value == "Introduce your model."
        seq = (await state(quiet))["seq"]
        assert seq == app.model.seq and app.model.demo() is None  # no demo was sent


async def test_an_unticked_box_reads_unticked(quiet: Server) -> None:
    async with console(quiet) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await pilot.press("2")
        await until(pilot, lambda: len(app.screen.query(Checkbox)) == 3, what="team boxes")
        boxes = {b.name: b for b in app.screen.query(TickBox)}
        boxes["skt"].value = False
        await pilot.pause()
        assert str(boxes["skt"].render()).startswith("[ ] skt")
        assert str(boxes["lg"].render()).startswith("[x] lg")


async def test_reveal_speed_asks_and_tab_then_enter_confirms_in_every_dialog(
        quiet: Server) -> None:
    await post(quiet, "/api/rounds/r1/freeze")
    await post(quiet, "/api/reveal/lock", {"locked": True, "reason": "ad break"})
    async with console(quiet) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await pilot.press("4")
        await until(pilot, lambda: app.model.steps())
        await pilot.press("plus")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        assert "reveal's animations at 1.25× speed (now 1×)" in shown(app, "#dialog-explain")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ActionDialog))
        assert app.model.reveal()["speed"] == 1  # type: ignore[index]
        # A dialog with no field: the confirm button has the focus, Tab keeps it there.
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        assert app.screen.focused is app.screen.query_one("#confirm", Button)
        assert "Esc: cancel" in shown(app, "#dialog-keys")
        await pilot.press("tab", "enter")
        await until(pilot, lambda: not (app.model.reveal() or {}).get("locked"),
                    what="the presenter unlocked")
        # A dialog with a field: Tab from the field reaches the same confirm button.
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        assert app.screen.focused is app.screen.query_one("#field-reason", Input)
        await pilot.press(*"break", "tab")
        assert app.screen.focused is app.screen.query_one("#confirm", Button)
        await pilot.press("enter")
        await until(pilot, lambda: (app.model.reveal() or {}).get("locked"), what="locked")


async def test_a_palette_action_asks_for_its_team(quiet: Server) -> None:
    async with console(quiet) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await palette(app, "Scores: Disqualify (d)")()
        await until(pilot, lambda: isinstance(app.screen, PickDialog), what="the team picker")
        await pilot.press("down", "enter")  # the second team: SK Telecom
        await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        assert "SK Telecom is disqualified in round r1" in shown(app, "#dialog-explain")
        await pilot.press("escape")
        await palette(app, "Scores: Reinstate (i)")()
        await until(pilot, lambda: any("No team can be reinstated now" in t
                                       for t in toasts(app)))
        assert not isinstance(app.screen, PickDialog | ActionDialog)


async def test_a_frozen_round_names_the_key_that_unfreezes_it(quiet: Server) -> None:
    await post(quiet, "/api/rounds/r1/freeze")
    async with console(quiet) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await pilot.press("3")
        table = app.screen.query_one("#scores", DataTable)
        await until(pilot, lambda: table.row_count == 3)
        table.move_cursor(row=0, column=2)
        await pilot.pause()
        line = shown(app, "#cell-line")
        assert "Enter to correct" not in line
        assert "press u on the Reveal screen (4)" in line
        for key in ("enter", "d"):
            await pilot.press(key)
            await pilot.pause(0.2)
            assert not isinstance(app.screen, ActionDialog)  # refused before any dialog
        assert any("press u on the Reveal screen (4) to unfreeze" in t for t in toasts(app))
        assert not any("/api/" in t for t in toasts(app))


def test_every_key_a_refusal_names_is_bound_on_its_screen() -> None:
    keys = {s.id: {b.key for b in s.screen.BINDINGS if isinstance(b, Binding)}
            for s in SECTIONS}
    for _, section, key, _ in DESK_KEYS:
        assert key in keys[section], (section, key)
    assert in_keys('arm it\nPOST /api/reveal/arm with {"to": 18}, then next') == (
        "arm it\npress a on the Reveal screen (4) to arm step 18, then n to show it")


async def test_reinstating_an_announced_disqualification_announces_it_or_warns(
        quiet: Server) -> None:
    await post(quiet, "/api/teams/upstage/disqualify", {"reason": "weights", "announce": True})
    await post(quiet, "/api/teams/skt/withdraw", {"reason": "asked to"})  # sealed
    async with console(quiet) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await pilot.press("3")
        table = app.screen.query_one("#scores", DataTable)
        await until(pilot, lambda: cells(app, "#scores")["upstage"][1] == "disq.")
        table.move_cursor(row=2, column=0)
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        announce = app.screen.query_one("#field-announce", Checkbox)
        assert announce.value is True  # the public was told: undoing it is told too
        assert "ANNOUNCED" in shown(app, "#dialog-explain")
        announce.value = False
        await pilot.pause()
        assert "WARNING: viewers were told Upstage is disqualified" in shown(
            app, "#dialog-explain")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ActionDialog))
        table.move_cursor(row=1, column=0)  # skt's withdrawal was sealed: so is this
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        assert app.screen.query_one("#field-announce", Checkbox).value is False
        assert "WARNING" not in shown(app, "#dialog-explain")


async def test_the_remotes_qr_code_opens_it_signed_in(quiet: Server) -> None:
    import segno
    from showcase_tui.screens.reveal import QrView, qr_text

    from tests.conftest import OPERATOR, PRESENTER

    app = ConsoleApp(quiet.url, OPERATOR, presenter_token=PRESENTER)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.model.connected and app.model.state is not None)
        await pilot.press("4", "Q")
        await until(pilot, lambda: isinstance(app.screen, QrView))
        address = f"{quiet.url}/remote#token={PRESENTER}"
        assert app.screen.address == address
        code = shown(app, "#qr")
        assert code == qr_text(address)
        # The whole code fits an 80x24 terminal: two rows of modules a line, a quiet zone.
        modules = segno.make(address, error="l").symbol_size(border=1)
        assert len(code.splitlines()) == (modules[1] + 1) // 2 <= 24 - 3
        assert app.screen.query_one("#qr").region.bottom <= 24
