"""What the overlay tests share: a tab at 1920x1080 that fails the test on a script error,
the folder whose screenshots the test run keeps, and a wait for the motion to settle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "overlays"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    yield tab
    context.close()
    assert not errors, errors


def show_with_lg(tmp_path: Path, lg_url: str, proxy: str) -> Path:
    """The sample show with lg answering at ``lg_url`` (a mock team) and ``proxy`` as the
    show file's [proxy] table."""
    from showcase.core.showfile import sample_show_path

    text = sample_show_path().read_text(encoding="utf-8").replace(
        'endpoint = "http://127.0.0.1:9101/v1"', f'endpoint = "{lg_url}/v1"')
    path = tmp_path / "show.toml"
    path.write_text(f"{text}\n[proxy]\n{proxy}\n", encoding="utf-8")
    return path


def settle(page: Page) -> None:
    """Waits until every animation that ends has ended (the ticker's crawl never does)."""
    page.evaluate("""Promise.all(document.getAnimations()
        .filter((a) => a.effect.getComputedTiming().iterations !== Infinity)
        .map((a) => a.finished.catch(() => null)))""")


def shot(page: Page, name: str) -> None:
    """A screenshot with the alpha channel, kept in test-artifacts/overlays/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), omit_background=True)
