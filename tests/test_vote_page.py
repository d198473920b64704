"""The /vote page in a real browser (Debian's Chromium, headless) at phone size, in Korean
and in English: two anonymous answers, a vote, and clear words when voting is closed or a
limit is reached."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import OPERATOR, Server
from tests.test_votes import open_voting, pool

SHOTS = "/tmp/vote-page-{}.png"


def counted(server: Server) -> int:
    with server.client(OPERATOR) as op:
        return int(op.get("/api/rounds/r1/voting").json()["votes"])


@pytest.mark.parametrize(("lang", "closed", "thanks", "a_is_better"), [
    ("ko", "지금은 투표 시간이 아닙니다", "투표했습니다", "A가 더 좋아요"),
    ("en", "Voting is not open right now", "Vote counted", "A is better"),
])
def test_vote_page_votes_on_a_phone_in_both_languages(
        server: Server, phone: Page, lang: str, closed: str, thanks: str,
        a_is_better: str) -> None:
    phone.goto(f"{server.url}/vote?lang={lang}")
    expect(phone.locator("#message")).to_contain_text(closed)
    prompts = pool(2)
    prompts[0]["text"] = "<b>not bold</b> 한국어로 답해 주세요"
    assert open_voting(server, prompts=prompts, min_seconds=1).status_code == 201
    # the page asks again by itself and shows the battle once voting opens
    expect(phone.locator("#prompt")).to_be_visible(timeout=15_000)
    expect(phone.locator("#message")).not_to_contain_text(closed)
    expect(phone.locator("#a")).to_contain_text("answer #")
    expect(phone.locator("#b")).to_contain_text("answer #")
    if "not bold" in phone.locator("#prompt").inner_text():
        assert phone.locator("#prompt b").count() == 0  # text, never HTML
    for team in ("lg", "skt", "upstage", "naver", "ncai"):
        names = phone.locator("main").inner_text().replace("#", " ")
        assert f" {team} " not in f" {names} "  # the markers are written backwards
    choice = phone.get_by_role("button", name=a_is_better)
    expect(choice).to_be_enabled(timeout=5_000)  # after reading for min_seconds
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px phone"
    phone.screenshot(path=SHOTS.format(lang), full_page=True)
    choice.click()
    expect(phone.locator("#message")).to_contain_text(thanks)
    assert counted(server) == 1


def test_vote_page_says_when_a_voter_has_used_every_vote(server: Server, phone: Page) -> None:
    assert open_voting(server, min_seconds=0, per_session=1).status_code == 201
    phone.goto(f"{server.url}/vote?lang=en")
    phone.get_by_role("button", name="Both are bad").click()
    expect(phone.locator("#message")).to_contain_text("Vote counted")
    expect(phone.locator("#prompt")).to_be_visible()
    phone.get_by_role("button", name="About the same").click()
    expect(phone.locator("#message")).to_contain_text("every vote one person may")
    expect(phone.locator("#battle")).to_be_hidden()
    phone.screenshot(path=SHOTS.format("limit"), full_page=True)
    assert counted(server) == 1
