"""The operator console, driven by Textual's Pilot against a real server and a mock team:
each screen shows live state, each action reaches the server and its result comes back,
and a server restart is survived."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from rich.console import Console
from rich.text import Text
from showcase_tui import client
from showcase_tui.app import ConsoleApp
from showcase_tui.screens.demo import LanePanel
from showcase_tui.screens.help import HelpScreen
from showcase_tui.widgets.dialog import ActionDialog
from textual.widgets import Checkbox, DataTable, Input, Static

from tests.conftest import JUDGE, PRESENTER, Server
from tests.tui.conftest import SCORED_SEQ, console, post, state, until


def cells(app: ConsoleApp, table_id: str) -> dict[str, list[str]]:
    """What a table shows, row by row, as plain text."""
    table = app.screen.query_one(table_id, DataTable)
    return {str(row.key.value): [str(c) for c in table.get_row(row.key)]
            for row in table.ordered_rows}


def shown(app: ConsoleApp, selector: str) -> str:
    content = app.screen.query_one(selector, Static).content
    return content.plain if isinstance(content, Text) else str(content)


def rendered(content: Any) -> str:
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(content)
    return console.export_text()


def toasts(app: ConsoleApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


# -- overview ---------------------------------------------------------------------------


async def test_overview_shows_live_standings_cut_and_endpoints(stage: Server) -> None:
    async with console(stage) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        standings = cells(app, "#standings")
        assert list(standings) == ["lg", "skt", "--cut--", "upstage"]
        assert standings["lg"][:5] == ["1", "LG AI Research", "48.00", "34.00", "82.00"]
        assert standings["upstage"][-1] == "OUT"
        assert "cut: the bottom 1 leave" in standings["--cut--"][1]
        # Health ticks reach the endpoint table; the seq on top is the server's.
        await until(pilot, lambda: all(row[1].startswith("up ") for row in
                                       cells(app, "#endpoints").values()), what="health up")
        assert f"seq {app.model.seq}" in str(app.screen.query_one("#topbar", Static).content)

        # A judge corrects a sheet at another desk: the live standings move on screen.
        answer = await post(stage, "/api/scores", {"criterion": "expert", "team": "upstage",
                                                   "judge": "kim", "value": 100,
                                                   "reason": "sheet misread"}, token=JUDGE)
        assert answer.status_code == 201
        await until(pilot, lambda: cells(app, "#standings")["upstage"][3] == "30.00",
                    what="upstage's new expert points")


# -- live demo --------------------------------------------------------------------------


async def test_demo_streams_picked_teams_side_by_side_with_figures(stage: Server) -> None:
    async with console(stage, size=(120, 34)) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await pilot.press("2")
        await until(pilot, lambda: len(app.screen.query(Checkbox)) == 3, what="team boxes")
        app.screen.query_one("#max-tokens", Input).value = "30"
        box = next(b for b in app.screen.query(Checkbox) if b.name == "skt")
        box.value = False  # skt sits this one out
        app.screen.query_one("#prompt", Input).focus()
        await pilot.press(*"Hello", "enter")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog), what="the dialog")
        await pilot.press("enter")  # the confirm button has the focus
        await until(pilot, lambda: [p.team for p in app.screen.query(LanePanel)]
                    == ["lg", "upstage"], what="two lanes")
        await until(pilot, lambda: all(p._head is not None and p._head[1] == "ok"
                                       for p in app.screen.query(LanePanel)), what="answers")
        demo = (await asyncio.to_thread(stage.client().get, "/api/demo")).json()
        for panel in app.screen.query(LanePanel):
            answer = demo["demo"]["results"][panel.team]["text"]
            assert panel.full_text == answer
            # The lane shows the end of the answer, as much as fits.
            assert "".join(str(panel.text.content).split()) in "".join(answer.split())
            assert answer.split()[-1] in str(panel.text.content)
            assert "ms ·" in str(panel.figures.content) and "tok/s" in str(panel.figures.content)
        assert demo["demo"]["teams"] == ["lg", "upstage"]
        assert demo["demo"]["actor"] == "operator:desk-test"


async def test_demo_cancel_stops_the_answers(long_stage: Server) -> None:
    # Answers long enough to be cancelled mid-stream however slowly the console looks.
    stage = long_stage
    async with console(stage) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await pilot.press("2")
        # 4,096 tokens 10 ms apart: 40 s, not the field's 256 (2.6 s, over before a loaded
        # machine had drawn a lane streaming).
        app.screen.query_one("#max-tokens", Input).value = "4096"
        await pilot.press("ctrl+l", *"A long one", "enter")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog), what="the dialog")
        await pilot.press("enter")
        await until(pilot, lambda: any(p._head and p._head[1] == "streaming"
                                       for p in app.screen.query(LanePanel)), what="streaming")
        await pilot.press("ctrl+x")  # on air: it asks first
        await until(pilot, lambda: isinstance(app.screen, ActionDialog), what="the dialog")
        assert "stops for every team" in shown(app, "#dialog-explain")
        await pilot.press("enter")
        await until(pilot, lambda: all(p._head and p._head[1] == "cancelled"
                                       for p in app.screen.query(LanePanel)), what="cancelled")
        log = stage.client().get("/api/log", params={"type": "demo_cancelled", "last": 1}).json()
        assert log["events"][-1]["actor"] == "operator:desk-test"
        # Both were sent with an Idempotency-Key, kept with the event: sent again after an
        # unknown outcome, neither would start or stop a second time.
        for kind in ("demo_started", "demo_cancelled"):
            event = stage.client().get("/api/log", params={"type": kind, "last": 1}).json()
            assert len(event["events"][-1]["key"]) == 32, kind


# -- scores -----------------------------------------------------------------------------


async def open_cell(pilot: Any, row: int, column: int) -> ActionDialog:
    app = pilot.app
    await pilot.press("3")
    table = app.screen.query_one("#scores", DataTable)
    await until(pilot, lambda: table.row_count == 3)
    table.focus()
    table.move_cursor(row=row, column=column)
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, ActionDialog))
    dialog: ActionDialog = app.screen
    return dialog


async def test_a_correction_needs_a_reason_and_the_server_words_refusals(
        stage: Server) -> None:
    async with console(stage) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        dialog = await open_cell(pilot, row=2, column=3)  # upstage, expert, judge kim
        assert "changes from 60 to" in shown(app, "#dialog-explain")
        value = dialog.query_one("#field-value", Input)
        value.value = "150"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "is required" in shown(app, "#dialog-error"))
        dialog.query_one("#field-reason", Input).value = "sheet misread"
        await pilot.press("ctrl+s")  # out of range: the server refuses, in its words
        await until(pilot, lambda: "out of range" in shown(app, "#dialog-error"))
        assert "takes values from 0 to 100" in shown(app, "#dialog-error")
        value.value = "65"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, ActionDialog))
        await until(pilot, lambda: cells(app, "#scores")["upstage"][3] == "65")
        rnd = (await state(stage))["state"]["rounds"][0]
        assert rnd["sheets"]["expert"]["upstage"]["kim"] == 65


async def test_a_correction_made_meanwhile_at_another_desk_is_not_overwritten(
        stage: Server) -> None:
    async with console(stage) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        dialog = await open_cell(pilot, row=2, column=3)  # upstage, expert, judge kim: 60
        dialog.query_one("#field-value", Input).value = "65"
        dialog.query_one("#field-reason", Input).value = "sheet misread"
        # Judge kim corrects the same sheet while the dialog is open.
        answer = await post(stage, "/api/scores", {"criterion": "expert", "team": "upstage",
                                                   "judge": "kim", "value": 70,
                                                   "reason": "my own recount"}, token=JUDGE)
        assert answer.status_code == 201
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "it changed after you read it" in shown(app, "#dialog-error"))
        assert "is 70 now, not 60" in shown(app, "#dialog-error")
        assert isinstance(app.screen, ActionDialog)  # still open, showing what is there now
        explain = shown(app, "#dialog-explain")
        assert "it is 70 now, not 60" in explain and "changes from 70 to 65" in explain
        rnd = (await state(stage))["state"]["rounds"][0]
        assert rnd["sheets"]["expert"]["upstage"]["kim"] == 70
        # Having seen the new value, the operator sends the correction again: now it holds.
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, ActionDialog))
        await until(pilot, lambda: cells(app, "#scores")["upstage"][3] == "65")
        log = stage.client().get("/api/log", params={"last": 1, "type": "score_entered"})
        assert log.json()["events"][0]["data"]["previous"] == 70
        assert log.json()["events"][0]["actor"] == "operator:desk-test"


async def test_disqualify_says_what_will_happen_and_stays_sealed(stage: Server) -> None:
    async with console(stage) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await pilot.press("3")
        table = app.screen.query_one("#scores", DataTable)
        await until(pilot, lambda: table.row_count == 3)
        table.move_cursor(row=1, column=0)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        explain = shown(app, "#dialog-explain")
        assert "SK Telecom is disqualified in round r1" in explain and "Sealed" in explain
        app.screen.query_one("#field-announce", Checkbox).value = True
        await pilot.pause()
        assert "ANNOUNCED" in shown(app, "#dialog-explain")
        app.screen.query_one("#field-announce", Checkbox).value = False
        app.screen.query_one("#field-reason", Input).value = "weights copied"
        await pilot.press("escape")  # cancel: nothing is sent
        await until(pilot, lambda: not isinstance(app.screen, ActionDialog))
        assert (await state(stage))["seq"] == app.model.seq
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        app.screen.query_one("#field-reason", Input).value = "weights copied"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: cells(app, "#scores")["skt"][1] == "disq.*")
        await pilot.press("1")
        await until(pilot, lambda: cells(app, "#standings")["skt"][-1]
                    == "disqualified (sealed)")
        team = next(t for t in (await state(stage))["state"]["teams"] if t["id"] == "skt")
        assert (team["status"], team["public_status"]) == ("disqualified", "active")
        # The console sent it with an Idempotency-Key, which the log keeps with the event:
        # sent again after an unknown outcome, it would be recorded once.
        with stage.client() as op:
            last = op.get("/api/log", params={"last": 1}).json()["events"][-1]
        assert last["type"] == "team_disqualified" and len(last["key"]) == 32


async def test_a_replacement_team_joins_the_next_round_and_refusals_are_worded(
        quiet: Server) -> None:
    async with console(quiet) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await pilot.press("3", "A")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        dialog: ActionDialog = app.screen
        assert dialog.query_one("#field-round", Input).value == "r2"
        fields = {"id": "lg", "name_ko": "카카오", "name_en": "Kakao", "org": "Kakao Corp",
                  "colour": "#ffcd00", "round": "r1", "reason": "replaces SK Telecom"}
        for name, value in fields.items():
            dialog.query_one(f"#field-{name}", Input).value = value
        await pilot.pause()
        assert "Round r1 has started" in shown(app, "#dialog-explain")
        for field, value, refusal in (
                ("round", "r1", "round 'r1' has started; a replacement team joins between rounds"),
                ("round", "r2", "team 'lg' exists already"),
                ("id", "kakao", "field 'endpoint' 'ftp://x' must start with http:// or https://")):
            dialog.query_one(f"#field-{field}", Input).value = value
            if field == "id":
                dialog.query_one("#field-endpoint", Input).value = "ftp://x"
            await pilot.press("ctrl+s")
            await until(pilot, lambda refusal=refusal: refusal in shown(app, "#dialog-error"),
                        what=refusal)
        dialog.query_one("#field-endpoint", Input).value = "http://127.0.0.1:9/v1"
        await pilot.pause()
        explain = shown(app, "#dialog-explain")
        assert "Kakao (kakao) joins round r2 (Second evaluation) when it starts" in explain
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, ActionDialog))
        await pilot.press("1")
        await until(pilot, lambda: "kakao" in cells(app, "#endpoints"), what="kakao's row")
        assert "kakao" not in cells(app, "#standings")  # not in the round under way
        team = next(t for t in (await state(quiet))["state"]["teams"] if t["id"] == "kakao")
        assert (team["name_ko"], team["org"], team["colour"]) == ("카카오", "Kakao Corp",
                                                                   "#ffcd00")
        log = quiet.client().get("/api/log", params={"last": 1}).json()["events"][0]
        assert (log["type"], log["actor"]) == ("team_added", "operator:desk-test")
        assert (log["data"]["round"], log["data"]["reason"]) == ("r2", "replaces SK Telecom")


# -- reveal -----------------------------------------------------------------------------


async def test_reveal_presses_are_exact_and_an_elimination_takes_arming(
        stage: Server) -> None:
    async with console(stage) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await pilot.press("4")
        await pilot.press("z")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        assert "results of round r1 are fixed" in shown(app, "#dialog-explain")
        await pilot.press("enter")  # the confirm button has the focus
        await until(pilot, lambda: app.model.steps(), what="the script")
        assert "NEXT ▶  1: First evaluation: the results" in shown(app, "#next-step")
        total = len(app.model.steps())

        # Two quick presses of n: the first goes to step 1, the second names step 1 too
        # (the console has not seen the move yet) and is refused as stale, or goes to 2 if
        # it had. Never does a repeated press skip a step.
        await pilot.press("n", "n")
        await until(pilot, lambda: (app.model.reveal() or {}).get("step", 0) >= 1)
        await pilot.pause(0.3)
        step = (await state(stage))["state"]["rounds"][0]["reveal"]["step"]
        log = stage.client().get("/api/log", params={"type": "reveal_step"}).json()["events"]
        assert [e["data"]["step"] for e in log] == list(range(1, step + 1))

        # Jump to just before the elimination, read its text, arm it, confirm it with n.
        eliminate = next(s["n"] for s in app.model.steps() if s.get("confirm"))
        table = app.screen.query_one("#script", DataTable)
        table.move_cursor(row=eliminate - 2)
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        await pilot.press("enter")
        await until(pilot, lambda: (app.model.reveal() or {}).get("step") == eliminate - 1)
        assert "ELIMINATION" in shown(app, "#next-step")
        assert "Upstage is eliminated" in shown(app, "#next-step")
        await pilot.press("n")  # not armed: refused, as the server words it
        await until(pilot, lambda: any("arm it, then confirm" in t for t in toasts(app)))
        # The help names the key, not the API call.
        assert any(f"press a on the Reveal screen (4) to arm step {eliminate}" in t
                   for t in toasts(app))
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        await pilot.press("enter")
        await until(pilot, lambda: "ARMED" in shown(app, "#next-step"))
        await pilot.press("n")
        await until(pilot, lambda: (app.model.reveal() or {}).get("step") == eliminate)
        await pilot.press("n")
        await until(pilot, lambda: (app.model.round() or {}).get("phase") == "published")
        assert eliminate + 1 == total
        assert "complete" in shown(app, "#next-step")


async def test_lock_refuses_the_presenter_until_unlocked(stage: Server) -> None:
    await post(stage, "/api/rounds/r1/freeze")
    async with console(stage) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await pilot.press("4")
        await until(pilot, lambda: app.model.steps())
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        app.screen.query_one("#field-reason", Input).value = "ad break"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "LOCKED: ad break" in shown(app, "#reveal-state"))
        await pilot.press("plus")  # the overlays' speed: on air, so a dialog asks
        await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        assert "at 1.25× speed" in shown(app, "#dialog-explain")
        await pilot.press("enter")
        await until(pilot, lambda: "speed 1.25" in shown(app, "#reveal-state"))
        refused = await post(stage, "/api/reveal/next", {"to": 1}, token=PRESENTER)
        assert refused.status_code == 403 and "ad break" in refused.json()["detail"]
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        await pilot.press("enter")
        await until(pilot, lambda: "unlocked" in shown(app, "#reveal-state"))
        # The presenter's remote moves the reveal: the console follows, and reads ahead.
        assert (await post(stage, "/api/reveal/next", {"to": 1}, token=PRESENTER)).is_success
        await until(pilot, lambda: "1: First evaluation: the results" in shown(app, "#on-screen"))
        assert "NEXT ▶  2: Benchmarks: Upstage" in shown(app, "#next-step")


# -- event log --------------------------------------------------------------------------


async def test_log_shows_who_did_what_and_filters(stage: Server) -> None:
    await post(stage, "/api/teams/upstage/withdraw", {"reason": "asked to"})
    async with console(stage) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await pilot.press("5")
        await until(pilot, lambda: len(cells(app, "#log")) >= SCORED_SEQ)
        rows = cells(app, "#log")
        newest = rows[str(max(int(k) for k in rows))]
        assert newest[1:] == ["team_withdrawn", "operator", "upstage in r1, sealed (asked to)"]
        await pilot.press("slash")
        await pilot.press(*"type:score team:lg")
        await until(pilot, lambda: len(cells(app, "#log")) == 3)
        # Each judge's sheet says which judge entered it.
        assert {r[2] for r in cells(app, "#log").values()} == {"operator", "judge:kim",
                                                               "judge:lee"}
        # A new event from another desk arrives while the filter is on.
        for team in ("skt", "lg"):
            answer = await post(stage, "/api/scores", {"criterion": "benchmark", "team": team,
                                                       "value": 81, "reason": "recount"})
            assert answer.status_code == 201
        await until(pilot, lambda: len(cells(app, "#log")) == 4)


async def test_log_starts_with_the_latest_events(quiet: Server,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "LOG_HISTORY", 4)
    async with console(quiet) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await pilot.press("5")
        await until(pilot, lambda: len(cells(app, "#log")) == 4)
        assert sorted(int(k) for k in cells(app, "#log")) == list(
            range(SCORED_SEQ - 3, SCORED_SEQ + 1))
        await pilot.press("slash", *"team:upstage")  # it filters what the console holds
        await until(pilot, lambda: len(cells(app, "#log")) == 2)


# -- help and palette -------------------------------------------------------------------


async def test_help_lists_every_key_of_every_screen(quiet: Server) -> None:
    async with console(quiet) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = " ".join(rendered(s.content) for s in app.screen.query(Static))
        for word in ("Overview", "Arm", "Disqualify", "Cancel demo", "Filter", "palette",
                     "Add replacement team"):
            assert word in text
        # Each section lists its own keys, not those every Textual screen has.
        assert "Focus Next" not in text and "Copy selected text" not in text
        await pilot.press("escape")
        commands = [c.title for c in app.get_system_commands(app.screen)]
        assert "Reveal: Arm (a)" in commands and "Go to Scores (3)" in commands
        assert "Scores: Add replacement team (A)" in commands


# -- connection -------------------------------------------------------------------------


async def test_a_restart_is_survived_and_commands_are_refused_meanwhile(
        quiet: Server) -> None:
    async with console(quiet) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        port = quiet.port
        await asyncio.to_thread(quiet.stop)
        await until(pilot, lambda: app.model.connection == "reconnecting")
        await pilot.press("3")
        await until(pilot, lambda: "reconnecting" in str(
            app.screen.query_one("#topbar", Static).content))
        table = app.screen.query_one("#scores", DataTable)
        table.move_cursor(row=0, column=2)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        app.screen.query_one("#field-value", Input).value = "10"
        app.screen.query_one("#field-reason", Input).value = "test"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "Not sent" in shown(app, "#dialog-error"))
        await pilot.press("escape")

        await asyncio.to_thread(quiet.start, port)
        # Something happens before the console is back: it must arrive all the same.
        await post(quiet, "/api/teams/skt/withdraw", {"reason": "while you were away"})
        await until(pilot, lambda: app.model.connected, what="reconnected")
        await until(pilot, lambda: app.model.team("skt").get("status") == "withdrawn")
        assert app.model.seq == (await state(quiet))["seq"] == SCORED_SEQ + 1
        assert sorted(app.model.events)[-1] == SCORED_SEQ + 1  # no gap, nothing twice
        assert app.model.events[SCORED_SEQ + 1]["type"] == "team_withdrawn"
        # Nothing was queued: the refused correction never reached the server.
        assert (await state(quiet))["state"]["rounds"][0]["values"]["benchmark"]["lg"] == 80


async def test_a_token_that_is_not_the_operators_is_refused_with_the_reason(
        quiet: Server) -> None:
    app = ConsoleApp(quiet.url, PRESENTER)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.model.connection == "refused")
        await until(pilot, lambda: any("console needs the operator's token" in t
                                       for t in toasts(app)))
        assert "refused" in str(app.screen.query_one("#topbar", Static).content)
    app = ConsoleApp(quiet.url, "not-a-token-of-this-show")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: any("the token is not valid for this show" in t
                                       for t in toasts(app)))


async def test_a_tie_across_the_cut_is_shown_and_the_jury_order_entered(stage: Server) -> None:
    # Upstage's corrections make it equal to SK Telecom on the total and every tie-break.
    for body in ({"criterion": "benchmark", "team": "upstage", "value": 70},
                 {"criterion": "expert", "team": "upstage", "judge": "kim", "value": 70},
                 {"criterion": "expert", "team": "upstage", "judge": "lee", "value": 80}):
        assert (await post(stage, "/api/scores", {**body, "reason": "recount"})).status_code \
            == 201
    async with console(stage) as pilot:
        app: ConsoleApp = pilot.app  # type: ignore[assignment]
        await until(pilot, lambda: "tied across the cut: skt, upstage" in shown(app, "#round-line"))
        assert cells(app, "#standings")["skt"][-1] == "jury tie"
        await pilot.press("4", "J")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        app.screen.query_one("#field-order", Input).value = "upstage, skt"
        app.screen.query_one("#field-reason", Input).value = "jury vote 4-1"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, ActionDialog))
        await pilot.press("1")
        await until(pilot, lambda: cells(app, "#standings")["skt"][-1] == "OUT")
        assert (await state(stage))["state"]["rounds"][0]["jury_order"] == ["upstage", "skt"]
