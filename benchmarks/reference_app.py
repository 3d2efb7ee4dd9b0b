"""The reference for the API benchmarks: a bare FastAPI ``/health/live`` under a chosen uvicorn
set-up, so that a ratio to it isolates MyTrader's own cost.

- ``same``: MyTrader's default settings (``serving.http_protocol`` on httptools with the head
  cap and deadline, uvloop, no server header, no access log): isolates MyTrader's middleware.
- ``h11``: the previous default (h11 with the header deadline, asyncio loop), for history.
- ``standard``: uvicorn[standard]'s defaults (``http="auto"``, ``loop="auto"``: httptools and
  uvloop, no limits), access log off: the throughput a bare app gets for free.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from mytrader_server.serving import ReadyFileServer, event_loop, http_protocol

app = FastAPI()
MAX_HEADER_BYTES = 32_768  # MyTrader's defaults
HEADER_TIMEOUT_S = 10.0


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "pass"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--variant", choices=["same", "h11", "standard"], default="same")
    args = parser.parse_args()
    options: dict[str, Any]
    if args.variant == "standard":
        options = {"http": "auto", "loop": "auto"}
    else:
        impl = "httptools" if args.variant == "same" else "h11"
        options = {
            "http": http_protocol(impl, HEADER_TIMEOUT_S, MAX_HEADER_BYTES),
            "loop": event_loop(impl),
            "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
            "server_header": False,
            "timeout_keep_alive": 5,
        }
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        access_log=False,
        log_level="warning",
        lifespan="off",
        **options,
    )
    ReadyFileServer(config, args.ready_file).run()


if __name__ == "__main__":
    main()
