"""Failover plans: a lost host's replicas land elsewhere, and nothing else moves when there is room."""

from __future__ import annotations

from collections import Counter

import pytest

from core.errors import InvalidProblem
from core.model import Placement, ReplicaId, SolverStatus
from core.optimizer import PlacementProblem, failover_for, failover_plans, solve, spread_labels, summarize
from tests.optimizer.checks import host, service

ZONES = ("z1", "z2", "z3")


def fleet() -> PlacementProblem:
    hosts = tuple(host(f"{z}-{i}", 4, 16, zone=z) for z in ZONES for i in range(2))
    services = (
        service("web", 6, 1, spread_over="zone", max_per_host=2),
        service("db", 2, 2, max_per_host=1, avoid=("batch",)),
        service("batch", 3, 1),
    )
    return PlacementProblem(hosts, services)


def test_lost_host_replicas_land_elsewhere_and_nothing_else_moves() -> None:
    problem = fleet()
    placement = solve(problem, time_limit=1.0).placement
    for lost in [h.name for h in problem.hosts]:
        plan = failover_for(problem, placement, [lost])
        displaced = set(placement.on_host(lost))
        assert set(plan.moves) == displaced, lost
        assert all(new != lost for new in plan.moves.values())
        assert plan.others_moved == 0 and plan.survives and plan.status is SolverStatus.OPTIMAL
        after = dict(placement.assignments) | dict(plan.moves)
        load: dict[str, int] = {}
        for replica, name in after.items():
            load[name] = load.get(name, 0) + problem.service(replica.service).resources.cpu
            assert replica.service != "db" or "batch" not in {r.service for r in Placement(after).on_host(name)}
        assert all(v <= 4000 for v in load.values())


def test_no_room_means_degraded_with_a_reason() -> None:
    problem = PlacementProblem((host("a", 2, 16), host("b", 2, 16)), (service("api", 2, 1.5, max_per_host=1),))
    placement = solve(problem, time_limit=1.0).placement
    plan = failover_for(problem, placement, ["a"])
    (lost_replica,) = placement.on_host("a")
    assert plan.moves == {}
    assert set(plan.unplaced) == {lost_replica}
    assert plan.unplaced[lost_replica] == "api needs 2 hosts with max_per_host=1 but only 1 remain without a"
    assert plan.degraded == ("api",) and not plan.survives and plan.status is SolverStatus.INFEASIBLE


def test_other_replicas_move_only_when_they_must() -> None:
    # when a dies, its big replica (3 cores) fits nowhere until a small one moves from c to b
    problem = PlacementProblem(
        (host("a", 4, 16), host("b", 4, 16), host("c", 4, 16)),
        (service("big", 1, 3), service("small", 5, 1)),
    )
    on_b = {ReplicaId("small", i): "b" for i in range(3)}
    on_c = {ReplicaId("small", i): "c" for i in range(3, 5)}
    placement = Placement({ReplicaId("big", 0): "a"} | on_b | on_c)
    plan = failover_for(problem, placement, ["a"])
    assert plan.survives and plan.status is SolverStatus.FEASIBLE
    assert plan.moves[ReplicaId("big", 0)] == "c"
    assert plan.others_moved == 1


def test_plans_for_every_host_then_every_zone_and_the_summary() -> None:
    problem = fleet()
    placement = solve(problem, time_limit=1.0).placement
    plans = failover_plans(problem, placement, labels=("zone",))
    assert [p.target for p in plans] == [h.name for h in problem.hosts] + list(ZONES)
    assert [p.scope for p in plans] == ["host"] * 6 + ["zone"] * 3
    for plan in plans[6:]:
        assert set(plan.lost_hosts) == {h.name for h in problem.hosts if h.labels["zone"] == plan.target}
    summary = summarize(plans)
    assert summary.n_plus_one is True
    assert summary.label_safe == all(p.survives for p in plans[6:])


def test_zone_loss_keeps_spread_even_over_the_remaining_zones() -> None:
    hosts = tuple(host(f"{z}-{i}", 8, 16, zone=z) for z in ZONES for i in range(2))
    problem = PlacementProblem(hosts, (service("web", 6, 1, spread_over="zone"),))
    placement = solve(problem, time_limit=1.0).placement
    (plan,) = [p for p in failover_plans(problem, placement) if p.target == "z1"]
    zones = [problem.host(h).labels["zone"] for h in plan.moves.values()]
    assert sorted(zones) == ["z2", "z3"]


def test_unknown_host_is_an_error() -> None:
    problem = fleet()
    with pytest.raises(InvalidProblem, match='unknown host "nope"'):
        failover_for(problem, Placement(), ["nope"])


def racks() -> PlacementProblem:
    # two zones of two racks each; "web" spreads over racks, nothing spreads over zones
    hosts = tuple(
        host(f"{z}-{r}-{i}", 4, 16, zone=z, rack=f"{z}{r}") for z in ("z1", "z2") for r in ("a", "b") for i in range(2)
    )
    return PlacementProblem(hosts, (service("web", 8, 1, spread_over="rack"), service("batch", 4, 1)))


def test_a_service_spread_over_racks_gets_a_plan_per_rack_and_none_per_zone() -> None:
    problem = racks()
    placement = solve(problem, time_limit=1.0).placement
    plans = failover_plans(problem, placement)
    assert [(p.scope, p.target) for p in plans[8:]] == [("rack", r) for r in ("z1a", "z1b", "z2a", "z2b")]
    for plan in plans[8:]:
        assert set(plan.lost_hosts) == {h.name for h in problem.hosts if h.labels["rack"] == plan.target}
        # the lost rack's web replicas go to the other racks evenly (2 per rack before, 8 over 3 after)
        after = dict(placement.assignments) | dict(plan.moves)
        per_rack = Counter(problem.host(h).labels["rack"] for r, h in after.items() if r.service == "web")
        assert plan.target not in per_rack and sorted(per_rack.values()) == [2, 3, 3], plan.target
        assert plan.survives and plan.others_moved == 0


def test_every_label_a_service_spreads_over_gets_plans_in_label_order() -> None:
    problem = racks()
    services = (*problem.services, service("db", 2, 1, spread_over="zone"))
    problem = PlacementProblem(problem.hosts, services)
    placement = solve(problem, time_limit=1.0).placement
    assert spread_labels(problem.services) == ("rack", "zone")
    plans = failover_plans(problem, placement)
    assert [p.scope for p in plans[8:]] == ["rack"] * 4 + ["zone"] * 2
    assert [p.target for p in failover_plans(problem, placement, labels=("zone",))[8:]] == ["z1", "z2"]
    assert [p.scope for p in failover_plans(problem, placement, labels=())] == ["host"] * 8


def test_values_at_risk_name_their_label() -> None:
    # one rack holds more than the other can take in: losing rack a leaves replicas over
    hosts = (host("a1", 4, 16, rack="a"), host("a2", 4, 16, rack="a"), host("b1", 4, 16, rack="b"))
    problem = PlacementProblem(hosts, (service("web", 3, 2, spread_over="rack"),))
    placement = solve(problem, time_limit=1.0).placement
    summary = summarize(failover_plans(problem, placement))
    assert summary.label_safe is False
    assert summary.values_at_risk == ("rack=a",)
