"""Chromium for the browser tests: Debian's own binary (never a downloaded one; .ci/run
installs it when missing), and a record of the JavaScript errors and console errors a
page shows, so that a test can fail on any of them."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from playwright.sync_api import Browser, ConsoleMessage, Error, Page, sync_playwright

CHROMIUM = os.environ.get("FULFILLMENT_CHROMIUM", "/usr/bin/chromium")
LAUNCH_TIMEOUT_MS = 30_000
# How Chromium reports, as a console error, any fetch answered with an error status.
_REFUSED_LOAD = re.compile(r"Failed to load resource: the server responded with a status of (\d+)")


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium, closed (and its driver stopped) on the way out."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox"], timeout=LAUNCH_TIMEOUT_MS
        )
        try:
            yield browser
        finally:
            browser.close()


class PageProblems:
    """Every uncaught JavaScript error and console error of a page. The one kind let
    through is Chromium's report of an API call answered with an error status the test
    said it provokes (expect_refusal): a refused call is the page's business, not a
    fault; any other failed load (a missing module, a 5xx) is a problem."""

    def __init__(self, page: Page) -> None:
        self.problems: list[str] = []
        self._expected: set[tuple[str, int]] = set()
        page.on("pageerror", self._on_page_error)
        page.on("console", self._on_console)

    def expect_refusal(self, path: str, status: int) -> None:
        """The test provokes an API reply of `status` to `path` (query left out)."""
        self._expected.add((path, status))

    def assert_none(self) -> None:
        assert not self.problems, "the page reported errors:\n" + "\n".join(self.problems)

    def _on_page_error(self, error: Error) -> None:
        self.problems.append(f"uncaught error: {error.message}\n{error.stack or ''}")

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = str(message.location.get("url", ""))
        refused = _REFUSED_LOAD.match(message.text)
        if refused and (urlsplit(url).path, int(refused.group(1))) in self._expected:
            return
        self.problems.append(f"console error: {message.text} (at {url or 'unknown'})")
