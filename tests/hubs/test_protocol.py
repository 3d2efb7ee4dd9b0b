"""The sans-I/O hub protocol from tables: text in, messages and replies out, no socket."""

from __future__ import annotations

import json

import pytest

from mytrader_server.hubs.protocol import (
    ERROR_HANDSHAKE_UNEXPECTED,
    HANDSHAKE_OK,
    RS,
    CancelInvocation,
    Close,
    Completion,
    ConnectionState,
    HandshakeError,
    HubMessage,
    HubProtocol,
    HubProtocolError,
    Invocation,
    MessageTooLarge,
    Ping,
    RecordReader,
    StreamInvocation,
    StreamItem,
    encode_close,
    encode_completion,
    encode_invocation,
    encode_invocation_raw,
    encode_stream_item,
    parse_handshake,
    parse_message,
)

HANDSHAKE = '{"protocol":"json","version":1}' + RS


def opened() -> HubProtocol:
    proto = HubProtocol(max_record_chars=1024)
    assert proto.receive_data(HANDSHAKE) == []
    assert proto.data_to_send() == [HANDSHAKE_OK]
    assert proto.state is ConnectionState.OPEN
    return proto


@pytest.mark.parametrize(
    ("chunks", "records"),
    [
        (["a" + RS], ["a"]),
        (["a" + RS + "b" + RS], ["a", "b"]),  # two records in one frame
        (["a", "b", "c" + RS], ["abc"]),  # one record across three frames
        (["a" + RS + "b", "c" + RS + "d"], ["a", "bc"]),  # split and joined
        ([RS], [""]),
        (["", "x", RS + RS], ["x", ""]),
    ],
)
def test_framing_across_and_within_frames(chunks: list[str], records: list[str]) -> None:
    reader = RecordReader(100)
    out: list[str] = []
    for chunk in chunks:
        out += reader.feed(chunk)
    assert out == records


@pytest.mark.parametrize("chunks", [["x" * 11 + RS], ["x" * 6, "x" * 6], ["x" * 11]])
def test_records_above_the_limit_are_refused(chunks: list[str]) -> None:
    reader = RecordReader(10)

    def feed_all() -> None:
        for chunk in chunks:
            reader.feed(chunk)

    with pytest.raises(MessageTooLarge):
        feed_all()


@pytest.mark.parametrize("version", [0, 1, 2])
def test_handshake_versions_accepted(version: int) -> None:
    assert parse_handshake(json.dumps({"protocol": "json", "version": version})).version == version


@pytest.mark.parametrize(
    ("record", "error"),
    [
        (
            '{"protocol":"messagepack","version":1}',
            "Requested protocol 'messagepack' is not available.",
        ),
        ('{"protocol":"x","version":1}', "Requested protocol 'x' is not available."),
        (
            '{"protocol":"json","version":3}',
            "The server does not support version 3 of the 'json' protocol.",
        ),
        ('{"protocol":"json"}', ERROR_HANDSHAKE_UNEXPECTED),
        ('{"protocol":"json","version":true}', ERROR_HANDSHAKE_UNEXPECTED),
        ("not json", ERROR_HANDSHAKE_UNEXPECTED),
        ("[1]", ERROR_HANDSHAKE_UNEXPECTED),
    ],
)
def test_handshake_errors_reply_and_close(record: str, error: str) -> None:
    proto = HubProtocol(1024)
    with pytest.raises(HandshakeError):
        proto.receive_data(record + RS)
    assert proto.data_to_send() == [json.dumps({"error": error}, separators=(",", ":")) + RS]
    assert proto.state is ConnectionState.CLOSED
    assert proto.receive_data('{"type":6}' + RS) == []


