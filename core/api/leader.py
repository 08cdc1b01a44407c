"""The API's controller endpoints: who acts (`GET /v1/controller`: `leader`, or `standby (leader: <id>)` in
clustered mode) and `POST /v1/leader/step-down` (clustered mode: this daemon gives up the lead)."""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from core.api.bridge import Bridge
from core.api.http import ApiError, json_response
from core.engine.api import EngineAPI, Snapshot
from core.errors import LoadmasterError


class Leading(EngineAPI, Protocol):
    async def step_down(self) -> str: ...


class Snapshots(Protocol):
    def snapshot(self) -> Snapshot: ...


def controller_document(engine: Snapshots) -> dict[str, Any]:
    """`engine`: the engine, or the state it published (core.api.bridge)."""
    snap = engine.snapshot()
    c = snap.controller
    if c is None:
        return {"role": "read-only", "words": "read-only"}
    if c.role.value == "acting":
        words = "leader" if c.leader is not None else "acting"
    elif c.leader is not None:
        words = f"standby (leader: {c.leader})"
    elif c.holder is not None:
        words = f"standby (holder: {c.holder.holder})"
    else:
        words = c.role.value
    return {
        "id": c.me, "role": c.role.value, "words": words, "leader": c.leader,
        "epoch": c.token.epoch if c.token is not None else (c.holder.epoch if c.holder is not None else None),
        "read_only": snap.read_only,
    }  # fmt: skip


class LeaderRoutes:
    engine: Leading  # on the engine's loop only
    bridge: Bridge

    async def get_controller(self, request: web.Request) -> web.Response:
        return json_response(controller_document(await self.bridge.fresh()))

    async def step_down(self, request: web.Request) -> web.Response:
        try:
            said = await self.bridge.call(self.engine.step_down)
        except LoadmasterError as exc:
            raise ApiError(409, str(exc)) from None
        return json_response({"stepped_down": True, "message": said, **controller_document(self.bridge.state)})
