"""Authentication the way real services do it: a login route, a bearer token, an API key, or
OAuth2 client credentials (RFC 6749, 4.4). Turns an environment's `auth:` block into the
headers (and the bearer token, for hubs' `access_token`) that checks with `auth: true` send.

Rules:
- a `${VAR}` that is unset means no credentials: the checks that need them are INCONCLUSIVE
  (missing evidence), never passed;
- a login route or token endpoint that answers with an error, or not at all, is a failure of
  its own, named with the endpoint and what it said (the checks that needed it FAIL);
- every secret (password, token, API key, client secret, the tokens obtained) is registered
  with the redactor before anything could print it; a username or client id is not a secret;
- a token with a lifetime (`expires_in`) is fetched again before it expires, so a 24-hour
  watch keeps authenticating.
"""

from __future__ import annotations

import os
import re
import time
from base64 import b64encode
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from mytrader_ops.config import AuthSpec, BearerAuth, HeaderAuth, LoginAuth, OAuth2Auth
from mytrader_ops.redaction import Redactor

_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_NOT_SECRET = frozenset({"username", "user", "email", "login", "client_id", "tenant"})
REFRESH_MARGIN_S = 60.0  # fetch a new token this long before the current one expires


@dataclass(frozen=True, slots=True)
class Credential:
    """What an authenticated request carries."""

    headers: dict[str, str]
    token: str | None = None  # a bearer token: hubs may carry it as access_token
    expires_at: float | None = None  # time.monotonic() of expiry, when the issuer said
    lifetime_s: float | None = None

    def fresh(self) -> bool:
        """Still good for a while: renewed REFRESH_MARGIN_S (at most a fifth of its lifetime)
        before it expires."""
        if self.expires_at is None:
            return True
        margin = min(REFRESH_MARGIN_S, (self.lifetime_s or 0.0) / 5)
        return time.monotonic() < self.expires_at - margin


class AuthUnavailable(Exception):
    """No credentials to authenticate with (an unset variable): missing evidence."""


class AuthFailed(Exception):
    """The login route or token endpoint refused or failed: a failure of the deployment."""


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer as the flows need it."""

    status: int
    json: object
    text: str


Post = Callable[[str, dict[str, str], object, bytes | None], Awaitable[Answer]]
"""post(url, headers, json_body, form_body) -> Answer; raises OSError-like on transport errors."""


def resolve(value: str, key: str, redactor: Redactor) -> str:
    """A literal, or the value of a ${VAR} (registered as a secret unless it is an identity)."""
    match = _REF.match(value)
    if match is None:
        return value
    name = match.group(1)
    got = os.environ.get(name)
    if not got:
        raise AuthUnavailable(f"no credentials: ${{{name}}} is not set")
    if key.lower() not in _NOT_SECRET:
        redactor.add(got)
    return got


def describe(spec: AuthSpec) -> str:
    if isinstance(spec, LoginAuth):
        return f"login at {spec.path}"
    if isinstance(spec, BearerAuth):
        return "a bearer token"
    if isinstance(spec, HeaderAuth):
        return f"an API key in {spec.name}"
    return f"OAuth2 client credentials from {spec.token_url}"


def _dig(doc: object, path: str) -> object:
    for part in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def _bearer(token: str, doc: object) -> Credential:
    """A bearer credential, with the lifetime the issuer gave (`expires_in`), if any."""
    lifetime = None
    if isinstance(doc, dict):
        for key in ("expires_in", "expiresIn"):
            value = doc.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                lifetime = float(value)
                break
    expires = time.monotonic() + lifetime if lifetime is not None else None
    return Credential({"Authorization": f"Bearer {token}"}, token, expires, lifetime)


async def obtain(spec: AuthSpec, base_url: str, post: Post, redactor: Redactor) -> Credential:
    """A credential for `spec`; raises AuthUnavailable or AuthFailed with the reason."""
    if isinstance(spec, BearerAuth):
        token = spec.token.reveal()
        if not token:
            raise AuthUnavailable(f"no credentials: ${{{spec.token.env_var}}} is not set")
        redactor.add(token)
        return Credential({"Authorization": f"Bearer {token}"}, token)
    if isinstance(spec, HeaderAuth):
        value = spec.value.reveal()
        if not value:
            raise AuthUnavailable(f"no credentials: ${{{spec.value.env_var}}} is not set")
        redactor.add(value)
        return Credential({spec.name: value})
    if isinstance(spec, LoginAuth):
        body = {k: resolve(v, k, redactor) for k, v in spec.body.items()}
        url = f"{base_url}{spec.path}"
        got = await post(url, {"Accept": "application/json"}, body, None)
        found = _dig(got.json, spec.token_path)
        if got.status != 200 or not isinstance(found, str) or not found:
            raise AuthFailed(
                f"login at {spec.path} answered HTTP {got.status} without {spec.token_path}"
            )
        redactor.add(found)
        return _bearer(found, got.json)
    return await _client_credentials(spec, post, redactor)


async def _client_credentials(spec: OAuth2Auth, post: Post, redactor: Redactor) -> Credential:
    client_id = resolve(spec.client_id, "client_id", redactor)
    secret = spec.client_secret.reveal()
    if not secret:
        raise AuthUnavailable(f"no credentials: ${{{spec.client_secret.env_var}}} is not set")
    redactor.add(secret)
    form: dict[str, str] = {"grant_type": "client_credentials"}
    if spec.scope:
        form["scope"] = spec.scope
    if spec.audience:
        form["audience"] = spec.audience
    # client_secret_basic (RFC 6749, 2.3.1): both parts form-urlencoded, then Basic
    basic = b64encode(f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()).decode()
    headers = {
        "Authorization": f"Basic {basic}",
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
    }
    got = await post(spec.token_url, headers, None, urlencode(form).encode())
    token = _dig(got.json, "access_token")
    if got.status != 200 or not isinstance(token, str) or not token:
        error = _dig(got.json, "error")
        said = f" ({error})" if isinstance(error, str) else ""
        raise AuthFailed(f"OAuth2 token endpoint {spec.token_url} answered HTTP {got.status}{said}")
    redactor.add(token)
    return _bearer(token, got.json)