def test_handshake_and_messages_in_one_frame() -> None:
    proto = HubProtocol(1024)
    messages = proto.receive_data(HANDSHAKE + '{"type":6}' + RS + '{"type":1,"target":"A"')
    assert messages == [Ping()]
    assert proto.data_to_send() == [HANDSHAKE_OK]
    assert proto.receive_data(',"arguments":[1]}' + RS) == [Invocation(None, "A", (1,))]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            '{"type":1,"invocationId":"7","target":"Sub","arguments":[["AAPL"]]}',
            Invocation("7", "Sub", (["AAPL"],)),
        ),
        ('{"type":1,"target":"Fire","arguments":[]}', Invocation(None, "Fire", ())),
        # pysignalr/signalrcore copy Authorization into headers; unknown fields are ignored
        (
            '{"type":1,"target":"X","arguments":[],"headers":{"Authorization":"Bearer s"},"zz":1}',
            Invocation(None, "X", ()),
        ),
        ('{"type":1,"target":"X"}', Invocation(None, "X", ())),
        (
            '{"type":4,"invocationId":"2","target":"StreamPrices","arguments":["AAPL",3],"streamIds":[]}',
            StreamInvocation("2", "StreamPrices", ("AAPL", 3)),
        ),
        (
            '{"type":1,"target":"X","arguments":[],"streamIds":["s1"]}',
            Invocation(None, "X", (), ("s1",)),
        ),
        ('{"type":2,"invocationId":"1","item":5}', StreamItem("1", 5)),
        ('{"type":3,"invocationId":"1","result":null}', Completion("1", None, None, True)),
        ('{"type":3,"invocationId":"1","error":"e"}', Completion("1", "e")),
        ('{"type":5,"invocationId":"3"}', CancelInvocation("3")),
        ('{"type":6}', Ping()),
        ('{"type":7}', Close()),
        ('{"type":7,"error":"bye","allowReconnect":true}', Close("bye", True)),
        ('{"type":8,"sequenceId":1}', None),
        ('{"type":99}', None),
    ],
)
def test_messages_parse(record: str, message: HubMessage | None) -> None:
    assert parse_message(record) == message


@pytest.mark.parametrize(
    "record",
    [
        "nope",
        "[]",
        '{"target":"X"}',
        '{"type":"1"}',
        '{"type":1,"arguments":[]}',
        '{"type":1,"target":5}',
        '{"type":1,"target":"X","arguments":{}}',
        '{"type":1,"target":"X","invocationId":5}',
        '{"type":4,"target":"X","arguments":[]}',
        '{"type":3,"invocationId":"1","result":1,"error":"e"}',
        '{"type":5}',
        '{"type":1,"target":"X","streamIds":[1]}',
    ],
)
def test_protocol_violations(record: str) -> None:
    with pytest.raises(HubProtocolError):
        parse_message(record)
    proto = opened()
    with pytest.raises(HubProtocolError):
        proto.receive_data(record + RS)
    assert proto.state is ConnectionState.CLOSED


def test_close_message_moves_to_closing() -> None:
    proto = opened()
    assert proto.receive_data('{"type":7}' + RS + '{"type":6}' + RS) == [Close()]
    assert proto.state is ConnectionState.CLOSING
    assert proto.receive_data('{"type":6}' + RS) == []


def test_handshake_timeout_reply() -> None:
    proto = HubProtocol(1024)
    proto.fail_handshake("Handshake was canceled.")
    assert proto.data_to_send() == ['{"error":"Handshake was canceled."}' + RS]
    assert proto.state is ConnectionState.CLOSED


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (encode_completion("1", result=["A"]), {"type": 3, "invocationId": "1", "result": ["A"]}),
        (encode_completion("1"), {"type": 3, "invocationId": "1"}),
        (encode_completion("1", error="bad"), {"type": 3, "invocationId": "1", "error": "bad"}),
        (encode_stream_item("2", {"a": 1}), {"type": 2, "invocationId": "2", "item": {"a": 1}}),
        (
            encode_invocation("OrderUpdate", [{"x": 1}]),
            {"type": 1, "target": "OrderUpdate", "arguments": [{"x": 1}]},
        ),
        (
            encode_invocation_raw("T", '{"p":"1.5"}'),
            {"type": 1, "target": "T", "arguments": [{"p": "1.5"}]},
        ),
        (encode_close(), {"type": 7}),
        (
            encode_close("e", allow_reconnect=True),
            {"type": 7, "error": "e", "allowReconnect": True},
        ),
    ],
)
def test_encoding(record: str, expected: dict[str, object]) -> None:
    assert record.endswith(RS)
    assert record.count(RS) == 1
    assert json.loads(record[:-1]) == expected
    # a push has no invocationId, so clients never reply to it
    if expected["type"] == 1:
        assert "invocationId" not in json.loads(record[:-1])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("127.0.0.1:5 - ", "/hubs/trading?id=abc&access_token=eyJ.x.y"),
            ("127.0.0.1:5 - ", "/hubs/trading?id=[redacted]&access_token=[redacted]"),
        ),
        (("/hubs/market-data",), ("/hubs/market-data",)),
        (("/x?access_token=t", 3), ("/x?access_token=[redacted]", 3)),
    ],
)
def test_server_log_lines_lose_tokens_and_ids(
    args: tuple[object, ...], expected: tuple[object, ...]
) -> None:
    import logging

    from mytrader_server.serving import RedactQuery

    record = logging.LogRecord("uvicorn.error", 20, "f", 1, '%s "WebSocket %s"', args, None)
    assert RedactQuery().filter(record)
    assert record.args == expected
