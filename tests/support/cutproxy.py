"""A TCP proxy on loopback that can cut a link and restore it: a network partition on demand.

Put it between one client (an API process) and a server (Redis, PostgreSQL): ``cut()`` resets
every open connection (RST, through SO_LINGER 0) and resets each new one at once, so the client
sees the server as unreachable; ``restore()`` passes traffic again. It runs its own event loop in
a daemon thread, so synchronous and asynchronous tests drive it alike, and its port stays the
same for its whole life (a restarted client finds it where it was).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST instead of FIN: the peer's next read or write fails at once."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


class CutProxy:
    def __init__(self, upstream_host: str, upstream_port: int, listen_port: int = 0) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.port = listen_port
        self.is_cut = False
        self.accepted = 0
        self.refused = 0
        self.loop = asyncio.new_event_loop()
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="cutproxy")
        self._server: asyncio.Server | None = None

    def start(self) -> CutProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("cut proxy did not start")
        return self

    def url(self, scheme: str = "redis", path: str = "/0") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    # ---- control (thread-safe) ----------------------------------------------------------------

    def cut(self) -> None:
        """Refuse new connections and reset every open one."""
        self._call(self._cut)

    def restore(self) -> None:
        self._call(self._restore)

    def drop_connections(self) -> None:
        """Reset the open connections but keep accepting new ones (a flap, not an outage)."""
        self._call(self._drop_all)

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    def stop(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):
                self._call(self._shutdown)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    def _call(self, fn: object) -> None:
        async def run() -> None:
            assert callable(fn)
            result = fn()
            if asyncio.iscoroutine(result):
                await result

        asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    # ---- the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def _cut(self) -> None:
        self.is_cut = True
        self._drop_all()

    def _restore(self) -> None:
        self.is_cut = False

    def _drop_all(self) -> None:
        for client, upstream in list(self._pairs):
            _reset(client)
            _reset(upstream)
        self._pairs.clear()

    async def _shutdown(self) -> None:
        self._drop_all()
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.is_cut:
            self.refused += 1
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            _reset(writer)
            return
        if self.is_cut:  # cut while connecting
            _reset(up_writer)
            _reset(writer)
            return
        self.accepted += 1
        pair = (writer, up_writer)
        self._pairs.add(pair)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            if pair in self._pairs:
                self._pairs.discard(pair)
                for w in pair:
                    with contextlib.suppress(Exception):
                        w.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                if not writer.is_closing():
                    writer.write_eof()
