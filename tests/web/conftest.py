"""Fixtures for the web tests: a headless browser (skips with a reason where it is missing)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web import jscoverage
from tests.web.browser import close_browser, open_browser


@pytest.fixture
def browser() -> Iterator[Any]:
    driver, profile = open_browser()
    try:
        yield driver
    finally:
        close_browser(driver, profile)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print and save the web app's JavaScript coverage when a browser ran."""
    if not jscoverage.measured():
        return
    out = Path(__file__).resolve().parents[2] / "reports" / "js-coverage.json"
    figures = jscoverage.write(out)
    files = ", ".join(f"{k} {v:.0%}" for k, v in figures.items() if k != "*")
    terminalreporter.write_line(
        f"web app JavaScript coverage (V8 block coverage in Chromium): {figures['*']:.0%} "
        f"of non-blank characters ran ({files}); {out.relative_to(out.parents[1])}"
    )
