"""`apply` of a plan file whose actions this config could not have produced (issue 10 defect 13):
refused with every problem named, before anything runs on a host."""

from __future__ import annotations

import dataclasses

import pytest

from core.errors import InvalidPlan
from core.model import Action, ActionKind, ReplicaId
from tests.engine.test_engine import desired, until

W = [ReplicaId("web", i) for i in range(3)]


def edited(plan, *actions, target=None):
    """The plan with its actions (and target) replaced and its basis untouched, as a hand edit leaves it."""
    return dataclasses.replace(plan, actions=actions, target=target or plan.target)


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda h: Action(ActionKind.MOVE, W[1], h, h), "moves web/1 from {h} to itself"),
        (lambda h: Action(ActionKind.START, ReplicaId("db", 7), to_host=h), "db/7 is beyond replicas = 1 of db"),
        (lambda h: Action(ActionKind.MOVE, W[1], h, "zz"), "host zz is not in small.toml"),
        (lambda h: Action(ActionKind.START, ReplicaId("cache", 0), to_host=h), "service cache is not in small.toml"),
        (lambda h: Action(ActionKind.STOP, W[1], from_host="zz" if h != "zz" else "a"), "host zz is not in"),
        (lambda h: Action(ActionKind.START, W[1], to_host=h), "web/1 already runs on"),
        (lambda h: Action(ActionKind.STOP, W[1], to_host=h), "a stop names a `from` host and no `to`"),
    ],
)
async def test_an_edited_plan_is_refused_before_anything_runs(engine_of, small_config, action, message):
    engine, fleet = await engine_of(small_config)
    await engine.approve(await engine.plan())
    await until(lambda: set(fleet.running()) == desired(small_config))
    starts, stops = list(fleet.starts), list(fleet.stops)
    plan = await engine.plan()  # nothing to do: its basis is today's fleet
    host = fleet.running()[W[1]][0]
    bad = edited(plan, action(host))
    with pytest.raises(InvalidPlan) as err:
        await engine.apply_file_plan(bad, force=True, source="edited.json")
    assert message.format(h=host) in str(err.value) and "edited.json" in str(err.value)
    assert (fleet.starts, fleet.stops) == (starts, stops)


async def test_every_problem_is_listed_and_a_sound_file_plan_applies(engine_of, small_config):
    engine, fleet = await engine_of(small_config)
    plan = await engine.plan()
    engine.check_plan(plan, "plan.json")  # what the engine made passes
    twice = edited(plan, *plan.actions, plan.actions[0])
    with pytest.raises(InvalidPlan, match="already has action 1; one action per replica"):
        engine.check_plan(twice, "plan.json")
    other = dataclasses.replace(plan, cluster="elsewhere")
    with pytest.raises(InvalidPlan, match="a plan for cluster 'elsewhere', not 't'"):
        engine.check_plan(other, "plan.json")
    progress = await engine.apply_file_plan(plan, source="plan.json")
    assert not progress.failed and set(fleet.running()) == desired(small_config)
