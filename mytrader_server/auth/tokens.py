"""JWT bearer tokens: HS256 only, with exp, iat, sub, aud and iss required.

The algorithm list is fixed here and never read from the token (no ``alg: none``, no HS/RS
confusion); leeway is 10 s, well inside the 30 s the spec allows.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from mytrader_server.errors import TradingError, unauthorized

ALGORITHMS = ["HS256"]
LEEWAY_S = 10
REQUIRED_CLAIMS = ["exp", "iat", "sub", "aud", "iss"]
MAX_TOKEN_CHARS = 4096


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    user_id: str
    username: str
    is_admin: bool
    expires_at: float | None = None  # the token's exp (epoch seconds), where known


class TokenService:
    def __init__(self, secret: str, issuer: str, audience: str, ttl_s: int) -> None:
        self._secret = secret
        self.issuer = issuer
        self.audience = audience
        self.ttl_s = ttl_s

    def issue(self, principal: Principal, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        claims = {
            "sub": principal.user_id,
            "name": principal.username,
            "adm": principal.is_admin,
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.ttl_s,
            "iss": self.issuer,
            "aud": self.audience,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHMS[0])

    def verify(self, token: str) -> Principal:
        """Return the token's principal or raise a 401 TradingError; never anything else."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise unauthorized("invalid token")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_S,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("token expired") from None
        except (jwt.InvalidTokenError, ValueError, TypeError):
            raise unauthorized("invalid token") from None
        sub, name = claims.get("sub"), claims.get("name")
        if not isinstance(sub, str) or not isinstance(name, str):
            raise unauthorized("invalid token")
        exp = claims.get("exp")
        return Principal(
            user_id=sub,
            username=name,
            is_admin=claims.get("adm") is True,
            expires_at=float(exp) if isinstance(exp, int | float) else None,
        )


def bearer_token(authorization: str | None) -> str:
    """Extract the token from an ``Authorization: Bearer`` header, or raise 401."""
    if not authorization:
        raise unauthorized("missing bearer token")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("missing bearer token")
    return token.strip()


def forbidden(message: str = "forbidden") -> TradingError:
    return TradingError(403, message)
