"""The operator console: the App, its sections, the keys that work on every screen, and the
fixed-rate redraw that keeps many updates a second smooth."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from .client import CommandError, ShowClient
from .model import ShowModel
from .screens.base import ConsoleScreen
from .screens.bench import BenchScreen
from .screens.demo import DemoScreen
from .screens.help import HelpScreen
from .screens.log import LogScreen
from .screens.outputs import OutputsScreen
from .screens.overview import OverviewScreen
from .screens.reveal import RevealScreen
from .screens.scores import ScoresScreen
from .screens.votes import VotesScreen
from .wording import in_keys


@dataclass(frozen=True)
class Section:
    """One section of the console. To add one: write a ``ConsoleScreen`` subclass in a module
    of tui/screens/ and add a line to ``SECTIONS``; the screens, the keys, the top bar, the help
    and the command palette are built from this list."""

    key: str
    label: str
    screen: type[ConsoleScreen]

    @property
    def id(self) -> str:
        return self.screen.SECTION


SECTIONS: tuple[Section, ...] = (
    Section("1", "Overview", OverviewScreen),
    Section("2", "Demo", DemoScreen),
    Section("3", "Scores", ScoresScreen),
    Section("4", "Reveal", RevealScreen),
    Section("5", "Log", LogScreen),
    Section("6", "Bench", BenchScreen),
    Section("7", "Air", OutputsScreen),
    Section("8", "Votes", VotesScreen),
)


def own_bindings(screen: type[ConsoleScreen]) -> list[BindingType]:
    """A section's own keys, without those every Textual screen has (Tab, Ctrl+C), which
    the help lists once for every screen."""
    generic = Screen.BINDINGS
    return [b for b in screen.BINDINGS if b not in generic]


#: Most redraws a second. Tick frames arrive at the show's frame rate (10 by default, up to
#: 60) and events in bursts; they are merged into the model and drawn at most this often.
FRAME_RATE = 20


class ConsoleApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "showcase console"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]  # noqa: RUF012 (Textual's)
    MODES: ClassVar[dict[str, str | Callable[[], Screen[object]]]] = {
        s.id: s.screen for s in SECTIONS}  # type: ignore[misc]
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(s.key, f"section('{s.id}')", s.label, show=False) for s in SECTIONS),
        # Alt+digit switches too while typing in a text field, where a digit is text.
        *(Binding(f"alt+{s.key}", f"section('{s.id}')", s.label, show=False, priority=True)
          for s in SECTIONS),
        Binding("escape", "leave_field", "Leave field", show=False),
        Binding("f1,question_mark", "help", "Help"),
        Binding("ctrl+r", "reload", "Re-read", show=False),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, url: str, token: str, user: str | None = None,
                 frame_rate: float = FRAME_RATE, presenter_token: str | None = None) -> None:
        super().__init__()
        self.model = ShowModel()
        self.client = ShowClient(url, token, self.model, user=user, on_change=self.poke)
        self.url = url
        self.presenter_token = presenter_token
        self.frame_interval = 1.0 / frame_rate
        self._last_redraw = 0.0
        self._last_urgent = 0.0
        self._told_refused = False
        self._redraw_pending = False
        self.redraws = 0  # for the benchmark: how often a screen was actually redrawn
        self.drawn_seq: list[tuple[int, float]] = []  # (state seq, wall clock) of each redraw

    def section_tabs(self) -> list[tuple[str, str, str]]:
        return [(s.id, s.key, s.label) for s in SECTIONS]

    def on_mount(self) -> None:
        self.sub_title = self.url
        self.switch_mode(SECTIONS[0].id)
        self.run_worker(self.client.run(), name="connection", exit_on_error=False)
        # A slow backstop: redraws are driven by poke(); this one only keeps a screen
        # honest if a change ever arrives without a poke.
        self.set_interval(1.0, self.poke)

    # -- redraw at a fixed rate -------------------------------------------------

    def poke(self, urgent: bool = False) -> None:
        """Something changed: redraw at the next frame, at most one redraw per frame however
        many messages arrive. ``urgent`` (a durable change: rare, and what the operator
        waits for) redraws now, without waiting for the frame."""
        now = time.monotonic()
        if urgent and now - self._last_urgent >= self.frame_interval:
            # At most one of these a frame too, so a flood of durable events (a benchmark
            # run logs every item) is capped like the tick frames.
            self._last_urgent = now
            self._redraw_pending = True
            self.call_later(self._redraw)
            return
        if self._redraw_pending:
            return
        self._redraw_pending = True
        wait = self._last_redraw + self.frame_interval - now
        if wait <= 0:
            self.call_later(self._redraw)
        else:
            self.set_timer(wait, self._redraw)

    def _redraw(self) -> None:
        self._redraw_pending = False
        self._last_redraw = time.monotonic()
        if self.model.connection == "refused" and not self._told_refused:
            self._told_refused = True  # the console stops trying: say why, and keep saying it
            self.notify(f"{self.model.connection_detail}\nStart the console again with the "
                        "operator's token.", title="The server refused this console",
                        severity="error", timeout=3600)
        screen = self.section_screen()
        if screen is not None:
            before = screen._drawn
            screen.redraw()
            if screen._drawn != before:
                self.redraws += 1
                if self.model.seq is not None:
                    self.drawn_seq.append((self.model.state_seq, time.time()))
                    del self.drawn_seq[:-1000]

    def section_screen(self) -> ConsoleScreen | None:
        """The section on view, also under a dialog (which leaves it visible)."""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, ConsoleScreen):
                return screen
        return None

    # -- keys that work on every screen -------------------------------------------

    def action_section(self, section: str) -> None:
        if isinstance(self.screen, ConsoleScreen):
            self.switch_mode(section)

    def action_leave_field(self) -> None:
        """Esc in a text field: leave it, so that the keys work again."""
        if isinstance(self.screen, ConsoleScreen) and self.screen.focused is not None:
            self.screen.focus_main()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        sections: list[tuple[str, str, Iterable[BindingType]]] = [
            ("Every screen", "", [
                *(Binding(f"{s.key},alt+{s.key}", "", s.label) for s in SECTIONS),
                Binding("f1,question_mark", "", "this help"),
                Binding("ctrl+p", "", "command palette: every action by name"),
                Binding("ctrl+r", "", "re-read the state, script, demo and log"),
                Binding("escape", "", "leave a text field; close a dialog"),
                Binding("tab", "", "next field or table"),
                Binding("ctrl+q", "", "quit the console (the show goes on)"),
            ]),
            *((f"{s.key} {s.label}", s.screen.HELP, own_bindings(s.screen)) for s in SECTIONS),
            ("In a dialog", "", [Binding("enter", "", "next field; on the button: confirm"),
                                 Binding("ctrl+s", "", "confirm"),
                                 Binding("escape", "", "cancel: nothing is sent")]),
        ]
        self.push_screen(HelpScreen(sections))

    def action_reload(self) -> None:
        self.client.reload()
        self.notify("Reading the state again", timeout=2)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for section in SECTIONS:
            yield SystemCommand(f"Go to {section.label} ({section.key})", section.screen.HELP,
                                partial(self.switch_mode, section.id))
            for binding in own_bindings(section.screen):
                if isinstance(binding, Binding) and binding.description:
                    yield SystemCommand(
                        f"{section.label}: {binding.description} ({binding.key})",
                        f"on the {section.label} screen",
                        partial(self._run_on, section.id, binding.action))

    async def _run_on(self, section: str, action: str) -> None:
        await self.switch_mode(section)
        if isinstance(self.screen, ConsoleScreen):
            await self.screen.from_palette(action)

    def show_error(self, error: CommandError | str) -> None:
        """A refusal, as the server worded it (``error``, then ``detail``)."""
        if isinstance(error, CommandError):
            title = f"Refused ({error.status})" if error.status else "Not done"
            self.notify(in_keys(str(error)), title=title, severity="error", timeout=10)
        else:
            self.notify(in_keys(error), severity="warning", timeout=5)
