"""The voting overlay at 1920x1080: open, a countdown and the count, never the split."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.conftest import Server
from tests.overlays.conftest import shot
from tests.test_votes import TEAMS, Voter, open_voting


def test_votes_overlay_shows_the_count_and_countdown_while_voting_is_open(
        server: Server, page: Page) -> None:
    page.goto(f"{server.url}/overlays/votes.html?lang=ko")
    expect(page.locator("#votes")).not_to_have_class("votes panel on")
    assert open_voting(server, minutes=10).status_code == 201
    voter = Voter(server)
    for _ in range(3):
        assert voter.vote(voter.battle(), "a").status_code == 201
    voter.close()
    expect(page.locator("#count")).to_have_text("3표", timeout=10_000)
    expect(page.locator("#kind")).to_have_text("시청자 투표 진행 중")
    expect(page.locator("#sub")).to_contain_text("마감까지 9:")
    text = page.locator("body").inner_text()
    assert not any(team in text for team in TEAMS)
    shot(page, "votes-ko.png")
    page.goto(f"{server.url}/overlays/votes.html?lang=en")
    expect(page.locator("#count")).to_have_text("3 votes", timeout=10_000)
    expect(page.locator("#kind")).to_have_text("AUDIENCE VOTING OPEN")
    shot(page, "votes-en.png")
    assert server.post("/api/rounds/r1/voting/close", {}).status_code == 201
    expect(page.locator("#votes")).not_to_have_class("votes panel on", timeout=10_000)
