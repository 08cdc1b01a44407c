"""Failover plans made ahead, refreshed when the fleet moves: only the plans whose lost hosts or targets
changed are made again (issue 13 build 3), and every plan, kept or made, still holds."""

from __future__ import annotations

import dataclasses

from core.model import FailoverPlan, HostState, Placement, Resources
from core.optimizer import PlacementProblem, failover_for, refresh_failover, solve
from tests.optimizer.checks import host, service

ZONES = ("z1", "z2", "z3")


def fleet() -> PlacementProblem:
    hosts = tuple(host(f"{z}-{i}", 4, 16, zone=z) for z in ZONES for i in range(4))
    services = (
        service("web", 9, 1, spread_over="zone", max_per_host=2),
        service("db", 3, 1.5, max_per_host=1, avoid=("batch",)),
        service("batch", 8, 0.5),
    )
    return PlacementProblem(hosts, services)


def holds(problem: PlacementProblem, placement: Placement, plan: FailoverPlan) -> list[str]:
    """What is wrong with `plan` if its hosts were lost from `placement` now (empty: it holds)."""
    lost = set(plan.lost_hosts)
    displaced = {r for r, h in placement.assignments.items() if h in lost}
    wrong = [] if set(plan.moves) | set(plan.unplaced) == displaced else [f"{plan.target}: not what runs there"]
    after = {r: h for r, h in placement.assignments.items() if h not in lost} | dict(plan.moves)
    load: dict[str, Resources] = {}
    for replica, name in after.items():
        load[name] = load.get(name, Resources()) + problem.service(replica.service).resources
    for name, used in load.items():
        spec = problem.host(name)
        if name in lost or not used.fits(spec.capacity):
            wrong.append(f"{plan.target}: {name} lost or over capacity")
    for replica, name in plan.moves.items():
        if problem.host(name).state is not HostState.UP:
            wrong.append(f"{plan.target}: {replica} to {name}, which takes nothing new")
    return wrong


def fresh(problem: PlacementProblem, placement: Placement, old: FailoverPlan) -> FailoverPlan:
    return failover_for(problem, placement, old.lost_hosts, scope=old.scope, target=old.target)


def test_nothing_changed_nothing_made_again() -> None:
    problem = fleet()
    placement = solve(problem, time_limit=1.0, workers=1).placement
    book = refresh_failover(None, problem, placement, labels=("zone",))
    assert book.remade == len(book.plans) == 12 + 3
    again = refresh_failover(book, problem, placement, labels=("zone",))
    assert again.remade == 0 and again.plans == book.plans


def test_a_move_redoes_the_plans_of_the_two_hosts_and_of_those_that_sent_replicas_there() -> None:
    problem = fleet()
    placement = solve(problem, time_limit=1.0, workers=1).placement
    book = refresh_failover(None, problem, placement, labels=("zone",))
    # a batch replica moves to the emptiest host of another zone
    replica = next(r for r in sorted(placement.assignments) if r.service == "batch")
    source = placement.host_of(replica)
    target = min((h.name for h in problem.hosts if h.name[:2] != source[:2]), key=lambda n: len(placement.on_host(n)))
    moved = Placement({**placement.assignments, replica: target})
    again = refresh_failover(book, problem, moved, labels=("zone",))
    touched = {source, target}
    remade = 0
    for old, new in zip(book.plans, again.plans, strict=True):
        if touched & (set(old.lost_hosts) | set(old.moves.values())):
            remade += 1
            assert new == fresh(problem, moved, old), old.target
        else:
            assert new is old, old.target
        assert holds(problem, moved, new) == []
    assert again.remade == remade
    assert 2 <= remade < len(book.plans)  # the plans of the two hosts, both zones', and those that targeted them


def test_a_host_that_stops_taking_work_is_no_target_of_any_plan_kept() -> None:
    problem = fleet()
    placement = solve(problem, time_limit=1.0, workers=1).placement
    book = refresh_failover(None, problem, placement, labels=("zone",))
    busiest = max(book.plans[:12], key=lambda p: len(p.moves))
    target = sorted(set(busiest.moves.values()))[0]
    hosts = tuple(dataclasses.replace(h, state=HostState.SUSPECT) if h.name == target else h for h in problem.hosts)
    suspect = PlacementProblem(hosts, problem.services, problem.current, problem.strategy)
    again = refresh_failover(book, suspect, placement, labels=("zone",))
    assert all(target not in p.moves.values() for p in again.plans)
    assert all(holds(suspect, placement, p) == [] for p in again.plans)
    assert again.plans[book.plans.index(busiest)] == fresh(suspect, placement, busiest)


def test_a_new_definition_makes_every_plan_again() -> None:
    problem = fleet()
    placement = solve(problem, time_limit=1.0, workers=1).placement
    book = refresh_failover(None, problem, placement, labels=("zone",))
    bigger = tuple(dataclasses.replace(s, replicas=s.replicas + (s.name == "batch")) for s in problem.services)
    edited = PlacementProblem(problem.hosts, bigger, problem.current, problem.strategy)
    assert refresh_failover(book, edited, placement, labels=("zone",)).remade == len(book.plans)
