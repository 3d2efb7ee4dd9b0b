"""Real-time hubs speaking the ASP.NET Core SignalR JSON protocol (see issue 3).

``install_hubs(app, ctx)`` mounts ``/hubs/market-data``, ``/hubs/trading`` and ``/hubs/portfolio``.
"""

from __future__ import annotations

from fastapi import FastAPI

from mytrader_server.context import ServerContext


def install_hubs(app: FastAPI, ctx: ServerContext) -> None:
    """Mount the hubs on ``app``. The hub protocol implementation lands with issue 3."""
