"""The reveal page as the audience sees it, press by press: the row that climbs lifts, the
cut line falls into the gap it opens, the elimination has its card, and a step back shows
that step's board as it is, without playing anything backwards. Two tabs follow the same
presses, one in English and one in Korean; screenshots of the key steps in both are kept
in test-artifacts/overlays/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import PRESENTER, Server, score_sample_round
from tests.overlays.conftest import settle, shot

ORDER = """Array.from(document.querySelectorAll('.board .row'))
    .sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)
    .map((r) => r.dataset.team)"""


@pytest.fixture
def tabs(browser: Browser, server: Server) -> Iterator[dict[str, Page]]:
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    errors: list[str] = []
    opened = {}
    for lang in ("en", "ko"):
        tab = context.new_page()
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.goto(f"{server.url}/overlays/reveal.html?lang={lang}")
        opened[lang] = tab
    yield opened
    context.close()
    assert not errors, errors


def press(server: Server, action: str, to: int) -> None:
    if action == "arm":
        assert server.post("/api/reveal/arm", {"to": to}, token=PRESENTER).status_code == 201
        action = "next"
    response = server.post(f"/api/reveal/{action}", {"to": to}, token=PRESENTER)
    assert response.status_code == 201, response.text


def script(server: Server) -> list[dict[str, Any]]:
    with server.client(PRESENTER) as c:
        return c.get("/api/reveal/script").json()["steps"]  # type: ignore[no-any-return]


def shows_board(tab: Page, board: dict[str, Any]) -> None:
    """The rows on screen are the step's, in its order, with its totals."""
    settle(tab)
    rows = sorted(board["rows"], key=lambda r: 1e9 if r["position"] is None else r["position"])
    assert tab.evaluate(ORDER) == [r["team"] for r in rows]
    for r in rows:
        # A total is shown once some of the team's points are announced, unless its points
        # do not count (disqualified).
        announced = any(v is not None for v in r["points"].values())
        counts = announced and r["status"] != "disqualified" and r["total"] is not None
        total = f"{r['total']:.2f}" if counts else "–"
        expect(tab.locator(f'.row[data-team="{r["team"]}"] .total')).to_have_text(total)


def test_the_reveal_plays_forward_and_steps_back_without_drama(
        server: Server, tabs: dict[str, Page]) -> None:
    en, ko = tabs["en"], tabs["ko"]
    score_sample_round(server)
    # Naver's disqualification is sealed: until its step it is a plain row with 0.00.
    sealed = server.post("/api/teams/naver/disqualify",
                         {"reason": "vision encoder weights match a foreign model"})
    assert sealed.status_code == 201
    assert server.post("/api/rounds/r1/freeze").status_code == 201
    steps = script(server)
    expect(en.locator("#card")).not_to_have_class("card panel on")

    press(server, "next", 1)
    expect(en.locator("#card")).to_have_class("card panel title on")
    expect(en.locator("#card .text")).to_have_text("First evaluation")
    expect(ko.locator("#card .text")).to_have_text("1차 평가")
    expect(en.locator('.row[data-team="naver"] .badge')).to_have_text("")
    for lang, tab in tabs.items():
        settle(tab)
        shot(tab, f"reveal-title-{lang}.png")

    # The status step: the row takes its status and moves below the ranked rows.
    press(server, "next", 2)
    expect(en.locator('.row[data-team="naver"] .badge')).to_have_text("Disqualified")
    expect(ko.locator('.row[data-team="naver"] .badge')).to_have_text("실격")
    shows_board(en, steps[1]["board"])

    # NC AI's first points take it from fourth to first: its row lifts as it climbs, for
    # as long as the speed says (half speed: twice as long).
    assert server.post("/api/reveal/speed", {"speed": 0.5}, token=PRESENTER).status_code == 201
    press(server, "next", 3)
    expect(en.locator("#card .figure")).to_have_text("+17.76")
    lift = en.evaluate("""() => {
        const a = document.querySelector('.row[data-team="ncai"]').getAnimations()[0];
        a.pause(); a.currentTime = a.effect.getTiming().duration / 2;
        const scale = new DOMMatrixReadOnly(getComputedStyle(a.effect.target).transform).a;
        a.finish();
        return { duration: a.effect.getTiming().duration, scale };
    }""")
    assert lift["duration"] == pytest.approx(2800)
    assert lift["scale"] > 1.02
    for lang, tab in tabs.items():
        settle(tab)
        shot(tab, f"reveal-points-{lang}.png")
    shows_board(ko, steps[2]["board"])
    assert server.post("/api/reveal/speed", {"speed": 2}, token=PRESENTER).status_code == 201

    # The cut: the line starts above the table and falls into the gap below the third row.
    press(server, "goto", 14)
    press(server, "next", 15)
    expect(en.locator(".cutline")).to_have_class("cutline on")
    fall = en.evaluate("""() => {
        const line = document.querySelector('.cutline');
        const a = line.getAnimations()[0];
        a.pause(); a.currentTime = 0;
        const start = line.getBoundingClientRect().top;
        a.finish();
        return { start, end: line.getBoundingClientRect().top };
    }""")
    assert fall["start"] < fall["end"] - 100
    settle(en)
    third = en.locator('.row[data-team="upstage"]').bounding_box()
    fourth = en.locator('.row[data-team="ncai"]').bounding_box()
    line = en.locator(".cutline").bounding_box()
    assert third and fourth and line
    assert third["y"] + third["height"] < line["y"] < fourth["y"]
    expect(ko.locator(".cutline span")).to_have_text("컷 · 3팀 진출 · 하위 1팀 탈락")
    for lang, tab in tabs.items():
        settle(tab)
        shot(tab, f"reveal-cut-{lang}.png")

    # The elimination takes two presses and has its card.
    press(server, "arm", 16)
    expect(en.locator("#card")).to_have_class("card panel eliminate on")
    expect(en.locator("#card .text")).to_have_text("NC AI")
    expect(en.locator("#card .sub")).to_have_text("4th · 57.77 points")
    expect(ko.locator("#card .kind")).to_have_text("탈락")
    expect(ko.locator("#card .sub")).to_have_text("4위 · 57.77점")
    expect(en.locator('.row[data-team="ncai"] .badge')).to_have_text("Eliminated")
    for lang, tab in tabs.items():
        settle(tab)
        shot(tab, f"reveal-elimination-{lang}.png")

    # Back: the cut's board and card at once, and nothing plays.
    press(server, "back", 15)
    for tab in tabs.values():
        expect(tab.locator("#card")).to_have_class("card panel cut on")
        assert tab.evaluate("document.getAnimations().length") == 0
    expect(en.locator('.row[data-team="ncai"] .badge')).to_have_text("")
    shows_board(en, steps[14]["board"])
    press(server, "back", 14)
    expect(en.locator(".cutline")).not_to_have_class("cutline on")
    assert en.evaluate("document.getAnimations().length") == 0

    # Forward again to the end: the elimination, then the survivors and the final board.
    press(server, "next", 15)
    press(server, "arm", 16)
    press(server, "next", 17)
    expect(en.locator("#card")).to_have_class("card panel survivors on")
    expect(en.locator("#card .list li")).to_have_text(["LG AI Research", "SK Telecom", "Upstage"])
    expect(ko.locator("#card .list li")).to_have_text(["LG AI연구원", "SK텔레콤", "업스테이지"])
    shows_board(en, steps[16]["board"])
    for lang, tab in tabs.items():
        settle(tab)
        shot(tab, f"reveal-final-{lang}.png")
