"""The one HTTP client of the CI integrations: bounded, quiet, and secret-free in its errors.

Each request has a timeout and the whole conversation a deadline; no redirects are followed
and no proxy or .netrc is read from the environment (checklist C12, C13). A 5xx, a 429 or a
connection error is retried twice with backoff; anything else is the answer. Error texts
pass through the redactor, so a token never reaches a log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from mytrader_ops.errors import OpsError
from mytrader_ops.redaction import Redactor


class RestError(OpsError):
    """A REST call that did not succeed; the message names the call and the answer."""

    exit_code = 3


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any
    headers: httpx.Headers


class RestClient:
    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        redactor: Redactor,
        timeout_s: float = 10.0,
        deadline_s: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.redactor = redactor
        self._deadline = time.monotonic() + deadline_s
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            trust_env=False,
            follow_redirects=False,
        )

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def call(
        self,
        method: str,
        path: str,
        json: object | None = None,
        params: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201),
    ) -> Answer:
        url = path if path.startswith(("http://", "https://")) else self.base_url + path
        what = f"{method} {path.split('?')[0]}"
        for attempt in range(3):
            if time.monotonic() > self._deadline:
                raise RestError(f"{what}: the CI integration's deadline passed")
            try:
                response = self._client.request(method, url, json=json, params=params)
            except httpx.HTTPError as exc:
                detail = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code in ok:
                    body = response.json() if response.content else None
                    return Answer(response.status_code, body, response.headers)
                detail = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code != 429 and response.status_code < 500:
                    break
            if attempt < 2:
                time.sleep(0.5 * 2**attempt)
        raise RestError(self.redactor.redact(f"{what} failed: {detail}"))
