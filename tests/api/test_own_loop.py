"""The API serves from its own thread and event loop: a GET is answered while the engine's loop is busy."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from typing import Any

import pytest

from core.api import server

from .conftest import Served, until

BLOCK = 1.5  # seconds one step of the engine's tick holds its loop here
READS = ("/v1/services", "/v1/services/web", "/v1/hosts", "/v1/hosts/a", "/v1/failover", "/v1/events",
         "/v1/controller")  # fmt: skip


def _get(api: Served, path: str) -> tuple[int, float, float]:
    """A GET from outside the engine's loop (a thread, plain urllib): status, seconds taken, when it ended."""
    request = urllib.request.Request(api.url + path, headers=api.headers(api.ro))
    t0 = time.perf_counter()
    with urllib.request.urlopen(request, timeout=10) as resp:
        resp.read()
        return resp.status, time.perf_counter() - t0, time.perf_counter()


async def test_a_get_is_answered_while_the_engine_loop_is_blocked(api: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    for path in READS:  # the list documents are rendered for the current state first
        status, _, _ = await api.call("GET", path)
        assert status == 200
    planner = api.engine._planner
    real = planner.refresh_failover
    blocking, ended = threading.Event(), [0.0]

    def slow(view: Any) -> None:  # a step of the tick that holds the engine's loop (as a slow solve set-up would)
        if not blocking.is_set():
            blocking.set()
            time.sleep(BLOCK)
            ended[0] = time.perf_counter()
        real(view)

    monkeypatch.setattr(planner, "refresh_failover", slow)
    got: list[tuple[str, int, float, float]] = []

    def reads() -> None:
        assert blocking.wait(10)
        got.extend((path, *_get(api, path)) for path in READS)

    client = threading.Thread(target=reads)
    client.start()
    await until(lambda: ended[0] > 0)  # the next tick blocks the loop for BLOCK
    await asyncio.to_thread(client.join, 10)
    assert [g[:2] for g in got] == [(path, 200) for path in READS]
    slowest = max(got, key=lambda g: g[2])
    # on the engine's loop each GET waited for the block to end: the first one took about BLOCK
    assert slowest[2] < BLOCK / 3, f"GET {slowest[0]} took {slowest[2] * 1000:.0f} ms"
    assert all(at < ended[0] for *_, at in got), "answered only after the engine's loop was free again"


@pytest.mark.parametrize(("block", "first"), [(1.0, 0.2), (0.2, 5.0)])
async def test_a_request_during_a_tick_lets_the_tick_go_first(
    api: Served, monkeypatch: pytest.MonkeyPatch, block: float, first: float
) -> None:
    """Answered after the tick ends, or after `first` seconds if the tick is longer: never in between."""
    monkeypatch.setattr(server, "ENGINE_FIRST", first)
    status, _, _ = await api.call("GET", "/v1/services")
    assert status == 200
    planner = api.engine._planner
    real = planner.refresh_failover
    blocking, ended = threading.Event(), [0.0]

    def slow(view: Any) -> None:
        if not blocking.is_set():
            blocking.set()
            time.sleep(block)
            ended[0] = time.perf_counter()
        real(view)

    monkeypatch.setattr(planner, "refresh_failover", slow)
    got: list[tuple[int, float, float]] = []

    def read() -> None:
        assert blocking.wait(10)
        got.append(_get(api, "/v1/services"))

    client = threading.Thread(target=read)
    client.start()
    await until(lambda: ended[0] > 0)
    await asyncio.to_thread(client.join, 10)
    [(status, took, at)] = got
    assert status == 200
    if block > first:  # the tick is long: the request waited `first`, then was answered during the tick
        assert first * 0.9 <= took < block * 0.8, f"took {took * 1000:.0f} ms"
        assert at < ended[0]
    else:  # the tick ends within `first`: the request went after it
        assert at >= ended[0], "answered during the tick"
        assert took < first


async def test_a_write_answered_is_read_back_while_the_engine_loop_is_blocked(api: Served) -> None:
    loop = asyncio.get_running_loop()
    blocking = threading.Event()

    def block() -> None:  # the engine's loop is busy right after the write
        blocking.set()
        time.sleep(BLOCK)

    def write_then_read() -> list[tuple[int, Any, float]]:
        out = [_call(api, "POST", "/v1/services/web/scale", {"replicas": 5})]
        loop.call_soon_threadsafe(block)
        assert blocking.wait(10)
        return out + [_call(api, "GET", path) for path in ("/v1/services/web", "/v1/events")]

    (status, written, _), (_, one, took), (_, events, took2) = await asyncio.to_thread(write_then_read)
    assert status == 200, written
    # the write published the state it made before it answered: a read needs nothing more from the engine
    assert one["replicas"] == 5 and one["revision"] == written["revision"]
    assert "scale web to 5" in events["events"][-1]["message"]
    assert max(took, took2) < BLOCK / 3


def _call(api: Served, method: str, path: str, body: Any = None) -> tuple[int, Any, float]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(api.url + path, data=data, method=method,
                                     headers=api.headers(api.rw, **{"Content-Type": "application/json"}))  # fmt: skip
    t0 = time.perf_counter()
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.status, json.loads(resp.read()), time.perf_counter() - t0
