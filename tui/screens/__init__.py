"""The console's sections, in the order of their keys.

To add one: write a ``ConsoleScreen``
subclass in a module of this package and add a ``Section`` line below. The app builds its
screens, the keys, the top bar, the help and the command palette from this list.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import ConsoleScreen
from .bench import BenchScreen
from .demo import DemoScreen
from .log import LogScreen
from .overview import OverviewScreen
from .reveal import RevealScreen
from .scores import ScoresScreen


@dataclass(frozen=True)
class Section:
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
)

__all__ = ["SECTIONS", "ConsoleScreen", "Section"]
