"""What probes share: the HTTP client, TLS settings, credentials, the redactor, a bounded fetch.

Every HTTP client here ignores the environment (`trust_env=False`: no proxy variables, no
.netrc), verifies TLS by default and does not follow redirects unless configured; when it
does, it stops after five hops and drops credentials on a change of host (checklist C12, C13).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from mytrader_ops.config import AuthSpec
from mytrader_ops.observation import Observation, StepLog, utc_now
from mytrader_ops.probes import authn
from mytrader_ops.probes.authn import Credential
from mytrader_ops.redaction import Redactor

MAX_REDIRECTS = 5
NO_CREDENTIALS = "no credentials (set MYTRADER_OPS_USERNAME and MYTRADER_OPS_PASSWORD)"


@dataclass(frozen=True, slots=True)
class Fetched:
    status: int
    headers: httpx.Headers
    body: bytes
    elapsed_ms: float
    url: str


class ProbeContext:
    """Per-run shared state. Create with `open_context`."""

    def __init__(
        self,
        *,
        backend: str,
        frontend: str | None,
        client: httpx.AsyncClient,
        ssl_context: ssl.SSLContext | None,
        username: str | None,
        password: str | None,
        redactor: Redactor,
        follow_redirects: bool = False,
        login_path: str = "/api/auth/login",
        auth: AuthSpec | None = None,
        ca_file: str | None = None,
    ) -> None:
        self.backend = backend.rstrip("/")
        self.frontend = frontend.rstrip("/") if frontend else None
        self.client = client
        self.ssl_context = ssl_context
        self.username = username
        self.password = password
        self.redactor = redactor
        self.follow_redirects = follow_redirects
        self.login_path = login_path
        self.auth = auth
        self.ca_file = ca_file
        self._credential: Credential | None = None
        self._auth_error: tuple[str, bool] | None = None
        self._token_lock = asyncio.Lock()

    @property
    def has_credentials(self) -> bool:
        return self.auth is not None or bool(self.username and self.password)

    def url(self, path: str, base: str | None = None) -> str:
        return f"{(base or self.backend)}{path}"

    async def fetch(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        json_body: object = None,
        max_bytes: int = 4 * 1024 * 1024,
        content: bytes | None = None,
    ) -> Fetched:
        """One request with a streaming size cap; redirects only when configured."""
        started = time.perf_counter()
        hdrs = dict(headers or {})
        for _ in range(MAX_REDIRECTS + 1):
            request = self.client.build_request(
                method, url, headers=hdrs, json=json_body, content=content
            )
            response = await self.client.send(request, stream=True)
            try:
                body = bytearray()
                async for chunk in response.aiter_raw():
                    body += chunk
                    if len(body) > max_bytes:
                        raise ResponseTooLarge(f"response body exceeds {max_bytes} bytes")
            finally:
                await response.aclose()
            location = response.headers.get("location")
            if self.follow_redirects and response.is_redirect and location:
                target = urljoin(url, location)
                if urlsplit(target).netloc != urlsplit(url).netloc:
                    hdrs.pop("Authorization", None)
                url, method, json_body = target, "GET", None
                continue
            return Fetched(
                response.status_code,
                response.headers,
                bytes(body),
                (time.perf_counter() - started) * 1000,
                url,
            )
        raise TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")

    async def credential(self) -> tuple[Credential | None, str, bool]:
        """Authenticate once per run (again before a token expires).

        Returns (credential, reason when None, whether that is a failure of the deployment
        rather than missing credentials).
        """
        async with self._token_lock:
            if self._credential is not None and self._credential.fresh():
                return self._credential, "", False
            if self._credential is None and self._auth_error is not None:
                reason, failed = self._auth_error
                return None, reason, failed
            try:
                self._credential = await self._obtain()
                self._auth_error = None
            except authn.AuthUnavailable as exc:
                self._credential, self._auth_error = None, (str(exc), False)
            except authn.AuthFailed as exc:
                self._credential, self._auth_error = None, (str(exc), True)
            except (httpx.HTTPError, OSError, ProbeIOError) as exc:
                what = authn.describe(self.auth) if self.auth is not None else "login"
                self._credential = None
                self._auth_error = (f"{what} failed: {describe_error(exc)}", True)
            if self._credential is not None:
                return self._credential, "", False
            assert self._auth_error is not None
            reason, failed = self._auth_error
            return None, reason, failed

    async def authenticate(self, log: StepLog) -> dict[str, str] | None:
        """Headers for an authenticated request, or None after recording why: missing
        credentials as unknown (INCONCLUSIVE), a failing login or token endpoint as failed."""
        cred, reason, failed = await self.credential()
        if cred is None:
            (log.fail if failed else log.unknown)("authenticate", reason)
            return None
        return dict(cred.headers)

    async def token(self) -> tuple[str | None, str]:
        """A bearer token (None with the reason when there is none, e.g. an API key)."""
        cred, reason, _failed = await self.credential()
        if cred is None:
            return None, reason
        if cred.token is None:
            return None, f"{authn.describe(self.auth) if self.auth else 'login'} gives no token"
        return cred.token, ""

    async def _post(
        self, url: str, headers: dict[str, str], json_body: object, form: bytes | None
    ) -> authn.Answer:
        got = await self.fetch(
            "POST", url, headers=headers, json_body=json_body, content=form, max_bytes=64 * 1024
        )
        text = got.body.decode("utf-8", "replace")
        try:
            doc: object = json.loads(text)
        except ValueError:
            doc = None
        return authn.Answer(got.status, doc, text[:200])

    async def _obtain(self) -> Credential:
        if self.auth is not None:
            return await authn.obtain(self.auth, self.backend, self._post, self.redactor)
        if not (self.username and self.password):
            raise authn.AuthUnavailable(NO_CREDENTIALS)
        got = await self.fetch(
            "POST",
            self.url(self.login_path),
            json_body={"username": self.username, "password": self.password},
            max_bytes=64 * 1024,
        )
        token = _access_token(got)
        if token is None:
            raise authn.AuthFailed(f"login answered HTTP {got.status} without accessToken")
        self.redactor.add(token)
        return Credential({"Authorization": f"Bearer {token}"}, token)


def _access_token(got: Fetched) -> str | None:
    if got.status != 200:
        return None
    try:
        body = json.loads(got.body)
    except ValueError:
        return None
    token = body.get("accessToken") if isinstance(body, dict) else None
    return token if isinstance(token, str) and token else None


class ProbeIOError(Exception):
    """A bounded-I/O limit was hit (size cap, redirect cap); becomes observation data."""


class ResponseTooLarge(ProbeIOError):
    pass


class TooManyRedirects(ProbeIOError):
    pass


def describe_error(exc: BaseException) -> str:
    """A one-line description of an I/O failure (no traceback, no secrets after redaction)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS verification failed: {exc.verify_message}"
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"TLS verification failed: {cause.verify_message}"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return f"TLS verification failed: {text}"[:300]
    if not str(exc):
        text = _cause_text(exc) or _QUIET.get(type(exc), text)
    return f"{type(exc).__name__}: {text}"[:300]


