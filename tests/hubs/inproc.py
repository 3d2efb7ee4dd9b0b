"""A minimal SignalR JSON client over starlette's in-process TestClient WebSocket."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession

RS = "\x1e"


class Hub:
    """Reads records (several per frame are split), skipping keep-alive pings unless asked."""

    def __init__(self, ws: WebSocketTestSession) -> None:
        self.ws = ws
        self.pending: list[dict[str, Any]] = []

    def send(self, obj: dict[str, Any]) -> None:
        self.ws.send_text(json.dumps(obj) + RS)

    def handshake(self, version: int = 1) -> None:
        self.ws.send_text(json.dumps({"protocol": "json", "version": version}) + RS)
        assert self.next(pings=True) == {}

    def next(self, pings: bool = False) -> dict[str, Any]:
        while True:
            while not self.pending:
                text = self.ws.receive_text()
                assert text.endswith(RS), text
                self.pending = [json.loads(r) for r in text.split(RS)[:-1]]
            record = self.pending.pop(0)
            if pings or record.get("type") != 6:
                return record

    def invoke(self, target: str, *args: Any, invocation_id: str = "1") -> dict[str, Any]:
        """Invoke and return the Completion, keeping pushes that arrive before it."""
        self.send(
            {"type": 1, "invocationId": invocation_id, "target": target, "arguments": list(args)}
        )
        skipped = []
        while True:
            record = self.next()
            if record.get("type") == 3 and record.get("invocationId") == invocation_id:
                self.pending = skipped + self.pending
                return record
            skipped.append(record)


def connect(
    client: TestClient, hub: str, headers: dict[str, str] | None = None, query: str = ""
) -> tuple[Hub, Any]:
    """Negotiate v1 and open the socket; returns the Hub and the context manager to exit."""
    r = client.post(f"/hubs/{hub}/negotiate?negotiateVersion=1{query}", headers=headers or {})
    assert r.status_code == 200, r.text
    cm = client.websocket_connect(
        f"/hubs/{hub}?id={r.json()['connectionToken']}{query}", headers=headers or {}
    )
    ws = cm.__enter__()
    hub_client = Hub(ws)
    hub_client.handshake()
    return hub_client, cm
