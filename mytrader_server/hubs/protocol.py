"""The ASP.NET Core SignalR JSON hub protocol, sans I/O: text in, messages out, no socket.

Follows ``HubProtocol.md`` as the real clients speak it (see the shared wire-protocol notes,
section 1): every record is one JSON object ended by 0x1E; a WebSocket frame may hold several
records and a record may span frames. The handshake is the first record. Fields the spec does not
name (``headers``, ``streamIds`` on a StreamInvocation, anything new) are accepted and ignored;
their values are never logged, because pysignalr and signalrcore copy the Authorization header
into every message's ``headers``.

Errors::

    HubProtocolError            the peer broke the protocol: close with a Close message
     +-- HandshakeError         bad handshake: reply {"error": message}, then close
     +-- MessageTooLarge        a record exceeds the size limit: close 1009
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Final

from mytrader_server.events import JSONValue

RS: Final = "\x1e"
SUPPORTED_VERSIONS: Final = range(
    0, 3
)  # JS 10.x sends 1 (2 with stateful reconnect), signalrcore 0
HANDSHAKE_OK: Final = "{}" + RS
PING: Final = '{"type":6}' + RS

# .NET's strings (HubConnectionContext.cs, DefaultHubDispatcher.cs): clients show them to users.
ERROR_CLOSED: Final = "Connection closed with an error."
ERROR_HANDSHAKE_UNEXPECTED: Final = "An unexpected error occurred during connection handshake."
ERROR_HANDSHAKE_CANCELED: Final = "Handshake was canceled."


class HubProtocolError(Exception):
    """The peer sent something the protocol does not allow; the connection must close."""


class HandshakeError(HubProtocolError):
    """The handshake failed; ``str(exc)`` is the ``error`` text sent back before closing."""


class MessageTooLarge(HubProtocolError):
    """A record grew beyond the configured limit (WebSocket close code 1009)."""


class ConnectionState(enum.Enum):
    """Where a hub connection is: each transition is one-way."""

    HANDSHAKE = "handshake"  # socket accepted, waiting for {"protocol":"json",...}
    OPEN = "open"  # handshake done, messages flow
    CLOSING = "closing"  # a Close message or close frame is on its way
    CLOSED = "closed"


class MessageType(enum.IntEnum):
    INVOCATION = 1
    STREAM_ITEM = 2
    COMPLETION = 3
    STREAM_INVOCATION = 4
    CANCEL_INVOCATION = 5
    PING = 6
    CLOSE = 7


@dataclass(frozen=True, slots=True)
class Invocation:
    """type 1: call ``target``; reply only when ``invocation_id`` is set."""

    invocation_id: str | None
    target: str
    arguments: tuple[JSONValue, ...]
    stream_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StreamInvocation:
    """type 4: start a server-to-client stream."""

    invocation_id: str
    target: str
    arguments: tuple[JSONValue, ...]
    stream_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StreamItem:
    """type 2 (client-to-server streams are not offered; received items are ignored)."""

    invocation_id: str
    item: JSONValue


@dataclass(frozen=True, slots=True)
class Completion:
    """type 3 (client results are not used by these hubs; received ones are ignored)."""

    invocation_id: str
    error: str | None = None
    result: JSONValue = None
    has_result: bool = False


@dataclass(frozen=True, slots=True)
class CancelInvocation:
    """type 5: stop the stream ``invocation_id``."""

    invocation_id: str


@dataclass(frozen=True, slots=True)
class Ping:
    """type 6: keep-alive; needs no answer."""


@dataclass(frozen=True, slots=True)
class Close:
    """type 7: the peer is closing."""

    error: str | None = None
    allow_reconnect: bool = False


HubMessage = (
    Invocation | StreamInvocation | StreamItem | Completion | CancelInvocation | Ping | Close
)


@dataclass(frozen=True, slots=True)
class HandshakeRequest:
    protocol: str
    version: int


# ---- framing ---------------------------------------------------------------------------------


class RecordReader:
    """Splits text into 0x1E-terminated records, keeping a partial record across frames."""

    __slots__ = ("_max", "_partial", "_partial_len")

    def __init__(self, max_record_chars: int) -> None:
        self._max = max_record_chars
        self._partial: list[str] = []
        self._partial_len = 0

    def feed(self, data: str) -> list[str]:
        if RS not in data:
            self._keep(data)
            return []
        parts = data.split(RS)
        tail = parts.pop()
        if self._partial:
            parts[0] = "".join(self._partial) + parts[0]
            self._partial.clear()
            self._partial_len = 0
        for part in parts:
            if len(part) > self._max:
                raise MessageTooLarge(f"record of {len(part)} characters")
        self._keep(tail)
        return parts

    def _keep(self, data: str) -> None:
        if not data:
            return
        self._partial_len += len(data)
        if self._partial_len > self._max:
            raise MessageTooLarge(f"partial record of {self._partial_len} characters")
        self._partial.append(data)

    @property
    def buffered(self) -> int:
        return self._partial_len


# ---- parsing ---------------------------------------------------------------------------------


def _load_object(record: str) -> dict[str, JSONValue]:
    try:
        value = json.loads(record)
    except ValueError:
        raise HubProtocolError("record is not valid JSON") from None
    if not isinstance(value, dict):
        raise HubProtocolError("record is not a JSON object")
    return value


def parse_handshake(record: str) -> HandshakeRequest:
    """Validate the handshake record; raise HandshakeError with the text .NET would send."""
    try:
        body = _load_object(record)
    except HubProtocolError:
        raise HandshakeError(ERROR_HANDSHAKE_UNEXPECTED) from None
    protocol, version = body.get("protocol"), body.get("version")
    if not isinstance(protocol, str) or not isinstance(version, int) or isinstance(version, bool):
        raise HandshakeError(ERROR_HANDSHAKE_UNEXPECTED)
    if protocol != "json":
        raise HandshakeError(f"Requested protocol '{protocol[:64]}' is not available.")
    if version not in SUPPORTED_VERSIONS:
        raise HandshakeError(
            f"The server does not support version {version} of the 'json' protocol."
        )
    return HandshakeRequest(protocol, version)


def _str(body: dict[str, JSONValue], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise HubProtocolError(f"Missing required property '{key}'.")
    return value


def _optional_str(body: dict[str, JSONValue], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise HubProtocolError(f"Expected '{key}' to be of type string.")
    return value


def _arguments(body: dict[str, JSONValue]) -> tuple[JSONValue, ...]:
    value = body.get("arguments", [])
    if not isinstance(value, list):
        raise HubProtocolError("Expected 'arguments' to be of type array.")
    return tuple(value)


def _stream_ids(body: dict[str, JSONValue]) -> tuple[str, ...]:
    value = body.get("streamIds")
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise HubProtocolError("Expected 'streamIds' to be an array of strings.")
    return tuple(str(v) for v in value)


def parse_message(record: str) -> HubMessage | None:
    """One record to one message; None for message types this server ignores (8, 9, future)."""
    body = _load_object(record)
    kind = body.get("type")
    if not isinstance(kind, int) or isinstance(kind, bool):
        raise HubProtocolError("Missing required property 'type'.")
    if kind == MessageType.INVOCATION:
        return Invocation(
            _optional_str(body, "invocationId"),
            _str(body, "target"),
            _arguments(body),
            _stream_ids(body),
        )
    if kind == MessageType.STREAM_INVOCATION:
        return StreamInvocation(
            _str(body, "invocationId"), _str(body, "target"), _arguments(body), _stream_ids(body)
        )
    if kind == MessageType.STREAM_ITEM:
        return StreamItem(_str(body, "invocationId"), body.get("item"))
    if kind == MessageType.COMPLETION:
        error = _optional_str(body, "error")
        has_result = "result" in body
        if error is not None and has_result:
            raise HubProtocolError("The 'error' and 'result' properties are mutually exclusive.")
        return Completion(_str(body, "invocationId"), error, body.get("result"), has_result)
    if kind == MessageType.CANCEL_INVOCATION:
        return CancelInvocation(_str(body, "invocationId"))
    if kind == MessageType.PING:
        return Ping()
    if kind == MessageType.CLOSE:
        return Close(_optional_str(body, "error"), body.get("allowReconnect") is True)
    return None  # Ack/Sequence (stateful reconnect, not offered) and future types are ignored


# ---- encoding --------------------------------------------------------------------------------


def _dump(value: dict[str, JSONValue]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False) + RS


def encode_handshake_error(message: str) -> str:
    return _dump({"error": message})


def encode_completion(
    invocation_id: str, *, result: JSONValue = None, error: str | None = None
) -> str:
    """A Completion carries ``error`` or ``result``, never both; a None result is omitted."""
    body: dict[str, JSONValue] = {
        "type": MessageType.COMPLETION.value,
        "invocationId": invocation_id,
    }
    if error is not None:
        body["error"] = error
    elif result is not None:
        body["result"] = result
    return _dump(body)


def encode_stream_item(invocation_id: str, item: JSONValue) -> str:
    return _dump(
        {"type": MessageType.STREAM_ITEM.value, "invocationId": invocation_id, "item": item}
    )


def encode_invocation(target: str, arguments: list[JSONValue]) -> str:
    """A server push: an Invocation without invocationId, so the client sends no reply."""
    return _dump({"type": MessageType.INVOCATION.value, "target": target, "arguments": arguments})


def encode_invocation_raw(target: str, argument_json: str) -> str:
    """The same push with one argument already encoded: fan-out encodes each tick only once."""
    return f'{{"type":1,"target":{json.dumps(target)},"arguments":[{argument_json}]}}{RS}'


def encode_close(error: str | None = None, allow_reconnect: bool = False) -> str:
    body: dict[str, JSONValue] = {"type": MessageType.CLOSE.value}
    if error is not None:
        body["error"] = error
    if allow_reconnect:
        body["allowReconnect"] = True
    return _dump(body)


def encode_json(value: JSONValue) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# ---- the connection state machine ------------------------------------------------------------


class HubProtocol:
    """One connection's protocol state: feed it received text, read messages and replies.

    ``receive_data`` returns the hub messages to dispatch; records to send back (the handshake
    reply) collect in ``data_to_send()``. It raises HubProtocolError subclasses when the
    connection must close; after that the object is CLOSED and accepts nothing more.
    """

    __slots__ = ("_outgoing", "_reader", "handshake", "state")

    def __init__(self, max_record_chars: int) -> None:
        self.state = ConnectionState.HANDSHAKE
        self.handshake: HandshakeRequest | None = None
        self._reader = RecordReader(max_record_chars)
        self._outgoing: list[str] = []

    def receive_data(self, data: str) -> list[HubMessage]:
        if self.state in (ConnectionState.CLOSING, ConnectionState.CLOSED):
            return []
        try:
            records = self._reader.feed(data)
            messages: list[HubMessage] = []
            for record in records:
                if self.state is ConnectionState.HANDSHAKE:
                    self.handshake = parse_handshake(record)
                    self.state = ConnectionState.OPEN
                    self._outgoing.append(HANDSHAKE_OK)
                    continue
                if self.state is not ConnectionState.OPEN:
                    break
                message = parse_message(record)
                if isinstance(message, Close):
                    self.state = ConnectionState.CLOSING
                if message is not None:
                    messages.append(message)
            return messages
        except HandshakeError as exc:
            self.state = ConnectionState.CLOSED
            self._outgoing.append(encode_handshake_error(str(exc)))
            raise
        except HubProtocolError:
            self.state = ConnectionState.CLOSED
            raise

    def data_to_send(self) -> list[str]:
        out, self._outgoing = self._outgoing, []
        return out

    def fail_handshake(self, message: str) -> None:
        """The handshake did not arrive in time: queue the error reply and stop."""
        if self.state is ConnectionState.HANDSHAKE:
            self._outgoing.append(encode_handshake_error(message))
            self.state = ConnectionState.CLOSED

    def closing(self) -> None:
        if self.state is not ConnectionState.CLOSED:
            self.state = ConnectionState.CLOSING

    def closed(self) -> None:
        self.state = ConnectionState.CLOSED
