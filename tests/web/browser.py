"""Headless Chromium through Selenium and Debian's chromedriver (no browser download).

Skips with a reason where selenium, chromium or chromedriver is missing; CI installs all three.
The flags are the ones this machine needs: no sandbox as root, no GPU, and no background
networking (Chromium would otherwise try to reach Google's hosts at every start).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tests.support.live import scaled
from tests.web import jscoverage
from tests.web.support import unavailable

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# docs/screenshots/ by default (the README shows one); MYTRADER_TEST_SCREENSHOT_DIR sends them
# elsewhere, e.g. to a CI artifact folder, leaving the committed ones untouched.
SCREENSHOTS = Path(
    os.environ.get("MYTRADER_TEST_SCREENSHOT_DIR")
    or Path(__file__).resolve().parents[2] / "docs" / "screenshots"
)
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--force-color-profile=srgb",
    "--hide-scrollbars",
)
T = TypeVar("T")


def require_browser() -> None:
    """Skip (with the install command) where the browser stack is missing."""
    if importlib.util.find_spec("selenium") is None:
        unavailable("selenium is not installed (pip install selenium)")
    if CHROMIUM is None:
        unavailable("chromium is not installed (apt-get install chromium)")
    if CHROMEDRIVER is None:
        unavailable("chromedriver is not installed (apt-get install chromium-driver)")


def open_browser(width: int = 1280, height: int = 860) -> tuple[Any, str]:
    """A fresh headless Chromium with an empty profile; returns (driver, profile dir)."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="mytrader-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(scaled(30))
        jscoverage.start(driver)
    except BaseException:
        driver.quit()
        raise
    return driver, profile


def close_browser(driver: Any, profile: str) -> None:
    """Take the session's JavaScript coverage, then quit and remove the profile."""
    try:
        jscoverage.collect(driver)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_until(
    driver: Any, condition: Callable[[Any], T], timeout: float = 20.0, what: str = ""
) -> T:
    """Poll ``condition(driver)`` until it returns something truthy (never a fixed sleep)."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    waiter = WebDriverWait(
        driver,
        scaled(timeout),
        poll_frequency=0.1,
        ignored_exceptions=(StaleElementReferenceException,),
    )
    try:
        return waiter.until(condition)
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what or condition}") from None


def screenshot(driver: Any, name: str) -> Path:
    """Save a PNG of the current viewport under docs/screenshots/ (kept as a test artifact)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
