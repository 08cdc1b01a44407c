"""The fan-out under the engine's bus and the API's hub: a follower that stops reading loses its oldest
events and never blocks the writer or the other followers."""

from __future__ import annotations

from core.engine.events import Event, EventKind
from core.engine.fanout import Fanout


def events(n: int) -> list[Event]:
    return [Event(float(i), EventKind.HOST_UP, f"event {i}") for i in range(n)]


async def test_a_stalled_follower_keeps_the_newest_events_and_the_others_get_all() -> None:
    fanout = Fanout(queue_size=3)
    stalled, reader = fanout.subscribe(), fanout.subscribe()
    seen = []
    for event in events(10):
        fanout.deliver((event,))  # never awaits: a full queue cannot block the writer
        seen.append(reader.get_nowait())
    assert [e.message for e in seen] == [f"event {i}" for i in range(10)]
    assert [stalled.get_nowait().message for _ in range(3)] == ["event 7", "event 8", "event 9"]


async def test_an_unsubscribed_follower_gets_nothing_more() -> None:
    fanout = Fanout()
    queue = fanout.subscribe()
    fanout.deliver(events(2))
    fanout.unsubscribe(queue)
    fanout.unsubscribe(queue)  # twice: harmless, as when a stream ends and its client has gone too
    fanout.deliver(events(5))
    assert queue.qsize() == 2
