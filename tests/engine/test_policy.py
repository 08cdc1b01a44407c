"""The auto-apply policy and the drift signature, without an engine around them."""

import dataclasses

from core.engine.basis import generation
from core.engine.journal import Journal
from core.engine.ledger import Ledger
from core.engine.observer import Observer
from core.engine.policy import AutoApply, drift
from core.model import Action, ActionKind, HostState, Placement, Plan, ReplicaId, SolverStatus
from tests.fake_fleet import FakeFleet

UP = {h: HostState.UP for h in "abc"}


def plan_of(*actions):
    return Plan("t", "b", 0.0, Placement(), Placement(), actions, SolverStatus.OPTIMAL, 0, 0, 0.0)


def test_asking_the_policy_changes_nothing_only_recording_starts_the_cooldown(small_config):
    config = dataclasses.replace(small_config, policy=dataclasses.replace(small_config.policy, cooldown=60.0))
    move = plan_of(Action(ActionKind.MOVE, ReplicaId("web", 0), "a", "b"))
    auto = AutoApply()
    assert auto.verdict(config, move, UP, now=1000.0) is None and auto.verdict(config, move, UP, now=1000.0) is None
    auto.record_auto(move, UP, now=1000.0)
    assert auto.verdict(config, move, UP, now=1030.0) is not None  # within the cooldown
    assert auto.verdict(config, move, UP, now=1060.0) is None
    starts = plan_of(Action(ActionKind.START, ReplicaId("web", 1), to_host="c"))
    assert auto.verdict(config, starts, UP, now=1030.0) is None  # starting what is missing is always allowed
    off_a_lost_host = {**UP, "a": HostState.DOWN}
    assert auto.verdict(config, move, off_a_lost_host, now=1030.0) is None  # moving off a lost host disturbs nothing


def test_too_many_disruptive_steps_wait_for_a_person(small_config):
    config = dataclasses.replace(small_config, policy=dataclasses.replace(small_config.policy, max_moves_per_cycle=1))
    two = plan_of(*(Action(ActionKind.MOVE, ReplicaId("web", i), "a", "b") for i in range(2)))
    assert AutoApply().verdict(config, two, UP, now=0.0) is not None


def test_one_drift_is_planned_once_until_forgotten():
    auto = AutoApply()
    assert not auto.already_planned("missing:web/0")
    auto.planned("missing:web/0")
    assert auto.already_planned("missing:web/0") and not auto.already_planned("missing:web/1")
    auto.forget()
    assert not auto.already_planned("missing:web/0")


async def test_drift_names_what_is_missing_extra_and_outdated(small_config, tmp_path):
    fleet = FakeFleet(small_config)
    web, db = small_config.service("web"), small_config.service("db")
    journal = Journal(tmp_path / "j.db")
    journal.trust_epoch(0, "-")  # what the fake fleet starts without a token is this cluster's
    observer = Observer(small_config, fleet, lambda: 0.0, lambda *a, **k: None, Ledger(journal))
    for i, host in enumerate("abc"):
        await fleet.start_replica(host, web, i, generation(web))
    await fleet.start_replica("a", db, 0, generation(db))
    observer.observe(small_config, frozenset())
    assert drift(observer.view) == ""
    await fleet.start_replica("b", web, 7, generation(web))  # beyond the declared 3
    await fleet.start_replica("c", db, 0, "old")  # a second copy, from an older definition
    await fleet.stop_replica("a", db.replica_ids()[0])
    fleet.states["a"] = HostState.DOWN  # web/0 runs on a lost host
    observer.observe(small_config, frozenset())
    assert drift(observer.view) == "missing:web/0|extra:web/7|outdated:db/0|hosts:b,c"
