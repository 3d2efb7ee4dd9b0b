"""A TCP proxy on loopback that damages the server-to-client stream on purpose.

It sits between a client under test and a real server and, per chunk the server sends,
delays it (``latency``), trickles it (``bandwidth``), resets the client's connection
(``reset``: RST through SO_LINGER 0) or sends half of it and closes (``truncate``); ``none``
passes everything through unchanged, as the control. It runs in its own thread and event loop,
so a synchronous test can drive a client subprocess against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from typing import Literal

Mode = Literal["none", "latency", "bandwidth", "reset", "truncate"]


class FaultProxy:
    def __init__(
        self,
        upstream_port: int,
        mode: Mode,
        *,
        probability: float = 1.0,
        latency_s: float = 1.5,
        bytes_per_s: int = 256,
        seed: int = 7,
    ) -> None:
        self.upstream_port = upstream_port
        self.mode = mode
        self.probability = probability
        self.latency_s = latency_s
        self.bytes_per_s = bytes_per_s
        self.random = random.Random(seed)
        self.faults = 0
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            if self._thread.is_alive():
                raise RuntimeError("fault proxy did not stop within 10 s")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()
        assert self._server is not None
        self._server.close()
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    async def _connection(
        self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter
    ) -> None:
        try:
            s_reader, s_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            _reset(c_writer)
            return
        except asyncio.CancelledError:  # the proxy is stopping
            c_writer.transport.abort()
            raise
        upstream = asyncio.create_task(_pump(c_reader, s_writer))
        try:
            await self._downstream(s_reader, c_writer)
        except (ConnectionError, OSError):
            pass
        finally:
            upstream.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await upstream
            s_writer.transport.abort()
            c_writer.transport.abort()

    async def _downstream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            hit = self.mode != "none" and self.random.random() < self.probability
            if hit:
                self.faults += 1
            if hit and self.mode == "reset":
                _reset(writer)
                return
            if hit and self.mode == "truncate":
                writer.write(chunk[: max(1, len(chunk) // 2)])
                await writer.drain()
                writer.close()
                return
            if hit and self.mode == "latency":
                await asyncio.sleep(self.latency_s)
            if hit and self.mode == "bandwidth":
                step = max(1, self.bytes_per_s // 10)
                for i in range(0, len(chunk), step):
                    writer.write(chunk[i : i + step])
                    await writer.drain()
                    await asyncio.sleep(0.1)
                continue
            writer.write(chunk)
            await writer.drain()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while chunk := await reader.read(65536):
        writer.write(chunk)
        await writer.drain()
    with contextlib.suppress(OSError):
        writer.write_eof()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST instead of a FIN, as a crashed peer or a middlebox does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
