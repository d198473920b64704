"""Overlays defend themselves (issue 15, finding 3): a name longer than the server allows,
holding markup, as a show file or an older log may carry it, airs cut and as text; a
model's name with markup airs as text."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from showcase.core.showfile import sample_show_path
from tests.conftest import Server
from tests.overlays.conftest import shot

LONG_NAME = "<b>LG</b> AI Research " + "x" * 200
MARKUP_MODEL = "<img src=x onerror=alert(1)>" + "o" * 36  # 64: the show file's limit


def test_a_long_name_with_markup_airs_cut_and_as_text(tmp_path: Path, page: Page) -> None:
    text = sample_show_path().read_text(encoding="utf-8").replace(
        'name_en = "LG AI Research"', f'name_en = "{LONG_NAME}"').replace(
        'model_name = "EXAONE 4.0"', f'model_name = "{MARKUP_MODEL}"')
    showfile = tmp_path / "show.toml"
    showfile.write_text(text + "\n[proxy]\nhealth_interval = 0\n", encoding="utf-8")
    srv = Server(showfile, tmp_path / "data").start()
    try:
        page.goto(f"{srv.url}/overlays/lower-third.html?team=lg")
        expect(page.locator("#name")).to_have_text(LONG_NAME[:63] + "…")
        expect(page.locator("#org")).to_have_text(MARKUP_MODEL)
        assert page.locator("#lower b, #lower img").count() == 0  # text, never markup
        page.wait_for_timeout(600)
        shot(page, "lower-third-long-name.png")
        page.goto(f"{srv.url}/overlays/scoreboard.html")
        expect(page.locator('.row[data-team="lg"] .team')).to_have_text(LONG_NAME[:63] + "…")
        assert page.locator(".board b, .board img").count() == 0
        page.wait_for_timeout(600)
        shot(page, "scoreboard-long-name.png")
    finally:
        srv.stop()
