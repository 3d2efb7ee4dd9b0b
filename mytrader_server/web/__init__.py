"""The MyTrader web app and the proxy that serves it (``mytrader-server web``).

- ``static/``: the browser app, plain ES modules and CSS with no build step; it talks to the API
  under ``/api`` and to the SignalR hubs under ``/hubs`` on its own origin.
- ``proxy``: an ASGI app that serves ``static/`` and relays ``/api/*`` and ``/hubs/*`` (WebSocket
  upgrades included) to the API, adding forwarding headers.
- ``server``: runs that app under uvicorn (the ``web`` command).

In production nginx does the same job: ``deploy/nginx/mytrader.conf``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

STATIC_DIR: Final = Path(__file__).parent / "static"
