"""What a screen may ask of the console it runs in.

The screens are drawn by the app and must not import it (the app imports every screen), so
they see it through this protocol: the shared model, the client that sends commands, the
section tabs and the way refusals are shown.
"""

from __future__ import annotations

from typing import Protocol

from .client import CommandError, ShowClient
from .model import ShowModel


class Desk(Protocol):
    model: ShowModel
    client: ShowClient
    url: str  # the server's, as the console was started with it
    presenter_token: str | None  # for the remote's QR code, when the console was given it

    def section_tabs(self) -> list[tuple[str, str, str]]:
        """(section id, key, label) of every section, in key order."""
        ...

    def show_error(self, error: CommandError | str) -> None:
        """Show a refusal as the server worded it, or a warning of the console's own."""
        ...
