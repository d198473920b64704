"""The event log: the latest events, newest first, with who did each; filterable."""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label, Static

from ..model import Json, ShowModel
from ..widgets.table import current_row_key, fill_table
from ..wording import describe, fmt_clock, matches
from .base import ConsoleScreen

SHOWN = 300  # rows in the table; the filter searches every event the console holds

TYPE_STYLE = {"team_disqualified": "bold red", "team_withdrawn": "yellow",
              "team_reinstated": "green", "round_published": "bold green",
              "reveal_step": "magenta", "reveal_armed": "bold red", "reveal_locked": "bold",
              "round_frozen": "bold magenta", "round_unfrozen": "magenta",
              "team_health": "cyan", "demo_started": "bold cyan", "score_entered": ""}


class LogScreen(ConsoleScreen):
    SECTION = "log"
    HELP = "the latest events, newest first, with who did each (Enter shows one whole)"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []

    def body(self) -> ComposeResult:
        with Horizontal(id="filter-row"):
            yield Label("Filter ")
            yield Input(placeholder="type:score team:lg actor:desk or any word", id="filter",
                        compact=True)
        yield DataTable(id="log", cursor_type="row")
        yield Static(id="log-line", markup=False)

    def on_mount(self) -> None:
        self.query_one("#log", DataTable).focus()

    def draw(self, model: ShowModel, force: bool) -> None:
        table = self.query_one("#log", DataTable)
        wide = self.has_class("-wide")  # on 80 columns the time gives way to what happened
        labels = ["seq", "time", "type", "actor", "what"] if wide else [
            "seq", "type", "actor", "what"]
        if [str(c.label) for c in table.ordered_columns] != labels:
            table.clear(columns=True)
            table.add_columns(*labels)
        events = [e for e in model.recent_events() if matches(e, self.words)]
        rows = [(str(e["seq"]), log_cells(e, wide)) for e in events[:SHOWN]]
        fill_table(table, rows)
        line = Text(no_wrap=True, overflow="ellipsis", style="dim")
        held = len(model.events)
        line.append(f" {len(events)} of the {held} latest events" if self.words
                    else f" the {held} latest events")
        if len(events) > SHOWN:
            line.append(f" (the newest {SHOWN} shown)")
        line.append(" · / filters · Enter shows one whole")
        self.query_one("#log-line", Static).update(line)

    @on(Input.Changed, "#filter")
    def _filter(self, event: Input.Changed) -> None:
        self.words = event.value.split()
        self.redraw(force=True)

    @on(Input.Submitted, "#filter")
    def _done(self) -> None:
        self.query_one("#log", DataTable).focus()

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        self.query_one("#filter", Input).value = ""
        self.query_one("#log", DataTable).focus()

    def on_data_table_row_selected(self) -> None:
        key = current_row_key(self.query_one("#log", DataTable))
        if key is not None and int(key) in self.model.events:
            self.app.push_screen(EventDetail(self.model.events[int(key)]))


def log_cells(event: Json, with_time: bool = True) -> list[Any]:
    kind = str(event.get("type", ""))
    cells: list[Any] = [Text(str(event.get("seq")), justify="right")]
    if with_time:
        cells.append(fmt_clock(event.get("ts")))
    return [*cells, Text(kind, style=TYPE_STYLE.get(kind, "")),
            str(event.get("actor", ""))[:16], describe(event)]


class EventDetail(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,q", "dismiss", "Close")]

    def __init__(self, event: Json) -> None:
        super().__init__(classes="dialog")
        self.event = event

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Label(Text(f"seq {self.event.get('seq')} · {self.event.get('type')} · "
                             f"{self.event.get('actor')} · {fmt_clock(self.event.get('ts'))}",
                             style="bold"))
            yield Static(describe(self.event), markup=False)
            yield Static(orjson.dumps(self.event.get("data"), option=orjson.OPT_INDENT_2)
                         .decode(), markup=False)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
