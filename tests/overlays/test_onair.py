"""What the broadcast shows at the edges of the frame and under a name (issue 19, finding 7):
the ticker inside the title-safe area with the model's figures only, never the health check's
ping; the lower third with the model's name under the team's, not the organisation again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Server
from tests.overlays.conftest import shot, show_with_lg
from tests.test_proxy import Mock

SAFE = {"left": 96, "right": 1920 - 96, "bottom": 1080 - 54}  # 90% title-safe at 1920x1080


@pytest.fixture
def lg_mock() -> Iterator[Mock]:
    mock = Mock("--model", "exaone", "--ttft-ms", "20", "--itl-ms", "5", "--tokens", "8")
    yield mock
    mock.stop()


@pytest.fixture
def showfile(tmp_path: Path, lg_mock: Mock) -> Path:
    """The sample show with lg up (a mock team, health-checked every second)."""
    return show_with_lg(tmp_path, lg_mock.url, "health_interval = 1\nhealth_timeout = 0.5")


def test_the_ticker_stays_title_safe_and_shows_no_health_ping(server: Server, page: Page) -> None:
    page.goto(f"{server.url}/overlays/ticker.html?lang=en")
    lg = page.locator('#group .item[data-team="lg"]')
    expect(lg).to_contain_text("TTFT")
    page.wait_for_timeout(2500)  # lg's health check has answered twice, with its ping
    text = page.locator('#group .item[data-team="lg"]').inner_text()
    assert "latency" not in text and text.endswith("tok/s"), text  # the model's figures only
    box = page.locator(".ticker").bounding_box()
    assert box is not None
    assert box["x"] >= SAFE["left"] and box["x"] + box["width"] <= SAFE["right"], box
    assert box["y"] + box["height"] <= SAFE["bottom"], box
    shot(page, "ticker-safe.png")


def test_the_lower_third_names_the_model_under_the_team(server: Server, page: Page) -> None:
    page.goto(f"{server.url}/overlays/lower-third.html?team=lg&lang=en")
    expect(page.locator("#name")).to_have_text("LG AI Research")
    expect(page.locator("#org")).to_have_text("EXAONE 4.0")
    assert server.post("/api/teams/lg/disqualify",
                       {"reason": "weights", "announce": True}).status_code == 201
    expect(page.locator("#org")).to_have_text("EXAONE 4.0 · Disqualified")
    shot(page, "lower-third-model.png")
