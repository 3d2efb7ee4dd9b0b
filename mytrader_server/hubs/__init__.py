"""Real-time hubs speaking the ASP.NET Core SignalR JSON protocol (issue 3).

``install_hubs(app, ctx)`` mounts ``/hubs/market-data``, ``/hubs/trading`` and ``/hubs/portfolio``:

- ``protocol``: the sans-I/O hub protocol (framing, handshake, messages, .NET's error strings);
- ``connection``: one WebSocket connection, its bounded send queue and single writer task;
- ``fanout``: who receives which tick or user event; ``streams``: ``StreamPrices``;
- ``methods``: the hub methods and the dispatcher; ``negotiation``: negotiated connection ids;
- ``endpoint``: negotiate, connect, keep-alive, health, shutdown;
- ``scaleout``: the Redis bus, shared negotiations and the market-data feed leader election.
"""

from __future__ import annotations

from fastapi import FastAPI

from mytrader_server.context import ServerContext


def install_hubs(app: FastAPI, ctx: ServerContext, route_sockets: bool = True) -> None:
    """Mount the hubs on ``app`` (``app.state.engine`` must be set).

    ``route_sockets=False`` leaves the hub WebSockets to a ``HubMiddleware`` the caller puts in
    front of the whole app (``build_server`` does)."""
    from mytrader_server.hubs.endpoint import install

    install(app, ctx, route_sockets)
