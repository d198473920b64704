"""Scores of the current round as entered: each value and each judge's sheet. Enter or
correct a cell (a correction needs a reason), clear one, disqualify, withdraw or reinstate
a team, and add a replacement team for a later round; every action opens a dialog that
says what will happen."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from ..client import Refused
from ..model import Json, ShowModel
from ..widgets.bars import show_line
from ..widgets.dialog import Field, PickDialog
from ..widgets.style import STATUS_STYLE, team_style
from ..widgets.table import current_row_key, fill_table
from ..wording import fmt_num
from .base import ConsoleScreen

#: The statuses a team may be in for each change of status.
STATUS_FROM = {"disqualify": ("active",), "withdraw": ("active",),
               "reinstate": ("disqualified", "withdrawn")}
SEALED_NOTE = ("Nothing of it is public until the round is published or revealed.")


class ScoresScreen(ConsoleScreen):
    SECTION = "scores"
    HELP = ("enter or correct values and judges' sheets; disqualify, withdraw, reinstate; "
            "between rounds, add a replacement team")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "edit", "Enter/correct"),
        Binding("x", "clear", "Clear"),
        Binding("d", "status('disqualify')", "Disqualify"),
        Binding("w", "status('withdraw')", "Withdraw"),
        Binding("i", "status('reinstate')", "Reinstate"),
        Binding("A", "add_team", "Add replacement team", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._columns: list[tuple[str, str]] = []

    def body(self) -> ComposeResult:
        yield Static(id="scores-line", markup=False)
        yield DataTable(id="scores", cursor_type="cell", zebra_stripes=True)
        yield Static(id="cell-line", markup=False)

    def on_mount(self) -> None:
        self.query_one("#scores", DataTable).focus()

    def columns(self, model: ShowModel) -> list[tuple[str, str]]:
        """(key, label) of each column: a value criterion, or one criterion and judge."""
        out = [("team", "Team"), ("status", "Status")]
        judges = [j["id"] for j in model.judges()]
        for criterion in model.criteria():
            if criterion.get("source") == "judges":
                out += [(f"{criterion['id']}:{j}", j) for j in judges]
            else:
                out.append((criterion["id"], criterion["id"]))
        return out

    def draw(self, model: ShowModel, force: bool) -> None:
        table = self.query_one("#scores", DataTable)
        columns = self.columns(model)
        if columns != self._columns:
            self._columns = columns
            table.clear(columns=True)
            for key, label in columns:
                table.add_column(label, key=key)
        rnd = model.round() or {}
        rows = []
        for team_id in roster(model):
            team = model.team(team_id)
            cells: list[Any] = [Text(str(team.get("name_en", team_id))[:16],
                                     style=team_style(team)), status_cell(team)]
            for key, _ in columns[2:]:
                value = cell_value(rnd, key, team_id)
                cells.append(Text("·" if value is None else fmt_num(value), justify="right",
                                  style="dim" if value is None else ""))
            rows.append((team_id, cells))
        fill_table(table, rows)
        show_line(self.query_one("#scores-line", Static), self._scores_line(model, rnd))
        self._cell_line()

    def _scores_line(self, model: ShowModel, rnd: Json) -> Text:
        line = Text()
        line.append(f" {rnd.get('id', '')} {rnd.get('name_en', '')} · {rnd.get('phase', '')}",
                    style="bold")
        sheets = [c for c in model.criteria() if c.get("source") == "judges"]
        if sheets:
            line.append(f" · judges' columns: {', '.join(c['id'] for c in sheets)}", style="dim")
        if rnd.get("reveal") is not None:
            line.append(" · frozen: scores cannot change", style="bold magenta")
        if any(t.get("public_status") not in (None, t.get("status")) for t in model.teams()):
            line.append(" · * not announced yet", style="yellow")
        missing = (rnd.get("standings") or {}).get("missing") or []
        if missing:
            cells = ", ".join(f"{m['team']}/{m['criterion']}" for m in missing[:4])
            line.append(f" · missing {len(missing)}: {cells}", style="yellow")
        return line

    def on_data_table_cell_selected(self) -> None:
        self.action_edit()  # Enter on a cell

    def on_data_table_cell_highlighted(self) -> None:
        self._cell_line()

    def _cell_line(self) -> None:
        target = self.target()
        line = Text(style="dim")
        if target is None:
            line.append(" d disqualify · w withdraw · i reinstate the team on this row")
        else:
            team, criterion, judge, value = target
            scale = criterion.get("scale") or ["?", "?"]
            who = f", judge {judge}" if judge else ""
            line.append(f" {criterion.get('name_en')} · {self.model.team_name(team)}{who}: "
                        f"{'nothing yet' if value is None else fmt_num(value)} "
                        f"(scale {fmt_num(scale[0])}–{fmt_num(scale[1])}) · "
                        + (frozen_hint(self.model) or "Enter to "
                           + ("correct" if value is not None else "enter")))
        show_line(self.query_one("#cell-line", Static), line)

    # -- actions -----------------------------------------------------------------

    def target(self) -> tuple[str, Json, str | None, Any] | None:
        """The score under the cursor: team, criterion, judge, value now."""
        table = self.query_one("#scores", DataTable)
        team = current_row_key(table)
        column = table.cursor_coordinate.column
        if team is None or not 2 <= column < len(self._columns):
            return None
        key = self._columns[column][0]
        criterion_id, _, judge = key.partition(":")
        criterion = next((c for c in self.model.criteria() if c["id"] == criterion_id), None)
        if criterion is None:
            return None
        return team, criterion, judge or None, cell_value(self.model.round() or {}, key, team)

    def action_edit(self) -> None:
        self._score_dialog(clear=False)

    def action_clear(self) -> None:
        self._score_dialog(clear=True)

    def _score_dialog(self, clear: bool) -> None:
        if self._refused_when_frozen():
            return
        target = self.target()
        if target is None:
            self.console.show_error("Move the cursor onto a score (a value or a judge's sheet).")
            return
        team, criterion, judge, now = target
        if clear and now is None:
            self.console.show_error("There is nothing to clear in this cell.")
            return
        round_id = self.model.round_id()
        name = self.model.team_name(team)
        what = f"{criterion.get('name_en')} of {name}" + (f", judge {judge}'s sheet"
                                                          if judge else "")
        correction = now is not None
        # The value on screen when the dialog opened goes with the command as
        # expect_previous: if another desk changes the cell meanwhile, the server refuses
        # and says what it holds now, which the dialog then shows; a second confirm sends
        # the correction against that value, knowingly.
        cell: dict[str, Any] = {"value": now}

        def explain(values: dict[str, Any]) -> str:
            held = cell["value"]
            new = "nothing (cleared)" if clear else (values.get("value") or "?")
            if held is not None:
                change = f"changes from {fmt_num(held)} to {new}"
            else:
                change = f"is entered as {new}"
            scale = criterion.get("scale") or ["?", "?"]
            text = (f"Round {round_id}: {what} {change} (scale {fmt_num(scale[0])} to "
                    f"{fmt_num(scale[1])}). The live standings are recomputed. "
                    + ("The reason is recorded in the log with your name. " if correction
                       else "") + SEALED_NOTE)
            if held == now:
                return text
            was = "empty" if now is None else fmt_num(now)
            moved = (f"ANOTHER DESK CHANGED THIS CELL since you opened it: it is "
                     f"{'empty' if held is None else fmt_num(held)} now, not {was}. ")
            if clear and held is None:
                return moved + "There is nothing left to clear."
            if not correction:
                return (moved + "Cancel (Esc) and open the cell again to correct it: a "
                        "correction needs a reason.")
            return moved + "Confirm again to send this against the new value.\n\n" + text

        def body(values: dict[str, Any]) -> Json:
            out: Json = {"round": round_id, "criterion": criterion["id"], "team": team}
            if judge:
                out["judge"] = judge
            out["value"] = None if clear else _number(values.get("value", ""))
            out["expect_previous"] = cell["value"]
            if values.get("reason"):
                out["reason"] = values["reason"]
            return out

        def refused(exc: Refused) -> None:
            if exc.status == 409 and "previous" in exc.answer:
                cell["value"] = exc.answer["previous"]

        fields = [] if clear else [Field("value", "New value" if correction else "Value",
                                         value="" if now is None else fmt_num(now),
                                         required=True)]
        if correction:
            fields.append(Field("reason", "Reason: who asked for the change, and why",
                                required=True))
        verb = "Clear" if clear else ("Correct" if correction else "Enter")
        self.ask(f"{verb} {what}", explain, verb, "/api/scores", body, fields,
                 danger=clear or correction, refused=refused)

    async def from_palette(self, action: str) -> None:
        verb = action.removeprefix("status('").removesuffix("')")
        if verb in STATUS_FROM:
            if self._refused_when_frozen():
                return
            choices = [(t["id"], f"{t.get('name_en', t['id'])} ({t['id']}, {t.get('status')})")
                       for t in self.model.teams() if t.get("status") in STATUS_FROM[verb]]
            if not choices:
                self.console.show_error(f"No team can be {verb}d now.")
                return
            self.app.push_screen(PickDialog(f"{verb.capitalize()} which team?", choices),
                                 lambda team: self.status_dialog(verb, team) if team else None)
        elif action in ("edit", "clear"):
            table = self.query_one("#scores", DataTable)
            table.focus()
            key = "e" if action == "edit" else "x"
            self.console.show_error(f"Move the cursor onto the score, then press {key}.")
        else:
            await super().from_palette(action)

    def _refused_when_frozen(self) -> bool:
        """A frozen round's results cannot change: say so, with the key, before any dialog
        (the server would refuse it only on confirm)."""
        hint = frozen_hint(self.model)
        if hint:
            self.console.show_error(f"Round {self.model.round_id()} is frozen for its reveal: "
                                    f"{hint}.")
        return bool(hint)

    def action_status(self, verb: str) -> None:
        if self._refused_when_frozen():
            return
        table = self.query_one("#scores", DataTable)
        team = current_row_key(table)
        if team is None:
            self.console.show_error("Move the cursor onto a team's row first.")
            return
        self.status_dialog(verb, team)

    def status_dialog(self, verb: str, team: str) -> None:
        name = self.model.team_name(team)
        round_id = self.model.round_id()
        effect = {
            "disqualify": f"{name} is disqualified in round {round_id}: it leaves the ranking "
                          "at once, whatever its score, and joins no later round.",
            "withdraw": f"{name} is withdrawn from round {round_id}: it leaves the ranking at "
                        "once and joins no later round.",
            "reinstate": f"{name} becomes active again and rejoins the ranking of round "
                         f"{round_id}.",
        }[verb]

        told = told_publicly(self.model.team(team))

        def explain(values: dict[str, Any]) -> str:
            if values.get("announce"):
                return (f"{effect} ANNOUNCED: every public screen shows it now, with the "
                        "reason.")
            sealed = (f"{effect} Sealed: the public sees it only when the round is published "
                      "or revealed (with the reason).")
            if verb == "reinstate" and told:
                return (f"WARNING: viewers were told {name} is {told} (announced). Kept "
                        f"sealed, every public screen goes on saying so, and the reveal will "
                        f"then rank {name}, contradicting the lower third. Tick 'Announce' to "
                        f"tell them now.\n\n{sealed}")
            return sealed

        self.ask(f"{verb.capitalize()} {name}", explain, f"{verb.capitalize()} {name}",
                 f"/api/teams/{team}/{verb}",
                 lambda v: {"reason": v.get("reason", ""), "announce": bool(v.get("announce"))},
                 [Field("reason", "Reason", required=True),
                  # Undoing an announced status is announced too, unless unticked.
                  Field("announce", "Announce it now to the public", check=True,
                        value="yes" if verb == "reinstate" and told else "")],
                 danger=verb != "reinstate")

    def action_add_team(self) -> None:
        pending = [r["id"] for r in self.model.rounds() if r.get("phase") == "pending"]
        first = pending[0] if pending else ""

        def explain(values: dict[str, Any]) -> str:
            ident = values.get("id") or "?"
            name = values.get("name_en") or "The new team"
            round_id = values.get("round") or first
            rnd = self.model.round(round_id) if round_id else None
            if not round_id:
                return ("Every round has started: a replacement team can only join a round "
                        "that has not started yet.")
            if rnd is None:
                known = ", ".join(r["id"] for r in self.model.rounds())
                return f"There is no round {round_id} in the show (rounds: {known})."
            if rnd.get("phase") != "pending":
                return (f"Round {round_id} has started ({rnd.get('phase')}): a replacement "
                        "team joins only a round that has not started yet.")
            return (f"{name} ({ident}) joins round {round_id} ({rnd.get('name_en', '')}) "
                    "when it starts: from then on it is in the roster and scored like every "
                    "other team; it takes no part in the round under way. The public sees "
                    "it at once (names, organisation, colour; not the endpoint or the "
                    "reason). No command removes a team once added."
                    + ("" if values.get("endpoint") else
                       " Without an endpoint it cannot answer demos or benchmarks."))

        def body(values: dict[str, Any]) -> Json:
            out: Json = {k: values[k] for k in ("id", "name_ko", "name_en")}
            for optional in ("org", "colour", "endpoint", "api_key_env", "round", "reason"):
                if values.get(optional):
                    out[optional] = values[optional]
            return out

        self.ask("Add a replacement team", explain, "Add team", "/api/teams", body, [
            Field("id", "Team id", "lower-case letters, digits, - or _", required=True),
            Field("name_ko", "Korean name", required=True),
            Field("name_en", "English name", required=True),
            Field("org", "Organisation"),
            Field("colour", "Colour", "#rrggbb (#888888 if left empty)"),
            Field("endpoint", "Endpoint", "http(s)://host:port/v1 (none if left empty)"),
            Field("api_key_env", "Server variable that holds its API key",
                  "like SHOWCASE_KEY_KAKAO (none if left empty)"),
            Field("round", "Round to join", "the first round not started" if first else
                  "every round has started", value=first),
            Field("reason", "Reason (for the log)"),
        ], danger=True)


def frozen_hint(model: ShowModel) -> str:
    """When the current round is frozen, the key that would let its scores change."""
    if (model.round() or {}).get("reveal") is None:
        return ""
    return "frozen: press u on the Reveal screen (4) to unfreeze it, before its first step"


def told_publicly(team: Json) -> str:
    """The status the public was told, when it is not 'active' ('' otherwise)."""
    public = team.get("public_status", team.get("status"))
    return "" if public in (None, "active") else str(public)


def roster(model: ShowModel) -> list[str]:
    rnd = model.round() or {}
    order = [t["id"] for t in model.teams()]
    members = rnd.get("roster") or {}
    return [t for t in order if t in members] if members else order


def cell_value(rnd: Json, key: str, team: str) -> Any:
    criterion, _, judge = key.partition(":")
    if judge:
        return (((rnd.get("sheets") or {}).get(criterion) or {}).get(team) or {}).get(judge)
    return ((rnd.get("values") or {}).get(criterion) or {}).get(team)


def status_cell(team: Json) -> Text:
    status = str(team.get("status", ""))
    sealed = team.get("public_status") not in (None, status)
    short = {"disqualified": "disq.", "withdrawn": "withdr.", "eliminated": "elim."}
    return Text(short.get(status, status) + ("*" if sealed else ""),
                style=STATUS_STYLE.get(status, ""))


def _number(raw: Any) -> Any:
    """A number when it reads as one; else the text, for the server to refuse in its words."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return raw
    return int(value) if value.is_integer() and "." not in str(raw) else value
