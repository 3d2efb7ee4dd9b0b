"""``mytrader-ops validate``'s report.html in a real browser: it renders, charts included, and
makes no network request (it is opened from a file, on a machine that may have no network).

The run is a real one: the API and the web front as processes, the real CLI gating both.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.live import scaled, server_env, start_server
from tests.web.browser import screenshot, wait_until
from tests.web.support import start_web

pytestmark = [pytest.mark.slow, pytest.mark.browser]
REPO = Path(__file__).resolve().parents[2]
USER, PASSWORD = "ops-report-user", "report-pw-8Kq2"


def run_validate(
    api_url: str, web_url: str, reports: Path, store: Path
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYTRADER_OPS_")}
    env.update({"MYTRADER_OPS_USERNAME": USER, "MYTRADER_OPS_PASSWORD": PASSWORD})
    cmd = [sys.executable, "-m", "mytrader_ops", "validate", "--target", api_url,
           "--frontend", web_url, "--report-dir", str(reports), "--store", str(store),
           "--duration", "3", "--rate", "40", "--no-color",
           "--config", str(REPO / "tests/ops/data/e2e.yaml")]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=scaled(180))
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_validate_report_renders_with_charts_and_no_network(browser: Any, tmp_path: Path) -> None:
    api = start_server(tmp_path, server_env(tmp_path / "data"))
    web = start_web(tmp_path, api.url)
    try:
        api.add_user(USER, PASSWORD)
        done = run_validate(api.url, web.url, tmp_path / "reports", tmp_path / "runs.db")
    finally:
        web.stop()
        api.stop()
    # a healthy API and front, gated with limits set for this machine: GO
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    report = tmp_path / "reports" / "report.html"
    browser.get(report.as_uri())
    wait_until(browser, lambda d: d.execute_script("return document.readyState") == "complete")
    # the decision is shown where a reader looks for it, and it is the run's decision
    assert browser.title == "MyTrader go-live validation: GO"
    shown = browser.execute_script("return document.querySelector('p.decision').innerText")
    assert shown == "GO", browser.execute_script("return document.body.innerText")[:500]
    charts = browser.execute_script(
        """return [...document.querySelectorAll('svg')].map(s => {
             const r = s.getBoundingClientRect();
             return [r.width, r.height, s.querySelectorAll('path, polyline, line, rect').length];
           })"""
    )
    assert charts, "no chart in the report"
    assert all(w > 50 and h > 50 and marks > 0 for w, h, marks in charts), charts
    # Opened from a file, everything is inline: no image, script, style or font was fetched.
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert (
        browser.execute_script(
            "return [...document.querySelectorAll('[src], link[href], object, iframe')].length"
        )
        == 0
    )
    browser.set_window_size(1100, 900)
    browser.execute_script("document.querySelector('svg').scrollIntoView({block: 'center'})")
    screenshot(browser, "ops-report-chart")
