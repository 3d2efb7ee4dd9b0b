"""The app's pure JavaScript, run in the browser it ships to: ticket validation, reconnect
backoff, token expiry, display formatting. The page is served by the web front with no API
behind it (it must still load, and say it is offline)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.web.browser import close_browser, open_browser, wait_until
from tests.web.support import WebFront, free_port, start_web

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One browser and one front for the module: these tests only read the page."""
    web: WebFront = start_web(tmp_path_factory.mktemp("units"), f"http://127.0.0.1:{free_port()}")
    try:
        browser, profile = open_browser()
    except BaseException:
        web.stop()
        raise
    try:
        browser.get(web.url + "/")
        wait_until(browser, lambda d: d.execute_script("return document.readyState") == "complete")
        yield browser
    finally:
        close_browser(browser, profile)
        web.stop()


def run_module(browser: Any, module: str, body: str) -> Any:
    """Import ``/js/<module>`` as ``m`` and return the JSON of ``body``'s value."""
    script = f"""
        const done = arguments[arguments.length - 1];
        import('/js/{module}').then(m => done(JSON.stringify((() => {{ {body} }})())),
                                   e => done(JSON.stringify({{error: String(e)}})));
    """
    return json.loads(browser.execute_async_script(script))


TICKETS = [
    ({"symbol": "aapl", "qty": "3", "side": "buy", "type": "market", "time_in_force": "day",
      "limit_price": ""}, [], {"symbol": "AAPL", "qty": "3", "side": "buy", "type": "market",
                              "time_in_force": "day"}),
    ({"symbol": "MSFT", "qty": "2", "side": "sell", "type": "limit", "time_in_force": "gtc",
      "limit_price": "410.5"}, [], {"symbol": "MSFT", "qty": "2", "side": "sell", "type": "limit",
                                    "time_in_force": "gtc", "limit_price": "410.5"}),
    ({"symbol": "", "qty": "0", "side": "buy", "type": "limit", "time_in_force": "day",
      "limit_price": "-1"}, ["Enter a symbol.", "Quantity must be a positive number.",
                             "A limit order needs a positive limit price."], None),
    ({"symbol": "AAPL", "qty": "1e3", "side": "buy", "type": "market", "time_in_force": "day",
      "limit_price": ""}, ["Quantity must be a positive number."], None),
]  # fmt: skip


def test_ticket_validation_table(page: Any) -> None:
    for form, errors, order in TICKETS:
        got = run_module(page, "trading.js", f"return m.validateTicket({json.dumps(form)});")
        assert got["errors"] == errors, form
        if order is not None:
            assert got["order"] == order


def test_reconnect_backoff_grows_to_a_cap_with_jitter(page: Any) -> None:
    low = run_module(
        page, "signalr.js", "return [0,1,2,3,4,5,6,7,20].map(a => m.backoffMs(a, () => 0));"
    )
    high = run_module(page, "signalr.js", "return [1,6,20].map(a => m.backoffMs(a, () => 1));")
    assert low == [0, 800, 1600, 3200, 6400, 12800, 24000, 24000, 24000]
    assert high == [1200, 36000, 36000]


def test_token_expiry_is_read_from_the_jwt(page: Any) -> None:
    # header.payload.signature with payload {"exp": 2000000000, "name": "ann"} in base64url
    token = "e30.eyJleHAiOjIwMDAwMDAwMDAsIm5hbWUiOiJhbm4ifQ.sig"
    got = run_module(
        page,
        "api.js",
        f"return [m.tokenExpiry('{token}'), m.tokenUser('{token}'), m.tokenExpiry('junk')];",
    )
    assert got == [2000000000, "ann", None]


def test_display_formatting(page: Any) -> None:
    got = run_module(
        page,
        "format.js",
        """return [m.money('99431.44'), m.price('0.1234567'), m.price('189.5'), m.percent('-2.1'),
                   m.percent('0'), m.signedMoney('-0.03'), m.qty('3'), m.volume(13200000),
                   m.money('oops')];""",
    )
    assert got == [
        "$99,431.44",
        "0.123457",
        "189.50",
        "\u22122.10%",
        "0.00%",
        "\u2212$0.03",
        "3",
        "13.2M",
        "—",
    ]


def test_page_loads_without_the_api_and_shows_sign_in(page: Any) -> None:
    from selenium.webdriver.common.by import By

    assert page.find_element(By.ID, "login-view").is_displayed()
    assert page.find_element(By.ID, "conn-state").get_attribute("data-state") == "disconnected"
    page.find_element(By.ID, "username").send_keys("someone")
    page.find_element(By.ID, "password").send_keys("long-enough-pw")
    page.find_element(By.ID, "login-submit").click()
    wait_until(
        page,
        lambda d: d.find_element(By.ID, "login-error").text == "the API is unreachable",
        what="the proxy's 502 message shown",
    )
