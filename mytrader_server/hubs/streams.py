"""``StreamPrices``: a server-to-client stream of one symbol's ticks, driven by the fan-out.

A stream is not a task: the fan-out calls ``on_tick`` with the tick's pre-encoded JSON and the
stream pushes a StreamItem into its connection's queue. After ``count`` items (when given) or a
CancelInvocation it pushes the final Completion and unregisters itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from mytrader_server.hubs.protocol import RS, encode_completion

if TYPE_CHECKING:
    from mytrader_server.hubs.connection import HubConnection


class PriceStream:
    def __init__(
        self,
        conn: HubConnection,
        invocation_id: str,
        symbol: str,
        count: int | None,
        on_done: Callable[[PriceStream], None],
    ) -> None:
        self.conn = conn
        self.invocation_id = invocation_id
        self.symbol = symbol
        self.remaining = count
        self._on_done = on_done
        self._prefix = f'{{"type":2,"invocationId":{json.dumps(invocation_id)},"item":'
        self.done = False

    def on_tick(self, payload_json: str) -> None:
        if self.done:
            return
        self.conn.push(f"{self._prefix}{payload_json}}}{RS}")
        if self.remaining is not None:
            self.remaining -= 1
            if self.remaining <= 0:
                self.complete()

    def complete(self) -> None:
        """End the stream normally (count reached or cancelled): a Completion without result."""
        if self.done:
            return
        self.stop()
        self.conn.push(encode_completion(self.invocation_id))

    def stop(self) -> None:
        """Unregister without sending anything (the connection is going away)."""
        if self.done:
            return
        self.done = True
        self.conn.streams.pop(self.invocation_id, None)
        self._on_done(self)
