"""A NUL character (U+0000) anywhere a client sends text is the client's mistake: 422.

SQLite stores NUL in text; PostgreSQL refuses it (asyncpg CharacterNotInRepertoireError), which
the app answered as 503 "database unavailable" before request validation refused it. Both back
ends must give the same 422 with the one error shape, and the server keeps serving.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from tests.server.helpers import login

NUL = "\x00"


def _is_422(response: Response) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert set(body) == {"code", "message"}, body
    assert "NUL" in body["message"], body


@pytest.mark.parametrize(
    "body",
    [
        {"username": f"nul{NUL}user", "password": "whatever-123"},
        {"username": NUL, "password": NUL},
    ],
    ids=["username", "both"],
)
def test_login_with_nul_is_422(client: TestClient, body: dict[str, str]) -> None:
    """The username is looked up in the database (PostgreSQL answered 503 before)."""
    _is_422(client.post("/api/auth/login", json=body))
    assert client.get("/health").status_code == 200


def test_login_with_nul_only_in_the_password_is_a_plain_401(client: TestClient) -> None:
    """A password never reaches the database; it is refused at registration, not at login
    (an account whose password was set before then can still log in)."""
    body = {"username": "nul-user", "password": f"what{NUL}ever-123"}
    response = client.post("/api/auth/login", json=body)
    assert response.status_code == 401, response.text
    assert response.json()["message"] == "invalid username or password"


@pytest.mark.parametrize(
    "body",
    [
        {"username": f"nul{NUL}user", "password": "whatever-123"},
        {"username": "nul-user", "password": f"what{NUL}ever-123"},
    ],
    ids=["username", "password"],
)
def test_register_with_nul_is_422(client: TestClient, body: dict[str, str]) -> None:
    _is_422(client.post("/api/auth/register", json=body))


@pytest.mark.parametrize(
    "extra",
    [
        {"symbol": f"AAPL{NUL}"},
        {"symbol": NUL},
        {"client_order_id": f"cid{NUL}1"},
    ],
    ids=["symbol-suffix", "symbol-only", "client_order_id"],
)
def test_order_fields_with_nul_are_422(client: TestClient, extra: dict[str, str]) -> None:
    h = login(client, "nul-trader")
    body = {"symbol": "AAPL", "qty": "1", "side": "buy", **extra}
    _is_422(client.post("/api/orders", headers=h, json=body))
    assert client.get("/api/orders?status=all", headers=h).json() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/orders/abc%00def"),
        ("DELETE", "/api/orders/abc%00def"),
        ("GET", "/api/orders/by-client-id/cid%001"),
        ("GET", "/api/positions/AAPL%00"),
    ],
)
def test_ids_in_the_path_with_nul_are_422(client: TestClient, method: str, path: str) -> None:
    h = login(client, "nul-reader")
    _is_422(client.request(method, path, headers=h))
    assert client.get("/api/account", headers=h).status_code == 200
