"""The one dialog every action goes through: it says what will happen, asks for what the
server needs (a reason, a value), sends it, and shows the server's refusal as it was worded.

Nothing is sent by a stray key, and every dialog takes the same keys: the first field has
the focus, or the confirm button when there is no field; Enter in a field moves on to the
next field and from the last to the confirm button; only the button (Enter on it, a click,
or Ctrl+S) sends. The Cancel button takes no focus, so Tab never lands on it and Tab then
Enter cannot cancel by surprise (issue 20, finding 5); Escape or a click cancels.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from ..client import CommandError
from ..model import Json
from ..wording import in_keys
from .tickbox import TickBox

#: Under every dialog's buttons: the same three keys everywhere.
KEYS_LINE = "Enter on the button or Ctrl+S: {confirm} · Esc: cancel, nothing is sent"

Values = dict[str, str | bool]


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    placeholder: str = ""
    value: str = ""
    required: bool = False
    check: bool = False  # a checkbox instead of a text field


class ActionDialog(ModalScreen[Json | None]):
    """Dismissed with the server's answer, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "confirm", "Confirm", priority=True),
    ]

    def __init__(self, title: str, explain: str | Callable[[Values], str], confirm: str,
                 send: Callable[[Values], Awaitable[Json]], fields: Sequence[Field] = (),
                 danger: bool = False) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.explain = explain
        self.confirm_label = confirm
        self.send = send
        self.fields = list(fields)
        self.danger = danger
        self.busy = False

    def compose(self) -> ComposeResult:
        # Scrolls when its fields do not fit (a replacement team's, on 80x24); the focused
        # field is scrolled into view.
        # can_focus=False: Tab moves among the fields and the confirm button only.
        with VerticalScroll(id="dialog", can_focus=False):
            yield Label(Text(self.title_text, style="bold"), id="dialog-title")
            yield Static(self._explain_text(), id="dialog-explain", markup=False)
            for f in self.fields:
                if f.check:
                    yield TickBox(f.label, value=f.value == "yes", id=f"field-{f.name}",
                                  compact=True)
                else:
                    yield Label(f.label + (" (required)" if f.required else ""))
                    yield Input(value=f.value, placeholder=f.placeholder, id=f"field-{f.name}",
                                compact=True)
            yield from self.buttons()

    def buttons(self) -> ComposeResult:
        """The error line, the buttons and the keys line, the same in every dialog."""
        yield Static("", id="dialog-error", markup=False)
        with Horizontal(id="dialog-buttons"):
            yield Button(self.confirm_label, id="confirm", compact=True,
                         variant="error" if self.danger else "primary")
            cancel = Button("Cancel", id="cancel", compact=True)
            cancel.can_focus = False
            yield cancel
        yield Static(Text(KEYS_LINE.format(confirm=self.confirm_label), style="dim"),
                     id="dialog-keys", markup=False)

    def on_mount(self) -> None:
        self.focus_first()

    def focus_first(self) -> None:
        """The one focus rule: the first field, else the confirm button."""
        fields = [w for w in self.query("Input, Checkbox, SelectionList, Select")
                  if w.focusable]
        (fields[0] if fields else self.query_one("#confirm", Button)).focus()

    def values(self) -> Values:
        out: Values = {}
        for f in self.fields:
            if f.check:
                out[f.name] = self.query_one(f"#field-{f.name}", Checkbox).value
            else:
                out[f.name] = self.query_one(f"#field-{f.name}", Input).value.strip()
        return out

    def _explain_text(self) -> str:
        if callable(self.explain):
            return self.explain(self.values() if self.is_mounted else
                                {f.name: (f.value == "yes") if f.check else f.value
                                 for f in self.fields})
        return self.explain

    @on(Input.Changed)
    @on(Checkbox.Changed)
    def _changed(self) -> None:
        self._explain_again()
        self.query_one("#dialog-error", Static).update("")

    def _explain_again(self) -> None:
        if callable(self.explain):
            self.query_one("#dialog-explain", Static).update(self._explain_text())

    @on(Input.Submitted)
    def _next_field(self, event: Input.Submitted) -> None:
        event.stop()
        self.focus_next()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if not self.busy:
            self.dismiss(None)

    @on(Button.Pressed, "#confirm")
    async def action_confirm(self) -> None:
        if self.busy:
            return
        values = self.values()
        missing = [f.label for f in self.fields if f.required and not values.get(f.name)]
        if missing:
            self._error(f"{missing[0]} is required.")
            return
        self.busy = True
        try:
            answer = await self.send(values)
        except CommandError as exc:
            self._explain_again()  # a refusal may have told what is there now
            self._error(str(exc))
            return
        finally:
            self.busy = False
        self.dismiss(answer)

    def _error(self, message: str) -> None:
        self.query_one("#dialog-error", Static).update(Text(in_keys(message), style="bold red"))


class PickDialog(ModalScreen[str | None]):
    """Asks which one: a list to pick from (Enter picks, Esc cancels, nothing is sent).
    The command palette opens one for an action whose target is otherwise the cursor's
    row, which the operator never chose there (issue 20, finding 3)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, choices: Sequence[tuple[str, str]]) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.choices = list(choices)  # (id, what the operator reads)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Label(Text(self.title_text, style="bold"), id="dialog-title")
            yield OptionList(*(Option(label, id=ident) for ident, label in self.choices),
                             id="pick", compact=True)
            yield Static(Text("Enter picks · Esc: cancel, nothing is sent", style="dim"),
                         id="dialog-keys", markup=False)

    def on_mount(self) -> None:
        self.query_one("#pick", OptionList).focus()

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
