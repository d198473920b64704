"""The reveal: freeze the round, read its script ahead, step through it (every press names
the step it goes to, so a press is exact and a repeat does nothing), arm and confirm an
elimination, lock the presenter's controls. The next step's text is always on screen."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from ..model import Json, ShowModel
from ..widgets.bars import show_line
from ..widgets.dialog import Field
from ..widgets.style import team_style
from ..widgets.table import current_row_key, fill_table
from ..wording import fmt_num, fmt_points
from .base import ConsoleScreen


class RevealScreen(ConsoleScreen):
    SECTION = "reveal"
    HELP = ("freeze the round, read the script ahead, step through it, arm eliminations, "
            "lock the presenter out. In the script: ▶ on screen, ‖ a pause (where f stops), "
            "✖ an elimination (a arms it, then n shows it). Every press names the step it "
            "goes to, so a press repeated by accident does nothing.")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "press('next')", "Next"),
        Binding("b", "press('back')", "Back"),
        Binding("f", "press('ff')", "To pause"),
        Binding("g", "goto", "Go to row"),
        Binding("enter", "board", "Board of row", show=False),
        Binding("a", "arm", "Arm"),
        Binding("r", "reset", "Reset"),
        Binding("z", "freeze", "Freeze"),
        Binding("u", "unfreeze", "Unfreeze"),
        Binding("l", "lock", "Lock/unlock"),
        Binding("plus", "speed(0.25)", "Faster", show=False),
        Binding("minus", "speed(-0.25)", "Slower", show=False),
        Binding("J", "jury", "Jury order", show=False),
        Binding("P", "publish", "Publish now", show=False),
        Binding("S", "start_round", "Start next round", show=False),
        Binding("Q", "remote_qr", "Remote's QR code", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._step: int | None = None

    def body(self) -> ComposeResult:
        yield Static(id="reveal-state", markup=False)
        yield Static(id="on-screen", markup=False)
        yield Static(id="next-step", markup=False)
        with Container(id="reveal-panes"):
            with Vertical(id="script-pane", classes="pane"):
                yield DataTable(id="script", cursor_type="row")
            with Vertical(id="board-pane", classes="pane"):
                yield Static(id="board", markup=False)

    def on_mount(self) -> None:
        self.query_one("#script-pane").border_title = "Script"
        self.query_one("#board-pane").border_title = "Board at the highlighted step"
        self.query_one("#script", DataTable).add_columns("", "n", "kind", "text")
        self.query_one("#script", DataTable).focus()

    def draw(self, model: ShowModel, force: bool) -> None:
        reveal = model.reveal()
        show_line(self.query_one("#reveal-state", Static), reveal_state(model))
        step = None if reveal is None else int(reveal["step"])
        show_line(self.query_one("#on-screen", Static), on_screen(model, step))
        self.query_one("#next-step", Static).update(next_step(model))
        table = self.query_one("#script", DataTable)
        fill_table(table, script_rows(model, step))
        if step != self._step and step is not None and table.row_count:
            # Follow the reveal: the cursor goes to the next step whenever the step moves.
            table.move_cursor(row=min(step, table.row_count - 1), animate=False)
        self._step = step
        self._draw_board()

    def on_data_table_row_highlighted(self) -> None:
        self._draw_board()

    def action_board(self) -> None:
        self.on_data_table_row_selected()

    def on_data_table_row_selected(self) -> None:
        """Enter on a step: its board, in a window (on a narrow terminal it has no pane)."""
        n = self.cursor_step()
        step = self.model.step_text(n) if n else None
        if step is not None:
            self.app.push_screen(BoardView(board_text(self.model, step)))

    def _draw_board(self) -> None:
        n = self.cursor_step()
        step = self.model.step_text(n) if n else None
        self.query_one("#board", Static).update(
            board_text(self.model, step) if step else Text("(no step highlighted)", style="dim"))

    def cursor_step(self) -> int | None:
        key = current_row_key(self.query_one("#script", DataTable))
        return int(key) if key and key.isdigit() else None

    # -- presses -----------------------------------------------------------------

    def _reveal(self) -> Json | None:
        reveal = self.model.reveal()
        if reveal is None:
            self.console.show_error(f"Round {self.model.round_id()} is not frozen: freeze it "
                                    "first (z).")
        return reveal

    async def action_press(self, action: str) -> None:
        reveal = self._reveal()
        if reveal is None:
            return
        step = int(reveal["step"])
        to = {"next": step + 1, "back": step - 1, "ff": ff_target(self.model, step)}[action]
        await self.send(f"/api/reveal/{action}", {"to": to}, done=f"{action}: step {to}")

    def action_speed(self, delta: float) -> None:
        """The overlays' animation speed: on air, so it asks like every other change."""
        reveal = self._reveal()
        if reveal is None:
            return
        now = float(reveal.get("speed") or 1.0)
        speed = min(4.0, max(0.25, now + delta))
        if speed == now:
            self.console.show_error(f"The speed is {fmt_num(now)} already, the "
                                    f"{'fastest' if delta > 0 else 'slowest'} there is.")
            return
        self.ask(f"Reveal speed {fmt_num(now)} → {fmt_num(speed)}",
                 f"Every overlay plays the reveal's animations at {fmt_num(speed)}× speed "
                 f"(now {fmt_num(now)}×), from the next step on. Nothing else changes.",
                 f"Set speed {fmt_num(speed)}", "/api/reveal/speed",
                 lambda _: {"speed": speed}, done=f"speed {speed:g}")

    async def from_palette(self, action: str) -> None:
        if action == "goto":  # the step is the cursor's row: let the operator choose it
            self.query_one("#script", DataTable).focus()
            self.console.show_error("Move the cursor onto the step to go to, then press g.")
            return
        await super().from_palette(action)

    def action_goto(self) -> None:
        reveal = self._reveal()
        n = self.cursor_step()
        if reveal is None or n is None:
            return
        step = int(reveal["step"])
        if n == step:
            self.console.show_error(f"Step {n} is on screen already.")
            return
        target = self.model.step_text(n) or {}
        if n > step:
            effect = (f"Every screen jumps from step {step} to step {n}, showing at once what "
                      f"steps {step + 1} to {n} reveal.")
        else:
            effect = f"Every screen goes back from step {step} to step {n}."
        self.ask(f"Go to step {n}", f"{effect}\n\n{n}: {target.get('text', '')}",
                 f"Go to step {n}", "/api/reveal/goto", lambda _: {"to": n},
                 danger=n > step + 1, done=f"goto: step {n}")

    def action_reset(self) -> None:
        reveal = self._reveal()
        if reveal is None:
            return
        self.ask("Reset the reveal", f"Every screen goes back from step {reveal['step']} to "
                 "the start (step 0), before the first step.", "Reset to step 0",
                 "/api/reveal/reset", lambda _: {"to": 0}, done="reset: step 0")

    def action_arm(self) -> None:
        reveal = self._reveal()
        if reveal is None:
            return
        nxt = self.model.next_step()
        if nxt is None or not nxt.get("confirm"):
            self.console.show_error("The next step eliminates nobody: it needs no arming.")
            return
        self.ask(f"Arm step {nxt['n']}",
                 f"Step {nxt['n']}: {nxt.get('text')}\n\nArming shows nothing yet. The next "
                 "press of Next (n here, or the presenter's remote) shows it on every screen. "
                 "Any other move disarms it.",
                 f"Arm step {nxt['n']}", "/api/reveal/arm", lambda _: {"to": nxt["n"]},
                 danger=True, done=f"step {nxt['n']} armed: n shows it")

    def action_freeze(self) -> None:
        round_id = self.model.round_id()
        self.ask(f"Freeze round {round_id}",
                 f"The results of round {round_id} are fixed as they stand now, and its reveal "
                 "script is computed. Until it is unfrozen, scores, status changes and "
                 "publication are refused. Nothing is shown yet: the public learns only that "
                 "the round is frozen.",
                 f"Freeze {round_id}", f"/api/rounds/{round_id}/freeze", danger=True)

    def action_unfreeze(self) -> None:
        round_id = self.model.round_id()
        self.ask(f"Unfreeze round {round_id}",
                 f"Round {round_id}'s results can change again and its script is dropped "
                 "(freezing again computes a new one). Only at step 0.",
                 f"Unfreeze {round_id}", f"/api/rounds/{round_id}/unfreeze",
                 lambda v: {"reason": v.get("reason", "")},
                 [Field("reason", "Reason", required=True)], danger=True)

    def action_lock(self) -> None:
        reveal = self._reveal()
        if reveal is None:
            return
        if reveal.get("locked"):
            self.ask("Unlock the presenter's controls",
                     "The presenter's remote and button boxes can move the reveal again.",
                     "Unlock", "/api/reveal/lock", lambda _: {"locked": False}, danger=True)
            return
        self.ask("Lock the presenter's controls",
                 "Every press from the presenter's remote or a button box is refused, with "
                 "your reason, until you unlock. Your presses here still work.",
                 "Lock", "/api/reveal/lock",
                 lambda v: {"locked": True, "reason": v.get("reason", "")},
                 [Field("reason", "Reason shown to the presenter", placeholder="ad break")],
                 danger=True)

    def action_jury(self) -> None:
        round_id = self.model.round_id()
        cut = ((self.model.round() or {}).get("standings") or {}).get("cut") or {}
        tied = list(cut.get("tied") or []) or list(cut.get("jury") or [])
        if not tied:
            self.console.show_error(f"No teams are tied across the cut in round {round_id}.")
            return
        names = ", ".join(f"{t} ({self.model.team_name(t)})" for t in tied)
        self.ask(f"Jury order for round {round_id}",
                 f"Teams tied across the cut: {names}. Give every one of them once, best "
                 "first, separated by spaces or commas. The order is sealed; it decides who "
                 "goes through when the round is published or revealed.",
                 "Record the order", f"/api/rounds/{round_id}/jury",
                 lambda v: {"order": str(v.get("order", "")).replace(",", " ").split(),
                            "reason": v.get("reason", "")},
                 [Field("order", "Order, best first", value=" ".join(tied), required=True),
                  Field("reason", "Reason (the vote, where the minutes are)", required=True)],
                 danger=True)

    def action_publish(self) -> None:
        round_id = self.model.round_id()
        self.ask(f"Publish round {round_id} now",
                 f"Every rank, total and elimination of round {round_id} becomes public on "
                 "every screen at once, without a step-by-step reveal. It cannot be undone.",
                 f"Publish {round_id}", f"/api/rounds/{round_id}/publish", danger=True)

    def action_remote_qr(self) -> None:
        """The presenter remote's address as a QR code, for the presenter's phone."""
        address = f"{self.console.url.rstrip('/')}/remote"
        token = self.console.presenter_token
        self.app.push_screen(QrView(address + (f"#token={token}" if token else ""),
                                    signed_in=bool(token)))

    def action_start_round(self) -> None:
        rounds = [r["id"] for r in (self.model.state or {}).get("rounds") or []]
        current = self.model.round_id()
        later = rounds[rounds.index(current) + 1:] if current in rounds else []
        if not later:
            self.console.show_error("There is no later round to start.")
            return
        self.ask(f"Start round {later[0]}",
                 f"Round {later[0]} opens: every active team joins it, with the replacement "
                 "teams added for it. Only once the current round is published.",
                 f"Start {later[0]}", f"/api/rounds/{later[0]}/start", danger=True)


