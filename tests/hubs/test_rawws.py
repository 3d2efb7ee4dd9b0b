"""The benchmarks' raw WebSocket client pieces (benchmarks/rawws.py) against websockets' own
frame codec: what they send parses as a masked client frame, and what a server sends, cut at
any byte, comes out whole and in order."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader


def _rawws() -> ModuleType:
    path = Path(__file__).parents[2] / "benchmarks" / "rawws.py"
    spec = importlib.util.spec_from_file_location("rawws", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("rawws", module)
    spec.loader.exec_module(module)
    return module


rawws = _rawws()


@pytest.mark.parametrize(
    ("opcode", "size"),
    [
        (Opcode.PONG, 0),
        (Opcode.PONG, 125),
        (Opcode.TEXT, 1),
        (Opcode.TEXT, 126),
        (Opcode.TEXT, 65_535),
    ],
)
def test_a_client_frame_is_a_masked_frame_websockets_reads(opcode: Opcode, size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    reader = StreamReader()
    reader.feed_data(rawws.client_frame(payload, opcode.value))
    parser = Frame.parse(reader.read_exact, mask=True)
    with pytest.raises(StopIteration) as done:
        next(parser)
    frame = done.value.value
    assert frame.opcode is opcode
    assert frame.data == payload


def test_server_frames_cut_anywhere_come_out_whole_and_in_order() -> None:
    sent = [(Opcode.TEXT, b"x" * n) for n in (0, 5, 125, 126, 300, 65_536, 70_000)]
    sent.insert(3, (Opcode.PING, b"ping"))
    wire = b"".join(Frame(op, data).serialize(mask=False) for op, data in sent)
    for cut in (1, 2, 3, 7, 4096):
        buf, got = bytearray(), []
        for at in range(0, len(wire), cut):
            buf += wire[at : at + cut]
            got += rawws.take_frames(buf)
        assert got == [(op.value, data) for op, data in sent]
        assert not buf


def test_the_upgrade_head_is_consumed_once_complete() -> None:
    buf = bytearray(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n")
    assert not rawws.take_upgrade(buf)
    buf += b"\r\n\x81\x00"
    assert rawws.take_upgrade(buf)
    assert bytes(buf) == b"\x81\x00"  # the frame after the head stays
    with pytest.raises(AssertionError):
        rawws.take_upgrade(bytearray(b"HTTP/1.1 403 Forbidden\r\n\r\n"))
    assert rawws.upgrade_request("/hubs/x").startswith(b"GET /hubs/x HTTP/1.1\r\n")
