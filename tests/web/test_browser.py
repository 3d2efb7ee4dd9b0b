"""The web app in a real browser: headless Chromium against a real API behind ``mytrader-server
web``. A trader's session end to end: sign in, prices move, a limit and a market order, the
fill and the position appear without a reload, the hubs drop and come back. Screenshots of the
main screens go to docs/screenshots/.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import jwt
import pytest

from tests.support.live import LiveServer, server_env
from tests.web import jscoverage
from tests.web.browser import screenshot, wait_until
from tests.web.support import WebFront, free_port, start_api_on_port, start_web

pytestmark = [pytest.mark.slow, pytest.mark.browser]
PASSWORD = "correct-horse-battery"
T = TypeVar("T")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[LiveServer, WebFront]]:
    env = server_env(tmp_path / "data", MYTRADER_FEED_INTERVAL_S="0.1")
    api = start_api_on_port(tmp_path, env, free_port())
    try:
        web = start_web(tmp_path, api.url, free_port())
        try:
            yield api, web
        finally:
            web.stop()
    finally:
        api.stop()  # also when the front cannot start: no server left running


def goto(driver: Any, url: str) -> None:
    """Navigate, keeping the leaving document's JavaScript coverage (V8 drops it otherwise)."""
    jscoverage.collect(driver)
    driver.get(url)


def by(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def all_by(driver: Any, css: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, css))


