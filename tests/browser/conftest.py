"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright; never a downloaded browser."""

from __future__ import annotations

import os
import re
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


PHONE = {"width": 390, "height": 844}
DESK = {"width": 1366, "height": 900}


class BrowserErrors:
    """What went wrong in a test's pages: console errors, HTTP answers of 400 and above, requests
    that failed on the network. A page a person sees should have none, so the page factory fails
    the test on any of them, except those the test declares with `expect` (a regular expression
    searched in the problem's one-line description, e.g. r"HTTP 404 GET .*/h5/pay/999")."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.expected: list[re.Pattern[str]] = []

    def expect(self, pattern: str) -> None:
        self.expected.append(re.compile(pattern))

    def expect_status(self, status: int, path: str) -> None:
        """An answer the test provokes (and the console error Chromium logs for it)."""
        self.expect(rf"\b{status}\b.*{re.escape(path)}")

    def watch(self, context: Any) -> None:
        context.on("console", self._console)
        context.on("response", self._response)
        context.on("requestfailed", self._failed)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            where = message.location.get("url", "") if message.location else ""
            self.seen.append(f"console error: {message.text} ({where})")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.seen.append(f"HTTP {response.status} {response.request.method} {response.url}")

    def _failed(self, request: Any) -> None:
        if request.method == "GET" and "ERR_ABORTED" in str(request.failure):
            # The page moved on (a navigation or reload) while a poll was in flight and Chromium
            # cancelled it: no user sees that, and whether it happens is a matter of timing.
            return
        self.seen.append(f"request failed: {request.failure} {request.method} {request.url}")

    def unexpected(self) -> list[str]:
        return [seen for seen in self.seen if not any(p.search(seen) for p in self.expected)]


@pytest.fixture
def browser_errors() -> BrowserErrors:
    """Declare the console errors and failed requests a test provokes on purpose."""
    return BrowserErrors()


@pytest.fixture
def new_page(browser: Any, browser_errors: BrowserErrors) -> Iterator[Callable[..., Any]]:
    """Opens pages, each in a browser context of its own (its own cookies), Chinese locale, 10 s
    timeouts; all closed when the test ends. Any console error or failed request (4xx/5xx or a
    network failure) that the test did not declare in `browser_errors` fails it."""
    contexts: list[Any] = []

    def open_page(viewport: dict[str, int] = PHONE) -> Any:
        context = browser.new_context(viewport=viewport, locale="zh-CN")
        browser_errors.watch(context)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    yield open_page
    # Read before closing: closing a context aborts whatever its pages were still loading.
    unexpected = browser_errors.unexpected()
    for context in contexts:
        context.close()
    if unexpected:
        pytest.fail("the pages had errors the test did not expect:\n  " + "\n  ".join(unexpected))


@pytest.fixture
def phone(new_page: Callable[..., Any], app: Any) -> Any:
    """A page on a phone-sized viewport (390×844), against this test's app."""
    return new_page(PHONE)


@pytest.fixture
def desk(new_page: Callable[..., Any], app: Any) -> Any:
    """A page on a staff member's desktop (1366×900), against this test's app."""
    return new_page(DESK)
