"""The outputs on air: every overlay page connected to the server, which build it runs,
whether its data is current and whether OBS has it on Program; reload one or all of them,
and take or clear each graphic."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from ..client import CommandError
from ..model import Json, ShowModel
from ..widgets.dialog import PickDialog
from ..widgets.table import current_row_key, fill_table
from .base import ConsoleScreen

#: The graphics the desk takes and clears, in the server's names (core/graphics.py).
GRAPHICS = {"lower-third": "lower third", "bench": "bench board", "demo": "demo panel",
            "ticker": "ticker"}
POLL_SECONDS = 2.0
AIR_STYLE = {"program": "bold white on red", "preview": "bold black on green",
             "hidden": "dim", "unknown": "yellow"}


class OutputsScreen(ConsoleScreen):
    SECTION = "outputs"
    HELP = ("every overlay page on air: its build, how current it is, Program or Preview; "
            "reload them; take or clear each graphic")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "reload_one", "Reload"),
        Binding("R", "reload_all", "Reload all"),
        Binding("t", "take", "Take graphic"),
        Binding("c", "clear", "Clear graphic"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.listing: Json | None = None
        self.problem = ""

    def body(self) -> ComposeResult:
        yield Static(id="graphics-line", markup=False)
        yield DataTable(id="outputs", cursor_type="row")
        yield Static(id="outputs-line", markup=False)

    def on_mount(self) -> None:
        self.query_one("#outputs", DataTable).focus()
        self.set_interval(POLL_SECONDS, self.poll)
        self.call_later(self.poll)

    async def poll(self) -> None:
        """Read the list again: the server keeps it (GET /api/outputs), not the stream."""
        try:
            self.listing = await self.console.client.get("/api/outputs")
            self.problem = ""
        except CommandError as exc:
            self.problem = str(exc)
        self.redraw(force=True)

    def draw(self, model: ShowModel, force: bool) -> None:
        self.query_one("#graphics-line", Static).update(graphics_line(model.state))
        table = self.query_one("#outputs", DataTable)
        wide = self.has_class("-wide")
        labels = ["id", "page", "lang", "build", "behind", "heard", "air"]
        if wide:
            labels.insert(5, "address")
        if [str(c.label) for c in table.ordered_columns] != labels:
            table.clear(columns=True)
            table.add_columns(*labels)
        listing = self.listing or {}
        outputs = listing.get("outputs", [])
        fill_table(table, [(o["id"], output_cells(o, wide)) for o in outputs])
        line = Text(no_wrap=True, overflow="ellipsis", style="dim")
        if self.problem:
            line.append(f" {self.problem}", style="bold red")
        elif self.listing is None:
            line.append(" reading the outputs…")
        else:
            drifted = sum(1 for o in outputs if o["drift"])
            line.append(f" {len(outputs)} outputs")
            if drifted:
                line.append(f" · {drifted} on an older build", style="bold yellow")
            if listing.get("unlisted"):
                line.append(f" · {listing['unlisted']} not listed (over the limit)")
            line.append(" · r reload · R all · t take · c clear")
        self.query_one("#outputs-line", Static).update(line)

    # -- actions ----------------------------------------------------------------

    def action_reload_one(self) -> None:
        key = current_row_key(self.query_one("#outputs", DataTable))
        found = next((o for o in (self.listing or {}).get("outputs", []) if o["id"] == key),
                     None)
        if found is None:
            self.console.show_error("No output is selected: move the cursor onto one.")
            return
        self.ask(f"Reload {found['id']} ({found['page']})?",
                 "The page loads itself again from the server and comes back on the "
                 "server's build. On air it blinks while it loads.", "Reload",
                 "/api/outputs/reload", lambda _: {"output": found["id"]},
                 done=f"{found['id']} is reloading")

    def action_reload_all(self) -> None:
        count = len((self.listing or {}).get("outputs", []))
        if count == 0:
            self.console.show_error("No output is connected.")
            return
        self.ask(f"Reload all {count} outputs?",
                 "Every overlay page connected to this server loads itself again; on air "
                 "each one blinks while it loads.", "Reload all", "/api/outputs/reload",
                 lambda _: {"all": True}, danger=True, done=f"{count} outputs are reloading")

    def action_take(self) -> None:
        self._pick_graphic(on=True)

    def action_clear(self) -> None:
        self._pick_graphic(on=False)

    def _pick_graphic(self, on: bool) -> None:
        shown = graphics_of(self.model.state)
        choices = [(g, label) for g, label in GRAPHICS.items() if shown.get(g, True) != on]
        verb = "Take" if on else "Clear"
        if not choices:
            self.console.show_error(f"Every graphic is {'on air' if on else 'clear'} already.")
            return
        self.app.push_screen(PickDialog(f"{verb} which graphic?", choices),
                             lambda g: self._confirm_graphic(g, on) if g else None)

    def _confirm_graphic(self, graphic: str, on: bool) -> None:
        label = GRAPHICS[graphic]
        if on:
            title, explain = (f"Take the {label} to air?",
                              f"Every {graphic} page fades in, on every output, and so does "
                              "one opened later. Recorded in the log.")
        else:
            title, explain = (f"Clear the {label}?",
                              f"Every {graphic} page fades out, on every output, and so does "
                              "one opened later. Recorded in the log.")
        self.ask(title, explain, "Take" if on else "Clear",
                 f"/api/graphics/{graphic}/{'take' if on else 'clear'}",
                 danger=not on)


def graphics_of(state: Json | None) -> dict[str, Any]:
    graphics = (state or {}).get("graphics")
    return graphics if isinstance(graphics, dict) else {}


def graphics_line(state: Json | None) -> Text:
    line = Text(" Graphics: ", no_wrap=True, overflow="ellipsis")
    shown = graphics_of(state)
    for index, (graphic, label) in enumerate(GRAPHICS.items()):
        if index:
            line.append(" · ")
        on = shown.get(graphic, True)
        line.append(label)
        line.append(" ON" if on else " CLEAR", style="bold green" if on else "bold yellow")
    return line


def output_cells(output: Json, wide: bool) -> list[Any]:
    options = " ".join(f"{k}={v}" for k, v in output.get("options", {}).items()
                       if k != "lang")
    page = output["page"] + (f" {options}" if options else "")
    build = Text(str(output.get("build") or "?")[:7],
                 style="bold yellow" if output["drift"] else "green")
    behind = Text(str(output["behind"]), justify="right",
                  style="bold yellow" if output["behind"] else "")
    # "live" while it says hello on time; how long it has been silent once it is stale
    heard = (Text(f"{output['age_s']:.0f}s ago", style="bold red") if output["stale"]
             else Text("live", style="green"))
    air = output.get("on_air")
    air_text = Text(air.upper() if air else "browser", style=AIR_STYLE.get(air or "", "dim"))
    cells: list[Any] = [output["id"], page[:28], output["lang"], build, behind, heard, air_text]
    if wide:
        cells.insert(5, str(output.get("address", "")))
    return cells
