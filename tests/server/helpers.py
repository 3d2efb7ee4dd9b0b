"""Small helpers for in-process API tests."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.support.live import scaled

PASSWORD = "correct-horse-battery"


def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Register (tolerating an existing user) and log in; return the auth header."""
    client.post("/api/auth/register", json={"username": username, "password": password})
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['accessToken']}"}


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``condition`` for up to ``timeout`` seconds, scaled by MYTRADER_TEST_TIME_FACTOR."""
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
