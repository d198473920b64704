"""Outputs seen from the desk (issue 19): every overlay page says hello on its connection
and the operator lists them, reloads them and takes or clears their graphics."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.sync_api import Browser, Page, expect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from showcase.server.pages import overlays_dir
from tests.conftest import Server


def outputs(server: Server) -> dict[str, Any]:
    with server.client() as c:
        response = c.get("/api/outputs")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def wait_for(find: Callable[[], Any], what: str, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not seen within {timeout} s: {what}")


def listed(server: Server, **want: Any) -> Callable[[], dict[str, Any] | None]:
    def find() -> dict[str, Any] | None:
        return next((o for o in outputs(server)["outputs"]
                     if all(o.get(k) == v for k, v in want.items())), None)
    return find


def test_an_overlay_page_is_listed_with_its_page_language_build_and_seq(
        server: Server, page: Page) -> None:
    page.goto(f"{server.url}/overlays/lower-third.html?team=lg&lang=ko")
    expect(page.locator("#name")).to_have_text("LG AI연구원")
    seen = wait_for(listed(server, page="lower-third"), "the lower third's hello")
    listing = outputs(server)
    assert seen["lang"] == "ko" and seen["options"] == {"team": "lg", "lang": "ko"}
    assert seen["build"] == listing["build"] and seen["drift"] is False
    assert seen["seq"] == listing["seq"] and seen["behind"] == 0 and seen["stale"] is False
    assert seen["on_air"] is None  # a browser, not OBS
    # The list is the operator's: a viewer is refused, by name.
    with server.client(token=None) as c:
        refused = c.get("/api/outputs")
    assert refused.status_code == 401 and "listing the outputs" in refused.json()["error"]


@pytest.fixture
def own_overlays(tmp_path: Path) -> Path:
    """A copy of the overlay pages that the test can change, as a patched build would."""
    folder = tmp_path / "overlays"
    shutil.copytree(overlays_dir(), folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


@pytest.fixture
def patched_server(tmp_path: Path, showfile: Path, own_overlays: Path) -> Iterator[Server]:
    srv = Server(showfile, tmp_path / "data", env={"SHOWCASE_OVERLAYS": str(own_overlays)})
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_a_page_reloaded_from_the_desk_comes_back_with_the_new_build(
        patched_server: Server, own_overlays: Path, page: Page) -> None:
    server = patched_server
    page.goto(f"{server.url}/overlays/ticker.html?lang=en")
    first = wait_for(listed(server, page="ticker"), "the ticker's hello")
    old_build = first["build"]
    # A new build of the pages is deployed and the server restarted: the page reconnects
    # by itself but still runs the old code, and the desk sees the drift.
    ticker = own_overlays / "ticker.html"
    ticker.write_text(ticker.read_text(encoding="utf-8") + "<!-- build 2 -->\n",
                      encoding="utf-8")
    server.restart()
    drifted = wait_for(listed(server, page="ticker", drift=True), "the drift after a restart")
    assert drifted["build"] == old_build != outputs(server)["build"]
    answer = server.post("/api/outputs/reload", {"output": drifted["id"]})
    assert answer.status_code == 202, answer.text
    assert answer.json()["reloading"] == [drifted["id"]]
    back = wait_for(listed(server, page="ticker", drift=False), "the reloaded page's hello")
    assert back["id"] != drifted["id"]  # a new connection: the page loaded itself again
    assert back["build"] == outputs(server)["build"] != old_build
    assert len(outputs(server)["outputs"]) == 1  # the old connection is gone from the list
    # Asking for an output the node does not have is refused by name.
    missing = server.post("/api/outputs/reload", {"output": drifted["id"]})
    assert missing.status_code == 404 and drifted["id"] in missing.json()["error"]
    neither = server.post("/api/outputs/reload", {})
    assert neither.status_code == 400 and "'all'" in neither.json()["error"]
    # All of them: the page loads itself once more, on a connection of its own again.
    every = server.post("/api/outputs/reload", {"all": True})
    assert every.status_code == 202 and every.json()["reloading"] == [back["id"]]
    again = wait_for(lambda: [o for o in outputs(server)["outputs"] if o["id"] != back["id"]],
                     "the page back after reloading all")
    assert [o["page"] for o in again] == ["ticker"] and not again[0]["drift"]


def graphic_of(tab: Page) -> str:
    return tab.evaluate("document.body.dataset.graphic || ''")  # type: ignore[no-any-return]


def test_take_and_clear_reach_every_copy_of_a_page_and_one_opened_later(
        server: Server, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    try:
        url = f"{server.url}/overlays/lower-third.html?team=lg&lang=en"
        first, second = context.new_page(), context.new_page()
        for tab in (first, second):
            tab.goto(url)
            expect(tab.locator("#name")).to_have_text("LG AI Research")
            expect(tab.locator("body")).to_have_attribute("data-graphic", "on")
        cleared = server.post("/api/graphics/lower-third/clear")
        assert cleared.status_code == 201, cleared.text
        for tab in (first, second):
            expect(tab.locator("body")).to_have_attribute("data-graphic", "clear")
            expect(tab.locator("body")).to_have_css("opacity", "0")  # faded out
        # A page opened after the clear stays clear from its first frame.
        late = context.new_page()
        late.goto(url)
        expect(late.locator("#name")).to_have_text("LG AI Research")
        assert graphic_of(late) == "clear"
        expect(late.locator("body")).to_have_css("opacity", "0")
        # The ticker is another graphic: it stays on air.
        assert server.state(token=None)["state"]["graphics"]["ticker"] is True
        taken = server.post("/api/graphics/lower-third/take")
        assert taken.status_code == 201, taken.text
        for tab in (first, second, late):
            expect(tab.locator("body")).to_have_attribute("data-graphic", "on")
            expect(tab.locator("body")).to_have_css("opacity", "1")
    finally:
        context.close()


def test_a_graphic_command_the_show_cannot_take_is_refused_and_records_nothing(
        server: Server) -> None:
    seq = server.state()["seq"]
    unknown = server.post("/api/graphics/weather/clear")
    assert unknown.status_code == 404 and "'weather'" in unknown.json()["error"]
    assert "lower-third" in unknown.json()["detail"]
    again = server.post("/api/graphics/ticker/take")  # on air already
    assert again.status_code == 409 and "ticker is on air already" in again.json()["error"]
    extra = server.post("/api/graphics/ticker/clear", {"now": True})
    assert extra.status_code == 400 and "'now'" in extra.json()["error"]
    as_presenter = server.post("/api/graphics/ticker/clear", token="presenter-token-for-tests")
    assert as_presenter.status_code == 403
    assert server.state()["seq"] == seq


def hello(**change: Any) -> dict[str, Any]:
    return {"type": "hello", "page": "ticker", "lang": "en", "seq": 0, "build": None,
            "options": {}, "obs": None, **change}


def closed_with(server: Server, *messages: str) -> tuple[int | None, str]:
    """Send ``messages`` on a viewer connection; the code and reason it was closed with."""
    with connect(server.url.replace("http://", "ws://") + "/ws") as ws:
        try:
            for message in messages:
                ws.send(message)
            while True:
                ws.recv(timeout=5)
        except ConnectionClosed:
            pass
        assert ws.close_code is not None, "the connection stayed open"
        return ws.close_code, ws.close_reason


def test_a_bad_or_flooding_hello_closes_its_connection_and_lists_nothing(
        server: Server) -> None:
    code, reason = closed_with(server, orjson.dumps(hello(admin=True)).decode())
    assert code == 1008 and "unknown field 'admin'" in reason
    code, reason = closed_with(server, orjson.dumps(hello(page="../../etc")).decode())
    assert code == 1008 and "'page'" in reason
    code, reason = closed_with(server, orjson.dumps(
        hello(options={"team": "lg\u202egl"})).decode())
    assert code == 1008 and "options.team" in reason and "bidirectional" in reason
    code, reason = closed_with(server, orjson.dumps(
        hello(options={"x": "y" * 2000})).decode())
    assert code == 1008 and "at most 1024 bytes" in reason
    code, reason = closed_with(server, *[orjson.dumps(hello(seq=i)).decode() for i in range(30)])
    assert code == 1008 and "too many messages" in reason
    assert outputs(server)["outputs"] == []
