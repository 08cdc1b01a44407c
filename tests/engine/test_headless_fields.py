"""Issue 12, item 14: headless lines a log pipeline can filter on without parsing the message."""

from __future__ import annotations

import json

from console.commands.status import unhealthy
from core.engine.events import EventKind
from core.engine.planner import plan_id
from tests.engine.test_engine import until


async def test_action_events_carry_plan_kind_service_replica_from_and_to(engine_of, small_config):
    engine, _fleet = await engine_of(small_config)
    queue = engine.subscribe()
    await until(lambda: engine.snapshot().pending is not None)
    plan = engine.snapshot().pending
    await engine.approve(plan)
    lines = []
    while not queue.empty():
        event = queue.get_nowait()
        if event.kind in (EventKind.ACTION_STARTED, EventKind.ACTION_DONE):
            lines.append(json.loads(json.dumps(event.as_json())))  # as the daemon writes them
    assert len(lines) == 2 * len(plan.actions)
    by_replica = {(line["event"], line["replica"]): line for line in lines}
    for action in plan.actions:
        line = by_replica[("action.done", str(action.replica))]
        assert line["plan"] == plan_id(plan)
        assert line["kind"] == "start"
        assert line["service"] == action.replica.service
        assert line["from"] is None and line["to"] == action.to_host
        assert line["host"] == action.to_host


def test_status_says_why_it_exits_non_zero():
    doc = {
        "hosts": [{"name": "a", "state": "up"}, {"name": "b", "state": "down"}],
        "services": [{"name": "web", "running": 1, "desired": 3}, {"name": "db", "running": 1, "desired": 1}],
    }
    assert unhealthy(doc) == "1 host not up: b (down); 1 service short of replicas: web 1/3"
    doc["hosts"][1]["state"] = "up"
    doc["services"][0]["running"] = 3
    assert unhealthy(doc) == ""
