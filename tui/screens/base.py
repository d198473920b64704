"""What every section's screen has: the top bar, the reveal line, the footer, and a way to
be redrawn from the model at the console's frame rate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, cast

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from ..client import CommandError, Refused
from ..desk import Desk
from ..model import Json, ShowModel
from ..widgets.bars import RevealLine, TopBar
from ..widgets.dialog import ActionDialog, Field


class ConsoleScreen(Screen[None]):
    """A section of the console. Subclasses compose ``body()`` and draw in ``draw()``."""

    SECTION: ClassVar[str] = ""
    # When a dialog closes with nothing focused, Textual focuses the first widget it finds:
    # a text field would then take the next keys as text (a second demo sent by accident,
    # issue 20). Only a table ever takes the focus by itself.
    AUTO_FOCUS = "DataTable"
    HELP: ClassVar[str] = ""  # a line for the help screen: what this section is for

    def __init__(self) -> None:
        super().__init__(id=f"screen-{self.SECTION}")
        self._drawn = -1

    @property
    def console(self) -> Desk:
        return cast(Desk, self.app)

    @property
    def model(self) -> ShowModel:
        return self.console.model

    def compose(self) -> ComposeResult:
        yield TopBar(self.console.section_tabs(), self.SECTION)
        yield from self.body()
        yield RevealLine()
        yield Footer()

    def body(self) -> ComposeResult:
        yield from ()

    def focus_main(self) -> None:
        """Focus the screen's main table (Esc from a text field comes here)."""
        tables = list(self.query("DataTable"))
        if tables:
            tables[0].focus()
        else:
            self.set_focus(None)

    async def from_palette(self, action: str) -> None:
        """Run an action chosen by name in the command palette. A screen whose action acts
        on the cursor's row asks for its target here instead, as the operator chose none."""
        await self.run_action(action)

    def on_screen_resume(self) -> None:
        self.redraw(force=True)

    def redraw(self, force: bool = False) -> None:
        """Called at most at the console's frame rate; draws only when the model moved."""
        version = self.model.versions.total()
        if version == self._drawn and not force:
            return
        self._drawn = version
        self.query_one(TopBar).show(self.model)
        self.query_one(RevealLine).show(self.model)
        self.draw(self.model, force)

    def draw(self, model: ShowModel, force: bool) -> None:
        """Show what the model holds now."""

    # -- actions shared by the sections ------------------------------------------

    async def send(self, path: str, body: Json | None = None, done: str = "") -> Json | None:
        """Send a command with no dialog; a refusal is shown as the server worded it."""
        try:
            answer = await self.console.client.command(path, body)
        except CommandError as exc:
            self.console.show_error(exc)
            return None
        self.notify(done or f"{answer.get('type')} recorded as seq {answer.get('seq')}",
                    timeout=3)
        return answer

    def ask(self, title: str, explain: str | Callable[[dict[str, Any]], str], confirm: str,
            path: str | Callable[[dict[str, Any]], str],
            body: Callable[[dict[str, Any]], Json | None] | None = None,
            fields: Sequence[Field] = (), danger: bool = False, done: str = "",
            refused: Callable[[Refused], None] | None = None) -> None:
        """Open a dialog that says what will happen, then send the command from it.

        ``refused`` sees a refusal before the dialog shows it (and says again what will
        happen), so that the dialog can take in what the server says is there now."""

        async def send(values: dict[str, Any]) -> Json:
            target = path(values) if callable(path) else path
            try:
                return await self.console.client.command(target, body(values) if body else {})
            except Refused as exc:
                if refused is not None:
                    refused(exc)
                raise

        def finished(answer: Json | None) -> None:
            if answer is not None:
                self.notify(done or f"{answer.get('type')} recorded as seq {answer.get('seq')}",
                            timeout=3)

        self.app.push_screen(ActionDialog(title, explain, confirm, send, fields, danger),
                             finished)

