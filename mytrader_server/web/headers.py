"""What the proxy sends on and back: pure header rules, no I/O (tested from tables).

The proxy is the edge: it drops hop-by-hop headers (RFC 9110 section 7.6.1) and whatever the
client sent under the forwarding names, then sets its own ``X-Forwarded-*`` from what it saw.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import httpx
from starlette.types import Scope

# RFC 9110 section 7.6.1: never forwarded by a proxy (plus Host, which names the backend).
HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Set by this proxy only: whatever the client sent under these names is dropped.
FORWARDING: Final = frozenset(
    {"forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip"}
)
# Headers a WebSocket upgrade carries on to the API; the handshake headers are the client's own.
WS_FORWARD: Final = frozenset(
    {"authorization", "cookie", "user-agent", "origin", "accept-language", "x-request-id"}
)
# Content Security Policy for the app: nothing but this origin (its ws:// included).
CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
STATIC_HEADERS: Final = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",
}
# Close codes that may not be sent in a Close frame (RFC 6455 section 7.4.1), and what to send.
_UNSENDABLE_CLOSE: Final = {1005: 1000, 1006: 1011, 1015: 1011}


def forwarding_headers(client_host: str | None, scheme: str, host: str | None) -> dict[str, str]:
    """The headers this edge proxy adds: who connected, over what, to which name."""
    headers = {"x-forwarded-proto": "https" if scheme in ("https", "wss") else "http"}
    if client_host:
        headers["x-forwarded-for"] = client_host
    if host:
        headers["x-forwarded-host"] = host
    return headers


def upstream_request_headers(
    incoming: Iterable[tuple[str, str]], forwarded: dict[str, str]
) -> list[tuple[str, str]]:
    """The client's end-to-end headers (no hop-by-hop, Host or spoofable forwarding) + ours."""
    pairs = list(incoming)
    named_in_connection = {
        token.strip().lower()
        for name, value in pairs
        if name.lower() == "connection"
        for token in value.split(",")
    }
    drop = HOP_BY_HOP | FORWARDING | named_in_connection | {"host", "content-length"}
    kept = [(name, value) for name, value in pairs if name.lower() not in drop]
    return kept + list(forwarded.items())


def downstream_response_headers(headers: httpx.Headers) -> list[tuple[bytes, bytes]]:
    """The API's response headers minus hop-by-hop ones; repeated headers stay repeated."""
    named_in_connection = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    drop = HOP_BY_HOP | named_in_connection | {"date", "server"}  # uvicorn sets its own Date
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in headers.multi_items()
        if name.lower() not in drop
    ]


def sendable_close_code(code: int | None) -> int:
    if code is None:
        return 1000
    return _UNSENDABLE_CLOSE.get(code, code)


def request_target(scope: Scope) -> str:
    """The path and query exactly as the client sent them (no re-encoding)."""
    path: bytes = scope.get("raw_path") or str(scope["path"]).encode()
    query: bytes = scope.get("query_string", b"")
    return (path + (b"?" + query if query else b"")).decode("latin-1")
