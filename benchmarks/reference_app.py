"""The reference for the API benchmark: a bare FastAPI endpoint under the same uvicorn settings
(h11, no access log) as ``mytrader-server``, so the ratio isolates MyTrader's own middleware."""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from mytrader_server.serving import ReadyFileServer, header_deadline_protocol

app = FastAPI()


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "pass"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--http", choices=["h11", "httptools"], default="h11")
    args = parser.parse_args()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        http=header_deadline_protocol(10.0) if args.http == "h11" else "httptools",
        access_log=False,
        log_level="warning",
        lifespan="off",
    )
    ReadyFileServer(config, args.ready_file).run()


if __name__ == "__main__":
    main()
