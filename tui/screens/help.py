"""Every key of the console, read from the bindings themselves so that it cannot go stale."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static


def key_name(key: str) -> str:
    names = {"slash": "/", "question_mark": "?", "escape": "Esc", "enter": "Enter",
             "tab": "Tab", "plus": "+", "minus": "-"}
    out = []
    for k in key.split(","):
        k = names.get(k, k)
        for prefix, word in (("ctrl+", "Ctrl+"), ("alt+", "Alt+"), ("shift+", "Shift+")):
            k = k.replace(prefix, word)
        out.append("F1" if k == "f1" else k)
    return " ".join(out)


def bindings_table(bindings: Iterable[BindingType]) -> Table:
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("does")
    for binding in bindings:
        if isinstance(binding, Binding) and binding.description:
            table.add_row(key_name(binding.key), binding.description)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,f1,question_mark", "close", "Close")]

    def __init__(self, sections: list[tuple[str, str, Iterable[BindingType]]]) -> None:
        super().__init__(classes="dialog")
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog", classes="help"):
            yield Label(Text("Keys (Esc closes)", style="bold"))
            yield Static(
                "The same keys work on every screen: the digits switch screens, F1 or ? "
                "opens this help, Ctrl+P the command palette (every action, by name). In a "
                "text field, Esc leaves the field so that the keys work again. Every action "
                "that changes the show opens a dialog that says what will happen; nothing is "
                "sent until its button is pressed. While the console is not connected, "
                "commands are refused, never queued.", markup=False)
            for title, about, bindings in self.sections:
                # The section's purpose under its title, as wide as the dialog (a table's
                # caption was as narrow as the keys beside it).
                yield Static(Text(title, style="bold"), classes="help-title", markup=False)
                if about:
                    yield Static(about, classes="help-about", markup=False)
                yield Static(bindings_table(bindings))

    def action_close(self) -> None:
        self.dismiss(None)
