"""Token and credential attacks: S3 (alg none / other algorithms), S4 (claims), S6 (junk headers),
S8 (huge passwords, hashing bounded), S9 (rate limits)."""

from __future__ import annotations

import base64
import json
import time
import warnings
from collections.abc import Callable

import jwt
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mytrader_server.app import create_app
from mytrader_server.auth.tokens import Principal, TokenService
from mytrader_server.errors import TradingError
from mytrader_server.settings import Settings
from tests.support.live import TEST_SECRET, scaled


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**override: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": "u1",
        "name": "mallory",
        "iat": now,
        "exp": now + 300,
        "iss": "mytrader",
        "aud": "mytrader-api",
    }
    claims.update(override)
    return {k: v for k, v in claims.items() if v is not None}


def _me(client: TestClient, token: str) -> int:
    return client.get("/api/auth/me", headers={"authorization": f"Bearer {token}"}).status_code


def test_valid_token_is_accepted(client: TestClient) -> None:
    token = jwt.encode(_claims(), TEST_SECRET, algorithm="HS256")
    assert _me(client, token) == 200


def test_alg_none_is_refused(client: TestClient) -> None:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    assert _me(client, f"{header}.{payload}.") == 401


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_algorithms_are_refused(client: TestClient, alg: str) -> None:
    with warnings.catch_warnings():  # PyJWT warns that the key is short for HS512: irrelevant
        warnings.simplefilter("ignore")
        token = jwt.encode(_claims(), TEST_SECRET, algorithm=alg)
    assert _me(client, token) == 401


def test_tampered_signature_and_wrong_secret_are_refused(client: TestClient) -> None:
    token = jwt.encode(_claims(), TEST_SECRET, algorithm="HS256")
    head, _payload, sig = token.split(".")
    forged = _b64(json.dumps(_claims(adm=True)).encode())
    assert _me(client, f"{head}.{forged}.{sig}") == 401
    assert _me(client, jwt.encode(_claims(), "another-secret-entirely-0123456789", "HS256")) == 401


@pytest.mark.parametrize(
    "override",
    [
        {"exp": None},
        {"iat": None},
        {"sub": None},
        {"aud": None},
        {"iss": None},
        {"aud": "someone-else"},
        {"iss": "evil"},
        {"exp": -60},  # expired beyond the 10 s leeway (seconds relative to now)
        {"nbf": 120},  # not yet valid
        {"sub": 12345},
    ],
)
def test_claims_matrix(client: TestClient, override: dict[str, object]) -> None:
    """S4: PyJWT accepts a token without exp unless told to require it; we require all five."""
    now = int(time.time())  # relative times resolved when the test runs, not when collected
    resolved = {
        k: now + v if k in ("exp", "nbf") and isinstance(v, int) else v for k, v in override.items()
    }
    token = jwt.encode(_claims(**resolved), TEST_SECRET, algorithm="HS256")
    assert _me(client, token) == 401


def test_leeway_is_small() -> None:
    """10 s of leeway: a token expired 5 s ago passes, one expired 12 s ago does not (a leeway
    of 30 s, the most the spec allows, would still take it)."""
    service = TokenService(TEST_SECRET, "mytrader", "mytrader-api", ttl_s=60)
    issued = time.time() - 65  # expired 5 s ago: inside the leeway
    token = service.issue(Principal("u", "n", False), now=issued)
    assert service.verify(token).user_id == "u"
    stale = service.issue(Principal("u", "n", False), now=time.time() - 60 - 12)
    with pytest.raises(TradingError) as refused:
        service.verify(stale)
    assert (refused.value.status_code, refused.value.message) == (401, "token expired")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=300))
def test_junk_authorization_headers_are_401(client: TestClient, value: str) -> None:
    """S6: any junk in Authorization is a quick 401, never a 500."""
    r = client.get("/api/auth/me", headers={"authorization": value})
    assert r.status_code == 401


@pytest.mark.parametrize(
    "value",
    ["Bearer " + "A" * 1_000_000, "Bearer !!!.@@@.###", "Basic dXNlcjpwYXNz", "Bearer", "bearer  "],
)
def test_pathological_authorization_headers(client: TestClient, value: str) -> None:
    started = time.perf_counter()
    assert client.get("/api/auth/me", headers={"authorization": value}).status_code == 401
    assert time.perf_counter() - started < scaled(5)


def test_huge_password_is_refused_before_hashing(client: TestClient) -> None:
    """S8: a 1 MB password gets 422 without an argon2 run."""
    big = "p" * 1_000_000
    r = client.post("/api/auth/register", json={"username": "bigpw", "password": big})
    assert r.status_code == 422
    r = client.post("/api/auth/login", json={"username": "bigpw", "password": big})
    assert r.status_code == 422
    r = client.post("/api/auth/login", json={"username": "bigpw", "password": "p" * 1000})
    assert r.status_code == 422  # over the 256-byte cap


def test_login_flood_is_rate_limited_with_retry_after(
    settings_for: Callable[..., Settings],
) -> None:
    """S9: credential stuffing gets 429 with Retry-After, keyed by account and address."""
    s = settings_for(login_rate_per_minute=5)
    with TestClient(create_app(s)) as c:
        c.post("/api/auth/register", json={"username": "victim", "password": "password-123"})
        codes = [
            c.post(
                "/api/auth/login", json={"username": "victim", "password": f"guess-{i}"}
            ).status_code
            for i in range(8)
        ]
        # five a minute from this address, and the registration took one: four wrong
        # passwords, then the limit (a token comes back every 12 s, far beyond this loop)
        assert codes == [401] * 4 + [429] * 4
        limited = c.post("/api/auth/login", json={"username": "victim", "password": "x"})
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 12  # at most one refill period
        assert limited.json()["message"] == "rate limit exceeded; retry later"
        assert c.get("/health/live").status_code == 200


def test_order_spam_is_rate_limited(settings_for: Callable[..., Settings]) -> None:
    s = settings_for(order_rate_per_minute=3)
    with TestClient(create_app(s)) as c:
        c.post("/api/auth/register", json={"username": "spammer", "password": "password-123"})
        token = c.post(
            "/api/auth/login", json={"username": "spammer", "password": "password-123"}
        ).json()["accessToken"]
        h = {"authorization": f"Bearer {token}"}
        body = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "limit", "limit_price": "1"}
        codes = [c.post("/api/orders", headers=h, json=body).status_code for _ in range(5)]
        assert codes[:3] == [201, 201, 201]
        assert codes[3:] == [429, 429]


def test_registration_can_be_switched_off(settings_for: Callable[..., Settings]) -> None:
    s = settings_for(registration_enabled=False)
    with TestClient(create_app(s)) as c:
        r = c.post("/api/auth/register", json={"username": "late", "password": "password-123"})
        assert r.status_code == 403
