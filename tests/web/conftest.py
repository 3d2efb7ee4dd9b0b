"""Fixtures for the web tests: a headless browser (skips with a reason where it is missing)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.web.browser import open_browser


@pytest.fixture
def browser() -> Iterator[Any]:
    driver, profile = open_browser()
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
