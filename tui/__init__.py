"""The showcase operator console: a Textual app that runs the show through the server's
public HTTP and WebSocket API, as any client would (``showcase console URL``)."""

from __future__ import annotations

__all__ = ["run"]


def run(url: str, token: str, user: str | None = None,
        presenter_token: str | None = None) -> None:
    """Open the console against ``url`` with the operator's ``token`` until the user quits.
    ``presenter_token`` goes into the remote's QR code (Q on the Reveal screen)."""
    from .app import ConsoleApp

    ConsoleApp(url, token, user=user, presenter_token=presenter_token).run()
