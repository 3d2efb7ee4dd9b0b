"""The MyTrader web app and the proxy that serves it (``mytrader-server web``).

- ``static/``: the browser app, plain ES modules and CSS with no build step; it talks to the API
  under ``/api`` and to the SignalR hubs under ``/hubs`` on its own origin.
- ``proxy``: the ASGI app that serves ``static/`` and relays ``/api/*`` and ``/hubs/*``
  (WebSocket upgrades included) to the API; its ``ProxyConfig``.
- ``relay``: one HTTP request or one WebSocket relayed, and the 502/504/413 answers.
- ``headers``: the pure header rules (forwarding, hop-by-hop, close codes, security headers).
- ``server``: runs the app under uvicorn (the ``web`` command).

In production nginx does the same job: ``deploy/nginx/mytrader.conf``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

STATIC_DIR: Final = Path(__file__).parent / "static"
