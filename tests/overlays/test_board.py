"""The scoreboard and the reveal read the same way whatever the path to a result (issue 19,
findings 4 and 5): a disqualified team's points never count on screen, with its reason; a
later round lists only the teams still in; every criterion shows its maximum; a reveal's
first steps show no rank and no total before any points are announced; an elimination's
card fills the lower part of the frame."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.conftest import PRESENTER, Server, score_sample_round
from tests.overlays.conftest import settle, shot

REASON = "vision encoder copied"


def disqualify_naver(server: Server) -> None:
    answer = server.post("/api/teams/naver/disqualify", {"reason": REASON, "announce": True})
    assert answer.status_code == 201, answer.text


def reads_disqualified(page: Page) -> None:
    row = page.locator('.row[data-team="naver"]')
    expect(row.locator(".badge")).to_have_text("실격")
    expect(row.locator(".reason")).to_have_text(REASON)
    expect(row.locator(".total")).to_have_text("–")
    expect(row.locator(".pos")).to_have_text("")
    assert row.locator(".pts").all_inner_texts() == ["–", "–", "–"]


def test_a_disqualified_team_reads_the_same_after_a_plain_publish(server: Server,
                                                                  page: Page) -> None:
    page.goto(f"{server.url}/overlays/scoreboard.html?lang=ko&bg=101820")
    expect(page.locator(".board .head")).to_contain_text("벤치마크 /40")
    expect(page.locator(".board .head")).to_contain_text("전문가 평가 /35")
    expect(page.locator(".board .head")).to_contain_text("총점 /100")
    score_sample_round(server)
    disqualify_naver(server)
    assert server.post("/api/rounds/r1/publish").status_code == 201
    expect(page.locator('.row[data-team="lg"] .total')).to_have_text("80.65")
    reads_disqualified(page)
    settle(page)
    shot(page, "scoreboard-disqualified-ko.png")
    # Round 2, before its results: the teams round 1 left out are not listed.
    assert server.post("/api/rounds/r2/start").status_code == 201
    expect(page.locator(".board h1")).not_to_have_text("1차 평가")
    expect(page.locator(".board .row")).to_have_count(3)
    for out in ("naver", "ncai"):
        expect(page.locator(f'.row[data-team="{out}"]')).to_have_count(0)


def test_a_disqualified_team_reads_the_same_after_a_published_reveal(server: Server,
                                                                    page: Page) -> None:
    score_sample_round(server)
    disqualify_naver(server)
    assert server.post("/api/rounds/r1/freeze").status_code == 201
    page.goto(f"{server.url}/overlays/reveal.html?lang=ko&bg=101820")
    with server.client(PRESENTER) as c:
        steps = c.get("/api/reveal/script").json()["steps"]
    assert server.post("/api/reveal/next", {"to": 1}, token=PRESENTER).status_code == 201
    settle(page)
    # Nothing announced yet: no ranks, no totals (not five teams tied at 0.00).
    assert set(page.locator(".row .pos").all_inner_texts()) == {""}
    assert set(page.locator(".row .total").all_inner_texts()) == {"–"}
    for step in steps[1:]:
        if step["kind"] == "eliminate":
            assert server.post("/api/reveal/arm", {"to": step["n"]},
                               token=PRESENTER).status_code == 201
        answer = server.post("/api/reveal/next", {"to": step["n"]}, token=PRESENTER)
        assert answer.status_code == 201, answer.text
        if step["kind"] == "eliminate":
            expect(page.locator("#card")).to_have_class("card panel eliminate on")
            settle(page)
            box = page.locator("#card").bounding_box()
            assert box is not None and box["width"] >= 1600 and box["height"] >= 200, box
            shot(page, "reveal-elimination-card.png")
    expect(page.locator('.row[data-team="lg"] .total')).to_have_text("80.65")
    reads_disqualified(page)


def test_a_team_reinstated_under_seal_comes_back_at_a_step_and_every_page_agrees(
        server: Server, page: Page) -> None:
    """Issue 19, finding 4: after a sealed reinstatement the reveal ranked the team #1 from
    the start while the lower third still said 실격."""
    score_sample_round(server)
    disqualify_naver(server)  # announced
    assert server.post("/api/teams/naver/reinstate", {"reason": "appeal upheld"}).status_code \
        == 201  # under seal
    assert server.post("/api/rounds/r1/freeze").status_code == 201
    with server.client(PRESENTER) as c:
        steps = c.get("/api/reveal/script").json()["steps"]
    back = next(s for s in steps if s["kind"] == "status" and s["team"] == "naver")
    assert back["status"] == "reinstated" and back["text"] == "Naver Cloud is reinstated"
    assert back["text_ko"] == "네이버클라우드 복귀"  # for the remote in Korean
    first = {r["team"]: r for r in steps[0]["board"]["rows"]}
    assert (first["naver"]["status"], first["naver"]["position"]) == ("disqualified", None)
    after = {r["team"]: r for r in back["board"]["rows"]}
    assert after["naver"]["status"] == "active" and after["naver"]["position"] is not None

    lower = page.context.new_page()
    lower.goto(f"{server.url}/overlays/lower-third.html?team=naver&lang=ko")
    page.goto(f"{server.url}/overlays/reveal.html?lang=ko")
    for step in steps[:back["n"]]:
        answer = server.post("/api/reveal/next", {"to": step["n"]}, token=PRESENTER)
        assert answer.status_code == 201, answer.text
        if step["n"] == back["n"] - 1:  # before its step: out, on both pages
            expect(page.locator('.row[data-team="naver"] .badge')).to_have_text("실격")
            expect(lower.locator("#org")).to_have_text("HyperCLOVA X SEED · 실격")
    expect(page.locator("#card .kind")).to_have_text("복귀")
    expect(page.locator('.row[data-team="naver"] .badge')).to_have_text("")
    expect(lower.locator("#org")).to_have_text("HyperCLOVA X SEED")
