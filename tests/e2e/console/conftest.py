"""Headless Chromium (Debian's package, never a downloaded one) driving the console of real `sovra serve` processes.

The browser is found at $SOVRA_CHROMIUM or /usr/bin/chromium (scripts/console-browser.sh installs it). Without it
the browser tests skip on a developer machine, and fail under CI=true, where they must run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.localnet import ConnectorProcess

CHROMIUM = Path(os.environ.get("SOVRA_CHROMIUM", "/usr/bin/chromium"))
# SOVRA_UPDATE_SCREENSHOTS=1 refreshes docs/console/*.png, the pictures the README links. Otherwise the tests still
# take every screenshot, into a scratch folder, so that a test run leaves the working tree as it found it.
_SCREENSHOTS = (Path(__file__).resolve().parents[3] / "docs" / "console"
                if os.environ.get("SOVRA_UPDATE_SCREENSHOTS") == "1"
                else Path(tempfile.gettempdir()) / "sovra-console-screenshots")
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


def _need_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing; run scripts/console-browser.sh (apt-get install chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + "; browser tests must run in CI")
    pytest.skip(message)


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def connectors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ConnectorProcess, ConnectorProcess]]:
    """A provider and a consumer on SQLite; the console does not depend on the database."""
    root = tmp_path_factory.mktemp("console")
    provider = ConnectorProcess("provider", root / "provider", api_key="provider-console-key").start()
    consumer = ConnectorProcess("consumer", root / "consumer", api_key="consumer-console-key").start()
    yield provider, consumer
    provider.kill()
    consumer.kill()


def shot(page: object, name: str) -> None:
    """Save what the page shows now as <name>.png (see `_SCREENSHOTS`)."""
    _SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("document.getElementById('toast').textContent = ''")  # type: ignore[attr-defined]
    page.screenshot(path=str(_SCREENSHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]
