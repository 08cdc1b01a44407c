"""`GET /v1/events?follow=1`: server-sent events, every event the headless log prints, as it happens."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from core.api.bridge import Hub
from core.engine.events import EventKind

KEEPALIVE = 15.0  # seconds between SSE comments, so a proxy or a dead client is noticed


async def follow(hub: Hub, request: web.Request, followers: set[asyncio.Task[Any]]) -> web.StreamResponse:
    """Stream the engine's events (as the bridge hands them to `hub`) to one client until it leaves; its task is
    in `followers` meanwhile (the server cancels them when it closes)."""
    queue = hub.subscribe()
    task = asyncio.current_task()
    assert task is not None
    followers.add(task)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    try:
        await response.prepare(request)
        await response.write(b": following loadmaster events\n\n")
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), KEEPALIVE)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if event.kind is EventKind.STATE_UPDATED:
                continue
            data = json.dumps(event.as_json(), separators=(",", ":"))
            await response.write(f"event: {event.kind.value}\ndata: {data}\n\n".encode())
    except (ConnectionError, asyncio.CancelledError):
        return response  # the client left, or the server is closing
    finally:
        hub.unsubscribe(queue)
        followers.discard(task)