class BoardView(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, board: Text) -> None:
        super().__init__(classes="dialog")
        self.board = board

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.board, markup=False)
            yield Static(Text("Esc closes · the public sees this board once the step is shown",
                              style="dim"), markup=False)

    def action_close(self) -> None:
        self.dismiss(None)


class QrView(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, address: str, signed_in: bool) -> None:
        super().__init__(classes="dialog")
        self.address = address
        self.signed_in = signed_in

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog", classes="qr", can_focus=False):
            yield Static(Text("Scan: presenter remote", style="bold"),
                         markup=False)
            yield Static(qr_text(self.address), id="qr", markup=False)
            yield Static(self.address, markup=False)
            yield Static(Text("Signed in: the token is in the code." if self.signed_in else
                              "The phone asks for the presenter's token (start the console "
                              "with --presenter-token to put it in the code).", style="dim"),
                         markup=False)

    def action_close(self) -> None:
        self.dismiss(None)


def qr_text(address: str) -> str:
    """A QR code in text: light modules drawn, two rows a line (segno's compact form), as
    small as it gets (error level L, raised where that costs no size), to fit 80x24."""
    import io

    import segno

    out = io.StringIO()
    segno.make(address, error="l").terminal(out=out, compact=True, border=1)
    return out.getvalue().rstrip("\n")


