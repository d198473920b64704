"""The live demo: type a prompt, pick the teams, send; the answers stream side by side with
their time to first token and decode rate; cancel."""

from __future__ import annotations

import io
import math
from typing import ClassVar

from rich.console import Console
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical
from textual.widgets import Button, Checkbox, Input, Label, Static

from ..model import Json, Lane, ShowModel
from ..widgets.bars import show_line
from ..widgets.style import team_style
from ..widgets.tickbox import TickBox
from ..wording import fmt_ms, fmt_num
from .base import ConsoleScreen

LANE_WIDTH = 26  # the narrowest column an answer is readable in
STATUS_STYLE = {"waiting": "yellow", "connecting": "yellow", "streaming": "bold cyan",
                "ok": "bold green", "error": "bold white on red", "timeout": "bold white on red",
                "rejected": "bold red", "cancelled": "bold yellow", "skipped": "dim",
                "interrupted": "yellow"}


class LanePanel(Vertical):
    """One team's answer: name and status, the live figures, the text as it streams."""

    def __init__(self, team: str) -> None:
        super().__init__(classes="lane")
        self.team = team
        self._text_len = -1
        self._head: object = None
        self.head = Static(classes="lane-head", markup=False)
        self.figures = Static(classes="lane-figures", markup=False)
        self.text = Static(classes="lane-text", markup=False)
        self.full_text = ""
        self._shape = (0, 0)

    def compose(self) -> ComposeResult:
        yield self.head
        yield self.figures
        yield self.text

    def show(self, name: Text, lane: Lane) -> None:
        head = (name.plain, lane.status, lane.ttft_ms, lane.decode_tps, lane.tokens,
                lane.elapsed_ms, lane.error)
        if head != self._head:
            self._head = head
            title = Text(no_wrap=True, overflow="ellipsis")
            title.append(f"{lane.status} ", style=STATUS_STYLE.get(lane.status, ""))
            title.append_text(name)
            self.head.update(title, layout=False)  # fixed sizes: no layout pass
            figures = Text(no_wrap=True, overflow="ellipsis", style="dim")
            figures.append(f"{fmt_ms(lane.ttft_ms)} ms · {fmt_num(lane.decode_tps, 1)} tok/s"
                           f" · {lane.tokens} tok")
            if lane.elapsed_ms is not None:
                figures.append(f" · {lane.elapsed_ms / 1000:.1f} s")
            if lane.error:
                figures = Text(lane.error, style="bold red", no_wrap=True, overflow="ellipsis")
            self.figures.update(figures, layout=False)
        shape = (self.text.size.width, self.text.size.height)
        if len(lane.text) != self._text_len or shape != self._shape:
            self._text_len = len(lane.text)
            self._shape = shape
            self.full_text = lane.text
            self.text.update(tail(lane.text, *shape), layout=False)