# httpx raises these without a message when the socket underneath fails without one
_QUIET: dict[type[BaseException], str] = {
    httpx.ConnectError: "connection failed",
    httpx.ReadError: "connection reset or closed while reading the response",
    httpx.WriteError: "connection reset or closed while sending the request",
}


def _cause_text(exc: BaseException) -> str:
    """The first message down the chain of causes (httpx -> httpcore -> the OSError)."""
    seen = exc.__cause__  # explicit causes only: __context__ may be an unrelated exception
    for _ in range(5):
        if seen is None:
            return ""
        if str(seen):
            return str(seen)
        seen = seen.__cause__
    return ""


def make_ssl_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


@asynccontextmanager
async def open_context(
    *,
    backend: str,
    frontend: str | None,
    username: str | None,
    password: str | None,
    redactor: Redactor,
    tls_verify: bool = True,
    ca_file: str | None = None,
    follow_redirects: bool = False,
    auth: AuthSpec | None = None,
) -> AsyncIterator[ProbeContext]:
    ssl_context = make_ssl_context(tls_verify, ca_file)
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=16)
    async with httpx.AsyncClient(
        verify=ssl_context,
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(10.0),
        limits=limits,
        headers={"User-Agent": "mytrader-ops/0.1"},
    ) as client:
        yield ProbeContext(
            backend=backend,
            frontend=frontend,
            client=client,
            ssl_context=ssl_context if backend.startswith("https") else None,
            username=username,
            password=password,
            redactor=redactor,
            follow_redirects=follow_redirects,
            auth=auth,
            ca_file=ca_file,
        )


async def run_probe(
    check_id: str,
    kind: str,
    timeout_s: float,
    body: Callable[[StepLog], Awaitable[str | None]],
    *,
    label: str | None = None,
    redactor: Redactor | None = None,
) -> Observation:
    """Run a probe body under an overall deadline; every outcome becomes an Observation.

    `body` records steps and returns None, or a reason the evidence is INCONCLUSIVE.
    """
    log = StepLog()
    started_at = utc_now()
    t0 = time.perf_counter()
    error: str | None = None
    inconclusive: str | None = None
    try:
        async with asyncio.timeout(timeout_s):
            inconclusive = await body(log)
    except TimeoutError:
        done = [s.name for s in log.steps]
        after = f" after {done[-1]}" if done else ""
        error = f"overall deadline of {timeout_s:g} s exceeded{after}"
    except (httpx.HTTPError, OSError, ProbeIOError, ValueError) as exc:
        error = describe_error(exc)
    except Exception as exc:  # a probe bug must not crash the run; it is reported as data
        error = f"probe error: {describe_error(exc)}"
    if redactor is not None:
        error = redactor.redact(error) if error else None
    return Observation(
        check_id=check_id,
        kind=kind,
        started_at=started_at,
        elapsed_ms=(time.perf_counter() - t0) * 1000,
        steps=tuple(log.steps),
        values=dict(log.values),
        error=error,
        inconclusive=inconclusive,
        label=label,
    )
