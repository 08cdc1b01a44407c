"""The list documents are rendered off the event loop: a slow render holds neither other requests nor the engine,
and a request gets a document at most one engine change old."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from core.api import views
from tests.api.conftest import Served

RENDER = 0.4  # seconds a render takes here


@pytest.fixture
def slow_render(monkeypatch: pytest.MonkeyPatch) -> None:
    real = views.services

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(RENDER)  # as a render of 1,000 hosts on a busy machine, but releasing the GIL (see the test)
        return real(*args, **kwargs)

    monkeypatch.setattr(views, "services", slow)


async def timed_get(api: Served, path: str) -> tuple[float, Any]:
    t0 = time.perf_counter()
    status, body, _ = await api.call("GET", path)
    assert status == 200, body
    return time.perf_counter() - t0, body


async def test_a_slow_render_does_not_hold_the_event_loop(api: Served, slow_render: None) -> None:
    loop = asyncio.get_running_loop()
    lateness: list[float] = []

    async def heartbeat() -> None:
        while True:
            t0 = loop.time()
            await asyncio.sleep(0.01)
            lateness.append(loop.time() - t0 - 0.01)

    beat = asyncio.create_task(heartbeat())
    try:
        took, body = await timed_get(api, "/v1/services")
    finally:
        beat.cancel()
    assert took >= RENDER and [s["name"] for s in body["services"]] == ["web", "db"]
    # on the loop, the render held it (and every request, and the engine's tick) for the whole RENDER
    assert max(lateness) < RENDER / 2, f"the loop stalled {max(lateness) * 1000:.0f} ms"


async def test_a_document_is_at_most_one_engine_change_old(api: Served, slow_render: None) -> None:
    bridge = api.server.api.bridge
    await bridge.close()  # the engine's state is published no more by itself: here the test publishes it
    await timed_get(api, "/v1/services")  # rendered for the current state

    async def change(n: int = 1) -> None:
        for _ in range(n):
            bridge.publish()

    await change()
    took, _ = await timed_get(api, "/v1/services")
    assert took < RENDER / 2  # one change behind: the previous document, while the new one renders
    await asyncio.sleep(RENDER + 0.2)
    took, _ = await timed_get(api, "/v1/services")
    assert took < RENDER / 2  # the render that was under way is current now
    await change(2)
    took, _ = await timed_get(api, "/v1/services")
    assert took >= RENDER  # two changes behind: not served, the request waits for a render of now


async def test_a_write_is_seen_at_once(api: Served, slow_render: None) -> None:
    await timed_get(api, "/v1/services")
    status, body, _ = await api.call("POST", "/v1/services/web/scale", json={"replicas": 5})
    assert status == 200, body
    _, listed = await timed_get(api, "/v1/services")  # a new file revision: never the document of the old one
    assert listed["revision"] == body["revision"]
    assert next(s for s in listed["services"] if s["name"] == "web")["replicas"] == 5