class DemoScreen(ConsoleScreen):
    SECTION = "demo"
    HELP = "one prompt to several teams at once; the answers stream side by side"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Send", priority=True),
        Binding("ctrl+x", "cancel_demo", "Cancel demo", priority=True),
        Binding("ctrl+l", "focus_prompt", "Prompt"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._team_ids: list[str] = []
        self._lane_ids: list[str] = []
        self._panels: list[LanePanel] = []

    def body(self) -> ComposeResult:
        with Horizontal(id="prompt-row"):
            yield Label("Prompt ")
            yield Input(placeholder="Ctrl+L to type what the teams answer; Enter sends",
                        id="prompt", compact=True)
            yield Button("Send", id="send", compact=True, variant="primary")
        with Horizontal(id="teams-row"):
            yield Label("Teams  ")
            yield Horizontal(id="team-boxes")
            yield Label(" max ")
            yield Input("256", id="max-tokens", compact=True, type="integer",
                        tooltip="max_tokens: the most tokens each team may answer")
            yield Button("Cancel", id="cancel", compact=True, variant="warning")
        yield Static(id="demo-line", markup=False)
        yield Grid(id="lanes")

    def draw(self, model: ShowModel, force: bool) -> None:
        self._draw_team_boxes(model)
        demo = model.demo()
        show_line(self.query_one("#demo-line", Static), demo_line(model, demo))
        self._draw_lanes(model, demo)

    def _draw_team_boxes(self, model: ShowModel) -> None:
        teams = [t for t in model.teams() if t.get("endpoint")]
        ids = [t["id"] for t in teams]
        if ids == self._team_ids:
            return
        self._team_ids = ids
        boxes = self.query_one("#team-boxes", Horizontal)
        boxes.remove_children()
        boxes.mount_all([
            TickBox(t["id"], value=t.get("public_status", t.get("status")) == "active",
                    name=t["id"], compact=True, tooltip=t.get("name_en"))
            for t in teams])

    def _draw_lanes(self, model: ShowModel, demo: Json | None) -> None:
        lanes = current_lanes(model, demo)
        grid = self.query_one("#lanes", Grid)
        ids = list(lanes)
        if ids != self._lane_ids:
            self._lane_ids = ids
            grid.remove_children()
            self._panels = [LanePanel(team) for team in ids]
            grid.mount_all(self._panels)
        if ids:
            columns = max(1, min(len(ids), grid.size.width // LANE_WIDTH or 1))
            grid.styles.grid_size_columns = columns
            grid.styles.grid_size_rows = math.ceil(len(ids) / columns)
        for panel in self._panels:
            team = model.team(panel.team)
            panel.show(Text(str(team.get("name_en", panel.team)), style=team_style(team)),
                       lanes[panel.team])

    def on_resize(self) -> None:
        self.redraw(force=True)  # re-lay the grid for the new width

    # -- actions -----------------------------------------------------------------

    def picked(self) -> list[str]:
        boxes = self.query_one("#team-boxes", Horizontal).query(Checkbox)
        return [box.name for box in boxes if box.name and box.value]

    @on(Input.Submitted, "#prompt")
    @on(Button.Pressed, "#send")
    def action_send(self) -> None:
        """Open the dialog that says what goes on air. The prompt field gives up the focus
        first: keys pressed next are keys again, never more text for a second demo (issue
        20, finding 1)."""
        self.set_focus(None)
        prompt = self.query_one("#prompt", Input).value.strip()
        teams = self.picked()
        if not prompt:
            self.console.show_error("Type a prompt first (Ctrl+L goes to the prompt).")
            return
        if not teams:
            self.console.show_error("Pick at least one team (Tab to a team, Space ticks it).")
            return
        body: Json = {"prompt": prompt, "teams": teams}
        raw = self.query_one("#max-tokens", Input).value.strip()
        if raw:
            body["max_tokens"] = int(raw) if raw.lstrip("-").isdigit() else raw
        names = ", ".join(self.model.team_name(t) for t in teams)
        self.ask("Send a live demo", demo_effect(prompt, names, raw), "Send the demo",
                 "/api/demo", lambda _: body, done=f"demo sent to {', '.join(teams)}")

    @on(Button.Pressed, "#cancel")
    def action_cancel_demo(self) -> None:
        """Stopping a demo on air asks first, like every other change (Ctrl+X is one slip
        away from Ctrl+S and Ctrl+L)."""
        running = self.model.demo_running()
        if running is None:
            self.console.show_error("No demo is running.")
            return
        self.ask(f"Cancel demo {running}",
                 f"Demo {running} stops for every team that is still answering: on every "
                 "screen the answers stop where they are, marked cancelled. It cannot be "
                 "resumed; a new demo starts from the prompt.",
                 "Cancel the demo", "/api/demo/cancel", lambda _: {"demo": running},
                 danger=True, done="demo cancelled")

    def action_focus_prompt(self) -> None:
        """The prompt takes the keys only when asked: on arrival nothing is focused, so the
        section keys (1-6) still move between screens (the desk rule in base.py)."""
        self.query_one("#prompt", Input).focus()


def demo_effect(prompt: str, names: str, max_tokens: str) -> str:
    limit = f", at most {max_tokens} tokens each" if max_tokens else ""
    return (f"ON AIR: {names} answer this prompt at once{limit}. Every viewer's demo "
            "page and the broadcast show the prompt and the answers as they stream, and "
            f"the demo is kept in the log.\n\nPrompt: {prompt}")


def tail(text: str, width: int, height: int) -> Text:
    """The end of an answer, as much as fits: the cost of a frame stays that of the screen,
    not of the answer, however long it grows (the whole answer is in the event log)."""
    width, height = max(width, 1), max(height, 1)
    piece = Text(text[-width * height * 2:])
    lines = piece.wrap(_MEASURE, width, overflow="fold")
    return Text("\n").join(lines[-height:])


_MEASURE = Console(width=200, file=io.StringIO(), legacy_windows=False)


def current_lanes(model: ShowModel, demo: Json | None) -> dict[str, Lane]:
    """The live lanes when this console saw the demo stream, else the recorded answers."""
    order = list((demo or {}).get("teams") or [])
    if model.lanes and (demo is None or model.demo_id == demo.get("id")):
        teams = [t for t in order if t in model.lanes] + [t for t in model.lanes
                                                          if t not in order]
        return {t: model.lanes[t] for t in teams}
    lanes: dict[str, Lane] = {}
    results = (demo or {}).get("results") or {}
    for team in order:
        result = results.get(team)
        if result is None:
            lanes[team] = Lane(status="waiting")
            continue
        metrics = result.get("metrics") or {}
        lanes[team] = Lane(status=result.get("status", ""), text=result.get("text", ""),
                           ttft_ms=metrics.get("ttft_ms"), tokens=metrics.get("output_tokens")
                           or 0, decode_tps=metrics.get("decode_tps"),
                           elapsed_ms=metrics.get("e2e_ms"), error=result.get("error", ""))
    return lanes


def demo_line(model: ShowModel, demo: Json | None) -> Text:
    line = Text()
    if demo is None:
        line.append(" No demo yet: type a prompt, pick the teams, press Enter.", style="dim")
        return line
    running = model.demo_running() == demo.get("id")
    line.append(f" Demo {demo.get('id')} ", style="bold reverse")
    line.append(" running " if running else (" cancelled " if demo.get("cancelled")
                                             else " finished "),
                style="bold cyan" if running else "dim")
    actor = demo.get("actor")
    if actor:
        line.append(f" by {actor}", style="dim")
    line.append(f"  {demo.get('prompt', '')}")
    return line
