"""Fan-out routing, property-based: whatever the users and events, nothing crosses users (S1)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mytrader_server.auth.tokens import Principal
from mytrader_server.events import Tick, UserEvent
from mytrader_server.hubs import fanout as fanout_module
from mytrader_server.hubs.connection import HubConnection, HubCounters
from mytrader_server.hubs.fanout import HUB_FOR_TARGET, FanOut
from mytrader_server.hubs.protocol import RS, ConnectionState

user_ids = st.text(alphabet="abcdef0123456789-", min_size=1, max_size=12)
hubs = st.sampled_from(["trading", "portfolio", "market-data"])
targets = st.sampled_from(["OrderUpdate", "PortfolioUpdate"])


async def _noop_send(message: object) -> None:
    raise AssertionError("the writer is not running in this test")


def _connection(hub: str, user: str, n: int) -> HubConnection:
    conn = HubConnection(
        hub=hub,
        connection_id=f"c{n}",
        principal=Principal(user, user, False),
        send=_noop_send,
        max_queue=10_000,
        max_record_chars=32_768,
        counts=HubCounters(),
    )
    conn.protocol.state = ConnectionState.OPEN
    return conn


def _queued(conn: HubConnection) -> list[dict[str, object]]:
    return [json.loads(r.removesuffix(RS)) for r in conn._queue]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(hubs, user_ids), min_size=1, max_size=12),
    st.lists(st.tuples(user_ids, targets), max_size=30),
)
def test_user_events_reach_exactly_their_owner(
    connections: list[tuple[str, str]], events: list[tuple[str, str]]
) -> None:
    async def run() -> None:
        fanout = FanOut()
        conns = [_connection(hub, user, i) for i, (hub, user) in enumerate(connections)]
        for conn in conns:
            fanout.add_user(conn)
        published = []
        for user, target in events:
            event = UserEvent(user, target, {"owner": user})  # type: ignore[arg-type]
            fanout.on_event(event)
            published.append(event)
        for conn in conns:
            got = _queued(conn)
            expected = [
                e
                for e in published
                if e.user_id == conn.user_id
                and conn.hub != "market-data"
                and HUB_FOR_TARGET[e.target] == conn.hub
            ]
            assert [(r["target"], r["arguments"]) for r in got] == [
                (e.target, [e.payload]) for e in expected
            ]

    asyncio.run(run())


def test_ticks_reach_subscribers_only_and_are_encoded_once() -> None:
    async def run() -> None:
        fanout = FanOut()
        a, b, c = (_connection("market-data", "u", i) for i in range(3))
        fanout.subscribe(a, ["AAPL"])
        fanout.subscribe(b, ["AAPL", "MSFT"])
        fanout.subscribe(c, ["MSFT"])
        fanout.on_event(Tick("AAPL", "1.00", "0.99", "1.01", 5, 1, "2026-01-01T00:00:00Z", 1))
        assert list(a._queue) == list(b._queue)
        assert a._queue[0] is b._queue[0]  # the very same string object: encoded once
        assert not c._queue
        fanout.remove(b)
        fanout.on_event(Tick("AAPL", "1.01", "1.00", "1.02", 6, 2, "2026-01-01T00:00:01Z", 2))
        assert len(a._queue) == 2
        assert len(b._queue) == 1

    asyncio.run(run())


def test_text_frame_is_what_websockets_would_send() -> None:
    """The fan-out frames each tick once; the bytes must equal websockets' own server frame."""
    from websockets.frames import Frame, Opcode
    from websockets.streams import StreamReader

    from mytrader_server.hubs.connection import text_frame

    for size in (0, 1, 125, 126, 65_535, 65_536, 70_000):
        payload = "x" * size
        ours = text_frame(payload)
        assert ours == Frame(Opcode.TEXT, payload.encode()).serialize(mask=False)
        reader = StreamReader()
        reader.feed_data(ours)
        parser = Frame.parse(reader.read_exact, mask=False)
        with pytest.raises(StopIteration) as done:
            next(parser)
        assert done.value.value.data == payload.encode()


def _tick(symbol: str, seq: int) -> Tick:
    return Tick(symbol, f"{seq}.00", "0.99", "1.01", seq, seq, "2026-01-01T00:00:00Z", seq)


def _seqs(conn: HubConnection) -> list[tuple[str, int]]:
    return [
        (str(r["arguments"][0]["symbol"]), int(r["arguments"][0]["volume"]))  # type: ignore[index]
        for r in _queued(conn)
    ]


