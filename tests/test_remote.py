"""The presenter remote in a real browser: headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import JUDGE, OPERATOR, PRESENTER, Server, score_sample_round


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True)
    page = context.new_page()
    yield page
    context.close()


def step(server: Server) -> int:
    return int(server.state(OPERATOR)["state"]["rounds"][0]["reveal"]["step"])


def test_the_remote_steps_through_the_reveal_and_needs_two_taps_to_eliminate(
        server: Server, phone: Page) -> None:
    score_sample_round(server)
    assert server.post("/api/rounds/r1/freeze").status_code == 201
    phone.goto(f"{server.url}/remote")
    # It asks for the token once; a judge's token is refused with the reason.
    phone.fill("#token", JUDGE)
    phone.click("form button")
    expect(phone.locator("#token")).to_be_visible()
    phone.fill("#token", PRESENTER)
    phone.click("form button")
    expect(phone.locator("#step")).to_have_text("step 0 / 19")
    expect(phone.locator("#next")).to_have_text("First evaluation: the results")
    expect(phone.locator("#conn")).to_have_text("live")

    phone.click("#go")
    expect(phone.locator("#step")).to_have_text("step 1 / 19")
    assert step(server) == 1
    expect(phone.locator("#now")).to_have_text("First evaluation: the results")
    expect(phone.locator("#next")).to_contain_text("Benchmarks: NC AI")

    # Another presenter's press shows up here at once, over the stream.
    assert server.post("/api/reveal/goto", {"to": 17}, token=PRESENTER).status_code == 201
    expect(phone.locator("#step")).to_have_text("step 17 / 19")
    expect(phone.locator("#next")).to_have_text("NC AI is eliminated")
    expect(phone.locator("#go")).to_have_text("Arm elimination")
    phone.click("#go")
    expect(phone.locator("#go")).to_have_text("CONFIRM")
    assert step(server) == 17  # armed, nothing announced yet
    phone.click("#go")
    expect(phone.locator("#step")).to_have_text("step 18 / 19")
    expect(phone.locator("#now")).to_have_text("NC AI is eliminated")

    phone.click("#back")
    expect(phone.locator("#step")).to_have_text("step 17 / 19")
    phone.reload()  # the token is remembered on this device
    expect(phone.locator("#step")).to_have_text("step 17 / 19")


def test_the_remote_shows_when_the_operator_locks_it(server: Server, phone: Page) -> None:
    score_sample_round(server)
    assert server.post("/api/rounds/r1/freeze").status_code == 201
    phone.goto(f"{server.url}/remote#token={PRESENTER}")
    expect(phone.locator("#step")).to_have_text("step 0 / 19")
    assert "token" not in phone.url  # the token left the address bar
    assert server.post("/api/reveal/lock", {"locked": True, "reason": "ad break"}
                       ).status_code == 201
    expect(phone.locator("#locked")).to_have_text("Locked by the operator: ad break")
    expect(phone.locator("#go")).to_be_disabled()
