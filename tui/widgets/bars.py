"""The bars every screen shares: sections and connection on top, the reveal's next step."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..model import ShowModel

CONNECTION_STYLE = {
    "connected": ("●", "bold green"),
    "connecting": ("◌", "bold yellow"),
    "reconnecting": ("◌", "bold black on yellow"),
    "refused": ("✖", "bold white on red"),
}


class TopBar(Static):
    """``1 Overview  2 Demo ...`` with the current screen lit, then the connection and seq."""

    def __init__(self, sections: list[tuple[str, str, str]], current: str) -> None:
        super().__init__(id="topbar", markup=False)
        self.sections = sections  # (id, key, label)
        self.current = current
        self._shown: tuple[object, ...] = ()

    def show(self, model: ShowModel) -> None:
        key = (model.connection, model.connection_detail, model.attempts, model.seq,
               self.size.width)
        if key == self._shown:
            return
        self._shown = key
        self.update(self.render_bar(model), layout=False)

    def render_bar(self, model: ShowModel) -> Text:
        right = self._connection(model)
        # The other sections' names shorten, then go, before the connection and seq would:
        # on 80 columns the seq stays readable however many sections there are.
        for short in (None, 3, 0):
            bar = self._sections(short)
            if bar.cell_len + right.cell_len <= self.size.width:
                break
        room = max(1, self.size.width - bar.cell_len - right.cell_len)
        bar.append(" " * room)
        bar.append_text(right)
        return bar

    def _sections(self, short: int | None) -> Text:
        bar = Text(no_wrap=True, overflow="ellipsis")
        for ident, key, label in self.sections:
            current = ident == self.current
            bar.append(f" {key} ", style="bold " + ("reverse" if current else "dim"))
            if current or short is None:
                bar.append(f"{label} ", style="bold reverse" if current else "")
            elif short:
                bar.append(f"{label[:short]} ")
        return bar

    def _connection(self, model: ShowModel) -> Text:
        mark, style = CONNECTION_STYLE.get(model.connection, ("?", ""))
        seq = "—" if model.seq is None else str(model.seq)
        words = {"connected": "live", "connecting": "connecting",
                 "reconnecting": f"reconnecting (try {model.attempts})",
                 "refused": "refused"}.get(model.connection, model.connection)
        right = Text(f" {mark} {words} ", style=style)
        right.append(f" seq {seq} ", style="bold")
        return right


class RevealLine(Static):
    """While the current round is frozen: where the reveal is and the next step's text."""

    def __init__(self) -> None:
        super().__init__(id="revealline", markup=False)
        self._shown: object = None

    def show(self, model: ShowModel) -> None:
        reveal = model.reveal()
        nxt = model.next_step()
        key = (model.round_id(), None if reveal is None else tuple(sorted(reveal.items())),
               None if nxt is None else nxt.get("n"), len(model.steps()))
        if key == self._shown:
            return
        self._shown = key
        self.set_class(reveal is None, "-idle")
        if reveal is None:
            return
        self.update(reveal_summary(model), layout=False)


def reveal_summary(model: ShowModel) -> Text:
    reveal = model.reveal() or {}
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f" Reveal {model.round_id()} {reveal.get('step')}/{reveal.get('total')} ",
                style="bold reverse")
    if reveal.get("locked"):
        line.append(" LOCKED ", style="bold white on red")
    nxt = model.next_step()
    if nxt is None:
        done = int(reveal.get("step") or 0) >= int(reveal.get("total") or 0) > 0
        line.append(" the reveal is complete" if done else " next: (reading the script)",
                    style="dim")
        return line
    if nxt.get("confirm"):
        armed = reveal.get("armed") == nxt.get("n")
        line.append(" ARMED " if armed else " ELIMINATION ",
                    style="bold white on red" if armed else "bold black on yellow")
    line.append(f" next {nxt.get('n')}: ", style="bold")
    line.append(str(nxt.get("text", "")))
    return line


def show_line(widget: Static, text: Text) -> None:
    """A header line that wraps rather than being cut (issue 20: "open · frozen ·" at 80
    columns). Laid out again only when its text changed: a line can take two rows, and
    the frames in between cost no layout pass."""
    if widget.content != text:
        widget.update(text)