def _aapl_subscribers(
    mp: pytest.MonkeyPatch, n: int, max_pending: int | None = None
) -> tuple[FanOut, list[HubConnection]]:
    """A fan-out whose every slice writes one connection, with ``n`` AAPL subscribers."""
    mp.setattr(fanout_module, "SLICE_S", 0.0)
    mp.setattr(fanout_module, "CLOCK_EVERY", 1)
    if max_pending is not None:
        mp.setattr(fanout_module, "MAX_PENDING_WRITES", max_pending)
    fanout = FanOut()
    conns = [_connection("market-data", "u", i) for i in range(n)]
    for c in conns:
        fanout.subscribe(c, ["AAPL"])
    return fanout, conns


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["AAPL", "MSFT"]), st.integers(0, 3), st.integers(0, 6)),
        min_size=1,
        max_size=25,
    ),
    st.integers(1, 7),
)
def test_sliced_fan_out_delivers_every_tick_in_order(
    steps: list[tuple[str, int, int]], clock_every: int
) -> None:
    """With a zero time slice every fan-out yields the loop after each few connections; ticks
    published meanwhile, and connections subscribing or leaving between ticks (which reorders
    the subscriber set), still give every connection that stays exactly its symbols' ticks, in
    order. One that leaves gets, in order, some of the ticks published while it was there (a
    fan-out still under way skips it once it has left) and none published while it was not."""

    async def run() -> None:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(fanout_module, "SLICE_S", 0.0)
            mp.setattr(fanout_module, "CLOCK_EVERY", clock_every)
            fanout = FanOut()
            conns = [_connection("market-data", "u", i) for i in range(30)]
            expected: dict[HubConnection, list[tuple[str, int]]] = {c: [] for c in conns}
            active: set[HubConnection] = set()
            left: set[HubConnection] = set()
            for i, c in enumerate(conns):
                if i % 3 != 2:  # a third join later
                    fanout.subscribe(c, ["AAPL"] if i % 2 else ["AAPL", "MSFT"])
                    active.add(c)
            for seq, (symbol, yields, churn) in enumerate(steps, start=1):
                late = conns[(seq * 7) % len(conns)]
                if churn == 0 and late in active:  # leaves: gets nothing from here on
                    fanout.remove(late)
                    active.discard(late)
                    left.add(late)
                elif churn == 1 and late not in active:
                    fanout.subscribe(late, ["MSFT", "AAPL"])
                    active.add(late)
                fanout.on_event(_tick(symbol, seq))
                for c in active:
                    if symbol in c.symbols:
                        expected[c].append((symbol, seq))
                for _ in range(yields):  # let some slices run before the next tick, or none
                    await asyncio.sleep(0)
            for _ in range(10_000):
                if not fanout._pending:
                    break
                await asyncio.sleep(0)
            assert not fanout._pending
            assert fanout._resume_handle is None
            for c in conns:
                got = _seqs(c)
                if c in left:
                    assert got == [t for t in expected[c] if t in got]  # in order, a subset
                else:
                    assert got == expected[c]
            assert fanout.slices > 0

    asyncio.run(run())


def test_a_long_fan_out_gives_the_loop_back() -> None:
    """A callback scheduled before a 3000-connection fan-out starts runs before it ends: the
    loop is never held for the whole walk."""

    async def run() -> None:
        fanout = FanOut()
        conns = [_connection("market-data", "u", i) for i in range(3000)]
        for c in conns:
            fanout.subscribe(c, ["AAPL"])
        seen_at_timer: list[int] = []
        loop = asyncio.get_running_loop()
        loop.call_soon(lambda: seen_at_timer.append(sum(1 for c in conns if c._queue)))
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(fanout_module, "SLICE_S", 0.0001)  # ~1 ms of writes here
            fanout.on_event(_tick("AAPL", 1))
            await asyncio.sleep(0)
            while fanout._pending:
                await asyncio.sleep(0)
        assert seen_at_timer
        assert seen_at_timer[0] < len(conns)
        assert all(len(c._queue) == 1 for c in conns)

    asyncio.run(run())


