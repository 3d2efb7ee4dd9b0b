"""Fixtures for mytrader-ops tests: small hostile servers in a background thread, a live
MyTrader server, and helpers to run the real CLI."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
REPO = Path(__file__).resolve().parents[2]


class ThreadedServer:
    """A raw asyncio TCP server on 127.0.0.1:0 in its own thread and event loop."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            self._server = await asyncio.start_server(
                self._guarded, "127.0.0.1", 0, ssl=self.ssl_context
            )
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    async def _guarded(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            self._server.close_clients()  # type: ignore[attr-defined]
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        if hasattr(asyncio.Server, "close_clients"):
            asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        else:
            asyncio.run_coroutine_threadsafe(self._stop_311(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    async def _stop_311(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def response(status: int, body: bytes, ctype: str = "application/json", extra: str = "") -> bytes:
    reason = {
        200: "OK",
        301: "Moved",
        302: "Found",
        404: "Not Found",
        500: "Error",
        503: "Unavailable",
    }.get(status, "X")
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


@pytest.fixture
def serve() -> Iterator[Callable[..., ThreadedServer]]:
    started: list[ThreadedServer] = []

    def make(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> ThreadedServer:
        server = ThreadedServer(handler, ssl_context).__enter__()
        started.append(server)
        return server

    yield make
    for server in started:
        server.__exit__()


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> CliResult:
    """The real CLI in a subprocess (`python -m mytrader_ops`)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MYTRADER_OPS_")}
    full_env.update(env or {})
    full_env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-m", "mytrader_ops", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=REPO,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)
