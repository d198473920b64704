"""The showcase operator console: a Textual app that runs the show through the server's
public HTTP and WebSocket API, as any client would (``showcase console URL``)."""

from __future__ import annotations

__all__ = ["run"]


def run(url: str, token: str, user: str | None = None) -> None:
    """Open the console against ``url`` with the operator's ``token`` until the user quits."""
    from .app import ConsoleApp

    ConsoleApp(url, token, user=user).run()