def unstale(action: Callable[[], T]) -> T:
    """Run ``action`` again when the element it found was re-rendered in between (live tables
    and price cells are redrawn on every hub message)."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(20):
        try:
            return action()
        except StaleElementReferenceException:
            time.sleep(0.05)
    return action()


def text_of(driver: Any, css: str) -> str:
    def read() -> str:
        found = all_by(driver, css)
        return str(found[0].text) if found else ""

    return unstale(read)


def conn_state(driver: Any) -> str:
    return str(by(driver, "#conn-state").get_attribute("data-state"))


def sign_in(driver: Any, web: WebFront, username: str) -> None:
    goto(driver, web.url + "/")
    wait_until(driver, lambda d: by(d, "#login-view").is_displayed(), what="the sign-in form")
    by(driver, "#username").send_keys(username)
    by(driver, "#password").send_keys(PASSWORD)
    by(driver, "#login-submit").click()
    wait_until(driver, lambda d: by(d, "#app-view").is_displayed(), what="the trading screen")


def fill_ticket(
    driver: Any, side: str, symbol: str, order_type: str, qty: str, limit: str = ""
) -> None:
    from selenium.webdriver.support.ui import Select

    by(driver, f"label[for=side-{side}]").click()
    for css, value in (("#t-symbol", symbol), ("#t-qty", qty)):
        field = by(driver, css)
        field.clear()
        field.send_keys(value)
    Select(by(driver, "#t-type")).select_by_value(order_type)
    if order_type == "limit":
        field = by(driver, "#t-limit")
        field.clear()
        field.send_keys(limit)


def submit_ticket(driver: Any) -> None:
    by(driver, "#t-submit").click()
    wait_until(
        driver,
        lambda d: text_of(d, "#ticket-ok") or text_of(d, "#ticket-error"),
        what="the ticket's answer",
    )


def test_a_trading_session_end_to_end(
    browser: Any, stack: tuple[LiveServer, WebFront], tmp_path: Path
) -> None:
    api, web = stack
    api.register("trader-one", PASSWORD)

    goto(browser, web.url + "/")
    wait_until(browser, lambda d: by(d, "#login-view").is_displayed(), what="the sign-in form")
    screenshot(browser, "sign-in")
    sign_in(browser, web, "trader-one")

    # Live: the three hubs connect and prices move without a reload.
    wait_until(browser, lambda d: conn_state(d) == "connected", what="hubs connected")
    # ... through Microsoft's own client, the vendored release (docs/web.md).
    assert browser.execute_script("return window.signalR && window.signalR.VERSION") == "10.0.11"
    price_cell = "#watchlist tr[data-symbol=AAPL] .price"
    first = wait_until(browser, lambda d: text_of(d, price_cell).replace("—", ""), what="a price")
    wait_until(browser, lambda d: text_of(d, price_cell) not in ("", "—", first), what="a move")
    wait_until(browser, lambda d: all_by(d, "#leaders li"), what="volume leaders")
    wait_until(
        browser, lambda d: all_by(d, "#gainers li") or all_by(d, "#losers li"), what="movers"
    )

    # Validation: the ticket's own check, then the API's message shown as it came.
    fill_ticket(browser, "buy", "AAPL", "limit", "1", "")
    submit_ticket(browser)
    assert text_of(browser, "#ticket-error") == "A limit order needs a positive limit price."
    fill_ticket(browser, "buy", "AAPL", "market", "1.5")
    submit_ticket(browser)
    assert text_of(browser, "#ticket-error") == "AAPL is not fractionable: qty must be whole"

    # A resting limit order shows up under open orders.
    fill_ticket(browser, "buy", "MSFT", "limit", "2", "1.00")
    submit_ticket(browser)
    assert text_of(browser, "#ticket-error") == ""
    wait_until(browser, lambda d: all_by(d, "#open-orders tr[data-symbol=MSFT]"), what="open order")

    # A market order fills: the fill and the position arrive through the hubs.
    fill_ticket(browser, "buy", "AAPL", "market", "3")
    submit_ticket(browser)
    wait_until(
        browser,
        lambda d: all_by(d, "#fills tr[data-symbol=AAPL][data-status=filled]"),
        what="the fill in recent activity",
    )
    wait_until(
        browser,
        lambda d: text_of(d, "#positions tr[data-symbol=AAPL] .qty") == "3",
        what="the AAPL position",
    )
    wait_until(browser, lambda d: text_of(d, "#pf-cash") not in ("", "$100,000.00"), what="cash")
    assert by(browser, "#positions-empty").is_displayed() is False
    screenshot(browser, "trading-desktop")
    dark = [{"name": "prefers-color-scheme", "value": "dark"}]
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": dark})
    screenshot(browser, "trading-desktop-dark")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})

    # Cancel the resting order from its row; it moves to recent activity.
    unstale(lambda: by(browser, "#open-orders tr[data-symbol=MSFT] button").click())
    wait_until(
        browser,
        lambda d: all_by(d, "#fills tr[data-symbol=MSFT][data-status=canceled]"),
        what="the canceled order",
    )
    assert all_by(browser, "#open-orders tr[data-symbol=MSFT]") == []

    # The hub connection drops (the proxy restarts on the same port) and comes back.
    web.stop()
    wait_until(browser, lambda d: conn_state(d) == "reconnecting", what="reconnecting")
    assert "Reconnecting" in text_of(browser, "#conn-state")
    screenshot(browser, "reconnecting")
    restarted = start_web(tmp_path, api.url, web.port)
    running: list[LiveServer] = []
    try:
        wait_until(browser, lambda d: conn_state(d) == "connected", timeout=40, what="reconnected")
        before = text_of(browser, price_cell)
        wait_until(browser, lambda d: text_of(d, price_cell) != before, what="prices again")
        # An order placed after the reconnect still updates live.
        fill_ticket(browser, "buy", "AAPL", "market", "2")
        submit_ticket(browser)
        wait_until(
            browser,
            lambda d: text_of(d, "#positions tr[data-symbol=AAPL] .qty") == "5",
            what="the position after reconnecting",
        )

        # The API itself restarts (same address, same data): the relay closes, negotiate
        # answers 502 from the front meanwhile, and the app comes back on its own.
        api.stop()
        wait_until(browser, lambda d: conn_state(d) == "reconnecting", what="API down")
        running.append(start_api_on_port(tmp_path, api.env, int(api.url.rsplit(":", 1)[1])))
        wait_until(browser, lambda d: conn_state(d) == "connected", timeout=40, what="API back")
        before = text_of(browser, price_cell)
        wait_until(browser, lambda d: text_of(d, price_cell) != before, what="prices after")
        assert text_of(browser, "#positions tr[data-symbol=AAPL] .qty") == "5"

        # Phone-sized screen: one column, nothing wider than the viewport.
        browser.set_window_size(390, 844)
        wait_until(
            browser,
            lambda d: d.execute_script(
                "return document.documentElement.scrollWidth <= window.innerWidth"
            ),
            what="no horizontal overflow on a phone",
        )
        screenshot(browser, "trading-phone")

        # Nothing but this origin was ever requested (no CDN fonts or scripts).
        origins = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => new URL(e.name).origin)"
        )
        own = f"http://{urlsplit(web.url).netloc}"
        assert set(origins) == {own}, origins
        # Storage holds the access token and nothing else.
        stored = browser.execute_script(
            "return [Object.keys(sessionStorage), Object.keys(localStorage)]"
        )
        assert stored == [["mytrader.accessToken"], []]

        # Signing out drops the token; the next user sees nothing of the previous one.
        by(browser, "#logout").click()
        wait_until(browser, lambda d: by(d, "#login-view").is_displayed(), what="signed out")
        assert browser.execute_script("return sessionStorage.length") == 0
        running[0].register("trader-three", PASSWORD)
        sign_in(browser, web, "trader-three")
        wait_until(browser, lambda d: text_of(d, "#pf-cash") == "$100,000.00", what="new account")
        assert all_by(browser, "#positions tbody tr") == []
        assert all_by(browser, "#open-orders tbody tr") == []
        assert all_by(browser, "#fills tbody tr") == []
    finally:
        restarted.stop()
        for server in running:
            server.stop()


def test_stored_token_is_dropped_when_expired_or_rejected(
    browser: Any, stack: tuple[LiveServer, WebFront]
) -> None:
    """An expired token is never used; one the API answers 401 to signs the user out."""
    api, web = stack
    token = api.register("trader-two", PASSWORD)
    claims = jwt.decode(token, options={"verify_signature": False})
    expired = jwt.encode({**claims, "exp": int(time.time()) - 5}, "k" * 32, algorithm="HS256")
    goto(browser, web.url + "/")
    browser.execute_script("sessionStorage.setItem('mytrader.accessToken', arguments[0])", expired)
    goto(browser, web.url + "/")
    wait_until(browser, lambda d: by(d, "#login-view").is_displayed(), what="the sign-in form")
    assert browser.execute_script("return sessionStorage.length") == 0

    # Signed with another key, not yet expired: the app tries it, the API says 401.
    forged = jwt.encode({**claims, "exp": int(time.time()) + 600}, "k" * 32, algorithm="HS256")
    browser.execute_script("sessionStorage.setItem('mytrader.accessToken', arguments[0])", forged)
    goto(browser, web.url + "/")
    wait_until(browser, lambda d: "sign in again" in text_of(d, "#login-error"), what="signed out")
    assert by(browser, "#login-view").is_displayed()
    assert browser.execute_script("return sessionStorage.length") == 0
