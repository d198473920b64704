"""The pages a person opens in a browser: the gallery of overlays, the presenter remote, the
judge's page and the page that explains how to verify the results."""

from __future__ import annotations

import functools
import html
import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from showcase import __version__
from showcase.core.showfile import Show

OVERLAYS = [
    ("scoreboard.html", "Scoreboard", "teams ranked with their points, the cut line and status"),
    ("reveal.html", "Reveal", "the reveal, step by step, in lockstep with the presenter"),
    ("demo.html", "Live demo", "the prompt and every team's answer streaming, TTFT, tokens/s"),
    ("lower-third.html?team=lg", "Lower third", "a team's name and organisation (?team=ID)"),
    ("ticker.html", "Ticker", "every team's live latency along the bottom"),
    ("bench.html", "Benchmark progress",
     "per team and suite: items scored, items a second, time left (accuracy when public)"),
    ("votes.html", "Audience voting", "voting open, a countdown and the count, never the split"),
]


def overlays_dir() -> Path:
    """The overlay pages: the folder named by SHOWCASE_OVERLAYS (a patched set of pages,
    served without reinstalling), else the showcase_overlays package, or the checkout's."""
    chosen = os.environ.get("SHOWCASE_OVERLAYS")
    if chosen:
        return Path(chosen)
    try:
        from importlib.resources import files

        found = Path(str(files("showcase_overlays")))
        if (found / "scoreboard.html").exists():
            return found
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parents[2] / "overlays"


async def index(request: Request) -> Response:
    """The gallery of overlays and the API's entry points."""
    show: Show = request.app.state.services.show
    return HTMLResponse(_index_page(show))


async def remote(request: Request) -> Response:
    """The presenter remote, a page for a phone."""
    return HTMLResponse(_remote_page(), headers={"cache-control": "no-cache"})


async def judge(request: Request) -> Response:
    """The judge's page, for a phone or a tablet: their own sheets, entered and corrected."""
    return HTMLResponse(_static("judge.html"), headers={"cache-control": "no-cache"})


async def verify(request: Request) -> Response:
    """How anyone checks the results: the signed checkpoint, the key, the commands."""
    return HTMLResponse(_static("verify.html"), headers={"cache-control": "no-cache"})


async def vote_page(request: Request) -> Response:
    """The audience's voting page, for a phone: two anonymous answers, A or B."""
    return HTMLResponse(_static("vote.html"), headers={"cache-control": "no-cache"})
async def favicon(request: Request) -> Response:
    """The icon every browser asks for (an SVG: three bars of a scoreboard), so that no page
    logs a 404 for it."""
    return Response(_static("favicon.svg"), media_type="image/svg+xml",
                    headers={"cache-control": "max-age=86400"})


def _remote_page() -> bytes:
    return _static("remote.html")


@functools.cache
def _static(name: str) -> bytes:
    return (Path(__file__).parents[1] / "static" / name).read_bytes()


def _index_page(show: Show) -> str:
    """The gallery: every overlay with its URL, for whoever sets up OBS, and the API."""
    cards = "".join(
        f'<li><a href="/overlays/{u}">{html.escape(t)}</a> <code>/overlays/{html.escape(u)}</code>'
        f"<br><small>{html.escape(d)}</small></li>" for u, t, d in OVERLAYS)
    links = [("/remote", "presenter remote (phone): step through the reveal"),
             ("/vote", "audience voting (phone): two anonymous answers, pick the better"),
             ("/judge", "judge's page (phone or tablet): enter and correct your own sheets"),
             ("/verify", "how anyone checks the results (Korean and English)"),
             ("/openapi.json", "every route, its body and its answers (OpenAPI 3.1)"),
             ("/api/state", "state of the show (JSON, public view without a token)"),
             ("/events", "event stream (server-sent events)"),
             ("/healthz", "health check"), ("/metrics", "Prometheus metrics")]
    items = "".join(f'<li><a href="{u}">{u}</a> {html.escape(d)}</li>' for u, d in links)
    return (f"<!doctype html><meta charset=utf-8><title>{html.escape(show.title_en)}</title>"
            "<style>body{font:16px/1.5 system-ui,'Noto Sans CJK KR',sans-serif;max-width:60em;"
            "margin:2em auto;padding:0 1em}li{margin:.5em 0}code{background:#eee;padding:0 .3em}"
            "</style>"
            f"<h1>{html.escape(show.title_ko)} · {html.escape(show.title_en)}</h1>"
            f"<p>showcase {__version__}</p>"
            "<h2>Overlays</h2><p>For OBS: add a Browser source of 1920×1080 with the URL below "
            "(the page is transparent). Options: <code>?lang=ko</code> or <code>?lang=en</code>, "
            "<code>?bg=000000</code> for a solid background, <code>?team=ID</code> for one "
            "team: the lower third shows it, the scoreboard and the reveal outline its row, "
            "and the ticker shows it alone; <code>?proof=1</code> on the scoreboard and the "
            "reveal shows, under a published result, the fingerprint of the log's signed "
            f"checkpoint and the address of <a href=\"/verify\">/verify</a>.</p><ul>{cards}</ul>"
            f"<h2>Control and data</h2><ul>{items}</ul>"
            "<p>WebSocket: <code>/ws?since=N</code>. Commands: see docs/protocol.md.</p>")
