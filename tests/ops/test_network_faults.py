"""Network faults between the validator and a healthy server: never a false GO.

A fault proxy (tests/support/faultproxy.py) sits in front of a real MyTrader server and damages
what the server sends: 1.5 s of latency, a 256 bytes/s trickle, resets or truncation on 30% of
the chunks. Through the proxy with no fault the verdict is GO (the control: the proxy alone
changes nothing); with each fault it is NO-GO, names what failed (a measured value, or what the
transport saw, never only an exception's name), and ends on time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.ops.test_e2e import PASSWORD, USER, validate, verdicts
from tests.support.faultproxy import FaultProxy, Mode
from tests.support.live import LiveServer, scaled, server_env, start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("faults")
    # several validate runs log in within a minute: the limit is not what these tests measure
    server = start_server(tmp, server_env(tmp / "data", MYTRADER_LOGIN_RATE_PER_MINUTE="600"))
    try:
        server.add_user(USER, PASSWORD)
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("mode", "probability"),
    [("none", 0.0), ("latency", 1.0), ("bandwidth", 1.0), ("reset", 0.3), ("truncate", 0.3)],
)
def test_network_fault_is_never_go(
    target: LiveServer, tmp_path: Path, mode: Mode, probability: float
) -> None:
    port = urlsplit(target.url).port
    assert port is not None
    proxy = FaultProxy(port, mode, probability=probability).start()
    started = time.monotonic()
    try:
        code, doc, out = validate(proxy.url, tmp_path)
    finally:
        proxy.stop()
    took = time.monotonic() - started
    assert took < scaled(90), f"validate took {took:.0f} s"
    found = verdicts(doc)
    bad = {k: v["summary"] for k, v in found.items() if v["in_scope"] and v["status"] != "PASS"}
    if mode == "none":
        assert (code, doc["decision"]) == (0, "GO"), bad
        return
    assert proxy.faults > 0
    # Every fault here damages what the target sends (late, slow, reset or cut short), so a
    # critical check sees it fail: NO-GO, never the softer INCONCLUSIVE.
    assert (code, doc["decision"]) == (1, "NO-GO"), out
    failed = {k: str(v["summary"]) for k, v in found.items() if v["status"] == "FAIL"}
    assert failed, bad
    for summary in failed.values():  # each says what happened, not only an exception's name
        tail = summary.rsplit(": ", 1)[-1]
        assert not re.fullmatch(r"\w+", tail), summary
        assert "ReadError: ReadError" not in summary, summary
