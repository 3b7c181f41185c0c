"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright; never a downloaded browser."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
MISSING = f"BROWSER TESTS SKIPPED: {CHROMIUM} not found (apt-get install chromium); CI always runs them"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not os.path.exists(CHROMIUM):
        warnings.warn(MISSING, stacklevel=1)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI: .ci/run must install chromium")
        pytest.skip(MISSING)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


PHONE = {"width": 360, "height": 740}
DESK = {"width": 1280, "height": 800}


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """Opens pages, each in a browser context of its own (its own cookies), Chinese locale, 10 s
    timeouts; all closed when the test ends."""
    contexts: list[Any] = []

    def open_page(viewport: dict[str, int] = PHONE) -> Any:
        context = browser.new_context(viewport=viewport, locale="zh-CN")
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def phone(new_page: Callable[..., Any], app: Any) -> Any:
    """A page on a phone-sized viewport (360×740), against this test's app."""
    return new_page(PHONE)


@pytest.fixture
def desk(new_page: Callable[..., Any], app: Any) -> Any:
    """A page on a staff member's desktop (1280×800), against this test's app."""
    return new_page(DESK)
