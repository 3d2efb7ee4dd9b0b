"""Pure SignalR JSON hub protocol pieces (no sockets): records, handshake, negotiate parsing.

See shared docs signalr-health-trading-api.md sections 1 and 5 (ASP.NET Core TransportProtocols
and HubProtocol specs). Records are JSON objects terminated by 0x1E; one frame may hold several.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

RS = "\x1e"
PING = json.dumps({"type": 6}) + RS
CLOSE = json.dumps({"type": 7}) + RS

INVOCATION, STREAM_ITEM, COMPLETION, STREAM_INVOCATION, CANCEL, PING_TYPE, CLOSE_TYPE = range(1, 8)

HubMessage = dict[str, object]


def handshake_request(version: int = 1) -> str:
    return json.dumps({"protocol": "json", "version": version}, separators=(",", ":")) + RS


def invocation(target: str, arguments: list[object], invocation_id: str | None) -> str:
    msg: dict[str, object] = {"type": INVOCATION, "target": target, "arguments": arguments}
    if invocation_id is not None:
        msg["invocationId"] = invocation_id
    return json.dumps(msg, separators=(",", ":")) + RS


class RecordBuffer:
    """Accumulates text across frames and yields complete records (0x1E-terminated)."""

    def __init__(self, max_chars: int = 1024 * 1024) -> None:
        self._buf = ""
        self._max = max_chars

    def feed(self, text: str) -> list[str]:
        self._buf += text
        *records, self._buf = self._buf.split(RS)
        if len(self._buf) > self._max:
            raise ValueError(f"partial record larger than {self._max} characters")
        return records


def parse_record(record: str) -> HubMessage:
    """Decode one record; raises ValueError for non-object JSON."""
    value = json.loads(record)
    if not isinstance(value, dict):
        raise ValueError("record is not a JSON object")
    return value


def handshake_error(record: str) -> str | None:
    """None for a successful handshake reply (`{}`), else the reason."""
    try:
        msg = parse_record(record)
    except ValueError as exc:
        return f"handshake reply is not JSON: {exc}"
    if "type" in msg:
        return "handshake reply carries a message type"
    if msg.get("error"):
        return f"server refused handshake: {msg['error']}"
    return None


@dataclass(frozen=True, slots=True)
class Negotiated:
    connection_id: str
    version: int
    transports: tuple[str, ...]


def parse_negotiate(body: object) -> Negotiated | str:
    """A negotiate response, or the reason it cannot be used."""
    if not isinstance(body, dict):
        return "negotiate response is not a JSON object"
    if body.get("error"):
        return f"negotiate error: {body['error']}"
    if "url" in body:
        return "negotiate redirected to another URL (not followed)"
    version = body.get("negotiateVersion", 0)
    token = body.get("connectionToken") if version == 1 else body.get("connectionId")
    if not isinstance(token, str) or not token:
        return "negotiate response has no connection id"
    transports: list[str] = []
    for t in body.get("availableTransports", []) or []:
        if isinstance(t, dict) and isinstance(t.get("transport"), str):
            transports.append(t["transport"])
    if "WebSockets" not in transports:
        return f"WebSockets transport not offered (got {transports})"
    return Negotiated(token, version if isinstance(version, int) else 0, tuple(transports))


def ws_url(http_url: str, connection_id: str | None, access_token: str | None = None) -> str:
    """The hub WebSocket URL for a negotiated connection (`id`, optional `access_token`)."""
    parts = urlsplit(http_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    query = []
    if connection_id is not None:
        query.append(f"id={quote(connection_id, safe='')}")
    if access_token is not None:
        query.append(f"access_token={quote(access_token, safe='')}")
    return urlunsplit((scheme, parts.netloc, parts.path, "&".join(query), ""))
