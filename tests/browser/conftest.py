"""Browser tests: Playwright (sync API) driving Debian's Chromium against pytest-django's live server.

Fixtures
    browser      one Chromium per test session (skips the test when no Chromium is found)
    page         a fresh browser context + page per test; relative URLs resolve against the live server
    login        ``login(page, username, password)`` — logs a staff user in through /login/
    screenshot   ``screenshot(page, name)`` — saves var/screenshots/<name>.png and returns the path

Every test module here should set ``pytestmark = pytest.mark.browser`` (tests under tests/browser/
are also marked automatically, so ``-m "not browser"`` always deselects them).
Chromium: $URJA_CHROMIUM, else /usr/bin/chromium (Debian package ``chromium``).
"""

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Playwright's sync API runs an asyncio loop in the test thread; Django's ORM (used by the test to set
# up data) would refuse to run there without this.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

BROWSER_DIR = Path(__file__).resolve().parent
SCREENSHOT_DIR = Path(os.environ.get("URJA_SCREENSHOT_DIR", BROWSER_DIR.parent.parent / "var" / "screenshots"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEFAULT_TIMEOUT_MS = 10_000


def chromium_executable() -> str | None:
    """Path of the Chromium to drive, or None when there is none on this machine."""
    candidates = [os.environ.get("URJA_CHROMIUM", ""), "/usr/bin/chromium", "/usr/bin/chromium-browser"]
    candidates.append(shutil.which("chromium") or "")
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if BROWSER_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser() -> Iterator:
    executable = chromium_executable()
    if executable is None:
        pytest.skip("no Chromium found (set URJA_CHROMIUM or apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser, live_server, request) -> Iterator:
    """A page in its own context (own cookies); ``page.goto("/backoffice/")`` hits the live server."""
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 1280, "height": 800},
        locale="en-IN",
        timezone_id="Asia/Kolkata",
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            # Leave evidence for a failed browser test.
            SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(Exception):  # the page may be gone; the test failure is what matters
                page.screenshot(path=str(SCREENSHOT_DIR / f"FAILED-{request.node.name}.png"), full_page=True)
        context.close()


def _login(page, username: str, password: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/backoffice/**")


@pytest.fixture
def login() -> Callable[..., None]:
    """``login(page, username, password)``: logs in through the staff login form, lands on /backoffice/."""
    return _login


@pytest.fixture
def screenshot() -> Callable[..., Path]:
    def take(page, name: str, *, full_page: bool = True) -> Path:
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOT_DIR / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take