def ff_target(model: ShowModel, step: int) -> int:
    """Where ``ff`` goes from ``step`` (protocol 16.5), so that the press names it."""
    steps = model.steps()
    reveal = model.reveal() or {}
    for n in range(step + 1, len(steps) + 1):
        s = steps[n - 1]
        if s.get("confirm"):
            if n == step + 1:
                return n  # refused unless armed; the server says so in its words
            return n - 1
        if s.get("pause"):
            return n
    return int(reveal.get("total") or len(steps))


def reveal_state(model: ShowModel) -> Text:
    line = Text()
    rnd = model.round()
    if rnd is None:
        return line
    line.append(f" {rnd['id']} {rnd.get('name_en', '')} ", style="bold")
    reveal = rnd.get("reveal")
    if reveal is None:
        if rnd.get("phase") == "published":
            line.append(" published. S starts the next round.", style="green")
        else:
            line.append(f" {rnd.get('phase')}, not frozen · z freezes it for its reveal · P "
                        "publishes it at once", style="dim")
        return line
    line.append(" FROZEN ", style="bold white on magenta")
    line.append(f" step {reveal['step']}/{reveal['total']} · speed {fmt_num(reveal['speed'])} ")
    if reveal.get("locked"):
        reason = f": {reveal['lock_reason']}" if reveal.get("lock_reason") else ""
        line.append(f" presenter LOCKED{reason} ", style="bold white on red")
    else:
        line.append(" presenter unlocked", style="dim")
    return line


