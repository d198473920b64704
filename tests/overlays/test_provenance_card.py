"""The provenance card at 1920x1080: nothing while a finding is sealed, then the
component, the figure, what it means and what it was compared against, in Korean and
English, inside the title-safe area."""

from __future__ import annotations

import time
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.conftest import Server
from tests.overlays.conftest import settle, shot
from tests.test_provenance_show import finished, models, show  # noqa: F401  (fixtures)


def test_provenance_card_shows_the_finding_only_once_announced(show: Server,  # noqa: F811
                                                               page: Page) -> None:
    page.goto(f"{show.url}/overlays/provenance.html?lang=en&team=naver")
    started = show.post("/api/provenance", {"team": "naver", "reference": "Qwen2.5-VL"})
    assert started.status_code == 202, started.text
    seq = finished(show, started.json()["check"])["seq"]
    time.sleep(1)  # the sealed event has reached the page by now, if it were to show anything
    expect(page.locator("#finding")).not_to_have_class("finding panel on")
    assert "Qwen" not in page.locator("body").inner_text()

    assert show.post("/api/provenance/announce", {"check": seq}).status_code == 201
    card = page.locator("#finding")
    expect(card).to_have_class("finding panel on", timeout=10_000)
    expect(page.locator("#component")).to_have_text("Vision encoder · 비전 인코더")
    expect(page.locator("#figure")).to_contain_text(
        "100.0% of the weights identical to Qwen2.5-VL's")
    expect(page.locator("#figure2")).to_contain_text("기준 모델(Qwen2.5-VL)과 동일")
    expect(page.locator("#verdict")).to_have_text(
        "Built from another model's weights · 다른 모델의 가중치로 만들어짐")
    expect(page.locator("#means")).to_contain_text("copied from the reference")
    expect(page.locator("#others")).to_contain_text("Language model 언어 모델: No sign of copying")
    expect(page.locator("#against")).to_contain_text("Compared against · 비교 대상: Qwen2.5-VL")
    settle(page)
    box = card.bounding_box()
    assert box is not None
    assert box["x"] >= 192 and box["x"] + box["width"] <= 1728
    assert box["y"] >= 108 and box["y"] + box["height"] <= 972
    shot(page, "provenance-en.png")

    page.goto(f"{show.url}/overlays/provenance.html?lang=ko")
    expect(page.locator("#finding")).to_have_class("finding panel on", timeout=10_000)
    expect(page.locator("#component")).to_have_text("비전 인코더 · Vision encoder")
    expect(page.locator("#means")).to_contain_text("비전 인코더는 기준 모델에서 복사되었습니다")
    settle(page)
    shot(page, "provenance-ko.png")


def test_provenance_card_for_another_team_stays_empty(show: Server,  # noqa: F811
                                                     page: Page, tmp_path: Path) -> None:
    page.goto(f"{show.url}/overlays/provenance.html?team=kakao")
    time.sleep(1)
    expect(page.locator("#finding")).not_to_have_class("finding panel on")
