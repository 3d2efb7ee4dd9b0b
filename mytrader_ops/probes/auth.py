"""Authentication end to end: log in, use the token, and prove bad tokens are refused.

Without credentials the check is INCONCLUSIVE, never passed. A genuinely expired token
needs the signing key, which an external probe does not have: unless `expired_token` is
configured, the expired case sends the real token re-encoded with `exp` in the past (its
signature no longer matches) and says so in the evidence.
"""

from __future__ import annotations

import base64
import json
import time

from mytrader_ops.config import AuthCheck, Environment
from mytrader_ops.observation import Observation, StepLog
from mytrader_ops.probes import authn
from mytrader_ops.probes.context import ProbeContext, run_probe


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def tampered(token: str) -> str:
    """Flip one character of the signature."""
    head, _, sig = token.rpartition(".")
    if not sig:
        return token + "x"
    flipped = "A" if sig[0] != "A" else "B"
    return f"{head}.{flipped}{sig[1:]}"


def with_expired_claims(token: str) -> str | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(_unb64url(parts[1]))
    except ValueError:
        return None
    if not isinstance(claims, dict):
        return None
    now = int(time.time())
    claims["exp"] = now - 3600
    claims["iat"] = now - 7200
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    return f"{parts[0]}.{payload}.{parts[2]}"


def alg_none(token: str) -> str | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{parts[1]}."


async def probe_auth(ctx: ProbeContext, check: AuthCheck, env: Environment) -> Observation:
    async def status_with(token: str | None) -> int:
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        got = await ctx.fetch("GET", ctx.url(check.me_path), headers=headers, max_bytes=65536)
        return got.status

    async def expect_401(log: StepLog, name: str, token: str | None, note: str = "") -> None:
        status = await status_with(token)
        detail = f"HTTP {status}" + (f" ({note})" if note else "")
        if status == 401:
            log.ok(name, detail)
        else:
            log.fail(name, f"{detail}, expected 401")

    async def token_attacks(log: StepLog, token: str) -> None:
        await expect_401(log, "tampered token refused", tampered(token))
        none_token = alg_none(token)
        if none_token is not None:
            await expect_401(log, "alg=none token refused", none_token)
        real_expired = env.credentials.expired_token
        if real_expired is not None and real_expired.present:
            ctx.redactor.add_secret(real_expired)
            await expect_401(log, "expired token refused", real_expired.reveal())
        else:
            forged = with_expired_claims(token)
            if forged is None:
                log.skip("expired token refused", "token is not a JWT")
            else:
                await expect_401(
                    log,
                    "expired token refused",
                    forged,
                    "exp in the past, re-encoded without the key; configure expired_token "
                    "for a genuinely signed one",
                )

    async def configured(log: StepLog) -> None:
        """The environment's own auth: obtain it, use it, and attack the token it gave."""
        credentials = await ctx.authenticate(log)
        if credentials is None:
            return
        log.ok("authenticate", authn.describe(env.auth) if env.auth else "login")
        got = await ctx.fetch(
            "GET",
            ctx.url(check.me_path),
            headers={**credentials, "Accept": "application/json"},
            max_bytes=65536,
        )
        (log.ok if got.status == 200 else log.fail)(
            "authorized call", f"GET {check.me_path}: HTTP {got.status}"
        )
        token, _reason = await ctx.token()
        if token is not None:
            await token_attacks(log, token)

    async def body(log: StepLog) -> str | None:
        await expect_401(log, "missing token refused", None)
        if env.auth is not None:
            await configured(log)
            return None
        if not ctx.has_credentials:
            log.unknown("login", "no credentials configured")
            return "no credentials (set MYTRADER_OPS_USERNAME and MYTRADER_OPS_PASSWORD)"
        got = await ctx.fetch(
            "POST",
            ctx.url(check.login_path),
            json_body={"username": ctx.username, "password": ctx.password},
            max_bytes=65536,
        )
        log.values["login_ms"] = got.elapsed_ms
        token: str | None = None
        try:
            doc = json.loads(got.body)
        except ValueError:
            doc = None
        if got.status == 200 and isinstance(doc, dict) and isinstance(doc.get("accessToken"), str):
            token = doc["accessToken"]
            ctx.redactor.add(token)
            kind = doc.get("tokenType")
            log.ok(
                "login",
                f"HTTP 200, tokenType {kind}, expiresIn {doc.get('expiresIn')}",
                got.elapsed_ms,
            )
        else:
            log.fail("login", f"HTTP {got.status}, no accessToken in the answer", got.elapsed_ms)
            return None
        status = await status_with(token)
        (log.ok if status == 200 else log.fail)(
            "authorized call", f"GET {check.me_path}: HTTP {status}"
        )
        bad = await ctx.fetch(
            "POST",
            ctx.url(check.login_path),
            json_body={"username": ctx.username, "password": f"{ctx.password}-wrong"},
            max_bytes=65536,
        )
        (log.ok if bad.status == 401 else log.fail)("wrong password refused", f"HTTP {bad.status}")
        await token_attacks(log, token)
        return None

    return await run_probe(check.id, check.kind, check.timeout_s, body, redactor=ctx.redactor)