def on_screen(model: ShowModel, step: int | None) -> Text:
    line = Text()
    if step is None:
        return line
    line.append(" ON SCREEN ", style="bold reverse")
    current = model.step_text(step) if step else None
    line.append(f" {step}: {current.get('text')}" if current else " step 0: nothing yet")
    return line


def next_step(model: ShowModel) -> Text:
    line = Text(overflow="fold")
    reveal = model.reveal()
    if reveal is None:
        return line
    nxt = model.next_step()
    if nxt is None:
        done = int(reveal["step"]) >= int(reveal["total"])
        line.append(" the reveal is complete: the round is published " if done
                    else " reading the script… ", style="bold green" if done else "dim")
        return line
    armed = reveal.get("armed") == nxt["n"]
    if nxt.get("confirm"):
        line.append(" ARMED: n SHOWS IT " if armed else " ELIMINATION: a arms, then n ",
                    style="bold white on red" if armed else "bold black on yellow")
    else:
        line.append(" NEXT ▶ ", style="bold black on green")
    line.append(f" {nxt['n']}: {nxt.get('text')}", style="bold")
    return line


def script_rows(model: ShowModel, step: int | None) -> list[tuple[str, list[Any]]]:
    rows: list[tuple[str, list[Any]]] = []
    reveal = model.reveal() or {}
    for s in model.steps():
        n = int(s["n"])
        mark = "▶" if n == step else ("✖" if s.get("confirm") else ("‖" if s.get("pause")
                                                                      else ""))
        if reveal.get("armed") == n:
            mark = "ARM"
        style = "bold" if n == (step or 0) + 1 else ("dim" if step is not None and n < step
                                                      else "")
        if n == step:
            style = "bold reverse"
        rows.append((str(n), [Text(mark, style="bold red" if s.get("confirm") else ""),
                              Text(str(n), justify="right", style=style),
                              Text(str(s.get("kind", "")), style=style),
                              Text(str(s.get("text", "")), style=style)]))
    return rows


def board_text(model: ShowModel, step: Json) -> Text:
    board = step.get("board") or {}
    criteria = [c["id"] for c in model.criteria()]
    digits = model.precision()
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f"step {step.get('n')}: {step.get('text')}\n", style="bold")
    out.append(f"{'':>2} {'team':<15}" + "".join(f" {c[:6]:>6}" for c in criteria)
               + f" {'total':>6}\n", style="dim")
    for row in board.get("rows") or []:
        team = model.team(row["team"])
        pos = row.get("position")
        out.append(f"{pos if pos is not None else '–':>2} ")
        out.append(f"{str(team.get('name_en', row['team']))[:15]:<15}", style=team_style(team))
        for criterion in criteria:
            out.append(f" {fmt_points((row.get('points') or {}).get(criterion), digits):>6}")
        out.append(f" {fmt_points(row.get('total'), digits):>6}", style="bold")
        if row.get("status") != "active":
            out.append(f" {row.get('status')}", style="red")
        out.append("\n")
    cut = board.get("cut")
    if cut:
        out.append(f"cut: {cut.get('survivors')} go through ({cut.get('rule')})\n",
                   style="bold red")
    return out