def test_a_backlog_past_the_bound_makes_the_publisher_wait() -> None:
    """Ticks faster than the sockets: once more than MAX_PENDING_WRITES writes are pending from
    earlier loop iterations, publishing a tick writes every pending fan-out before it returns,
    in order, so the backlog stays bounded instead of growing with every tick."""

    async def run() -> None:
        with pytest.MonkeyPatch.context() as mp:
            fanout, conns = _aapl_subscribers(mp, 10, max_pending=25)
            most = 0
            for seq in range(1, 41):  # a tick every iteration; a slice writes one connection
                fanout.on_event(_tick("AAPL", seq))
                most = max(most, fanout.pending_writes)
                await asyncio.sleep(0)
            assert most <= 25 + len(conns)  # the bound, plus the tick just published
            while fanout._pending:
                await asyncio.sleep(0)
            assert fanout.pending_writes == 0
            for c in conns:
                assert _seqs(c) == [("AAPL", seq) for seq in range(1, 41)]

    asyncio.run(run())


class _SlowClock:
    """``time`` for the fan-out, with a ``perf_counter`` that advances 1 ms per reading."""

    def __init__(self) -> None:
        self.now = 0.0
        self.monotonic = time.monotonic

    def perf_counter(self) -> float:
        self.now += 0.001
        return self.now


def test_the_slice_is_per_loop_iteration_not_per_tick() -> None:
    """A feed step publishes every symbol in one loop iteration: once the iteration's slice is
    used up, the other symbols' fan-outs wait for the next iteration instead of each taking a
    slice of its own."""

    async def run() -> None:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(fanout_module, "time", _SlowClock())  # each look at it takes 1 ms
            fanout = FanOut()
            symbols = ["AAPL", "MSFT", "GOOG", "AMZN", "TSLA"]
            by_symbol = {}
            for n, symbol in enumerate(symbols):
                by_symbol[symbol] = [_connection("market-data", "u", 10 * n + i) for i in range(3)]
                for c in by_symbol[symbol]:
                    fanout.subscribe(c, [symbol])
            for seq, symbol in enumerate(symbols, start=1):  # one iteration: no await
                fanout.on_event(_tick(symbol, seq))
            written = [s for s in symbols if all(c._queue for c in by_symbol[s])]
            assert written  # within the iteration's 4 ms slice
            assert written == symbols[: len(written)] != symbols  # then the rest waits
            while fanout._pending:
                await asyncio.sleep(0)
            for seq, symbol in enumerate(symbols, start=1):
                for c in by_symbol[symbol]:
                    assert _seqs(c) == [(symbol, seq)]

    asyncio.run(run())


def test_one_resumption_at_a_time_even_after_the_backlog_bound() -> None:
    """When the bound makes the publisher write everything, the resumption already scheduled
    is cancelled: there is never more than one resumption due, so each loop iteration holds at
    most one slice."""

    async def run() -> None:
        with pytest.MonkeyPatch.context() as mp:
            fanout, conns = _aapl_subscribers(mp, 5, max_pending=12)
            scheduled: list[asyncio.Handle] = []  # resumptions due to run, oldest first
            most = 0
            later, resume = fanout._resume_later, fanout._resume

            def spied_later() -> None:
                nonlocal most
                later()
                handle = fanout._resume_handle
                if handle is not None and handle not in scheduled:
                    scheduled.append(handle)
                scheduled[:] = [h for h in scheduled if not h.cancelled()]
                most = max(most, len(scheduled))

            def spied_resume() -> None:
                scheduled[:] = [h for h in scheduled if not h.cancelled()]
                scheduled.pop(0)  # the one running now
                resume()

            mp.setattr(fanout, "_resume_later", spied_later)
            mp.setattr(fanout, "_resume", spied_resume)
            for seq in range(1, 61, 2):  # two ticks every iteration, faster than a slice drains
                fanout.on_event(_tick("AAPL", seq))
                fanout.on_event(_tick("AAPL", seq + 1))
                await asyncio.sleep(0)
            while fanout._pending:
                await asyncio.sleep(0)
            assert most == 1
            for c in conns:
                assert _seqs(c) == [("AAPL", seq) for seq in range(1, 61)]

    asyncio.run(run())


def test_a_connection_that_left_before_its_turn_is_skipped() -> None:
    async def run() -> None:
        with pytest.MonkeyPatch.context() as mp:
            fanout, conns = _aapl_subscribers(mp, 4)
            fanout.on_event(_tick("AAPL", 1))
            waiting = [c for c in conns if not c._queue]
            assert waiting  # the slice ended after the first connection
            fanout.remove(waiting[0])
            fanout.unsubscribe(waiting[1], ["AAPL"])
            while fanout._pending:
                await asyncio.sleep(0)
            assert not waiting[0]._queue
            assert not waiting[1]._queue
            assert all(_seqs(c) == [("AAPL", 1)] for c in conns if c not in waiting[:2])

    asyncio.run(run())
