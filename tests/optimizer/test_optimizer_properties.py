"""Property tests over small random problems: every rule holds, reasons are given, results repeat."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.model import HostState, Placement, ReplicaId, SolverStatus, Strategy
from core.optimizer import PlacementProblem, PlacementResult, failover_for, greedy, solve
from tests.optimizer.checks import host, service, violations

STATES = st.sampled_from([HostState.UP] * 5 + [HostState.SUSPECT, HostState.DOWN, HostState.DRAINING])


@st.composite
def problems(draw: st.DrawFn) -> PlacementProblem:
    n_hosts = draw(st.integers(1, 5))
    hosts = tuple(
        host(
            f"h{i}",
            draw(st.sampled_from([1, 2, 4, 8])),
            draw(st.sampled_from([1, 4, 16])),
            draw(STATES),
            zone=draw(st.sampled_from(["z1", "z2"])),
            disk=draw(st.sampled_from(["ssd", "hdd"])),
        )
        for i in range(n_hosts)
    )
    n_services = draw(st.integers(1, 4))
    services = []
    for i in range(n_services):
        services.append(
            service(
                f"s{i}",
                draw(st.integers(0, 5)),
                draw(st.sampled_from([0.25, 0.5, 1, 3])),
                draw(st.sampled_from([0.25, 1, 4])),
                max_per_host=draw(st.sampled_from([None, 1, 2])),
                spread_over=draw(st.sampled_from([None, "zone"])),
                require=draw(st.sampled_from([{}, {"disk": "ssd"}])),
                avoid=(f"s{i - 1}",) if i and draw(st.booleans()) else (),
                priority=draw(st.integers(0, 2)),
            )
        )
    current = {}
    for s in services:
        for index in range(s.replicas + 1):  # one index beyond: a scaled-down replica
            if draw(st.booleans()):
                current[ReplicaId(s.name, index)] = draw(st.sampled_from([h.name for h in hosts] + ["gone-host"]))
    strategy = draw(st.sampled_from([Strategy.BINPACK, Strategy.SPREAD]))
    return PlacementProblem(hosts, tuple(services), Placement(current), strategy)


def rank(result) -> tuple[int, int, int]:
    return (-result.objective["placed_weight"], result.objective["spread_excess"], result.objective["moves"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_solve_respects_every_rule_and_explains_what_it_leaves_out(problem: PlacementProblem) -> None:
    result = solve(problem, time_limit=0.5, seed=3, workers=2)
    assert violations(problem, result) == []
    assert all(why and why != "not placed" for why in result.unplaced.values())
    assert 0 <= result.lower_bound <= result.hosts_used
    base = greedy(problem)
    assert violations(problem, base) == []
    assert rank(result) <= rank(base)  # never worse than the greedy baseline, term by term in order
    again = solve(problem, time_limit=0.5, seed=3, workers=2)
    assert again.placement == result.placement
    assert dict(again.unplaced) == dict(result.unplaced)
    assert dict(again.objective) == dict(result.objective) and again.status is result.status


@settings(max_examples=40, deadline=None)
@given(problems(), st.data())
def test_failover_moves_only_displaced_replicas_to_valid_hosts(problem: PlacementProblem, data: st.DataObject) -> None:
    placement = solve(problem, time_limit=0.3, workers=1).placement
    lost = data.draw(st.sampled_from([h.name for h in problem.hosts]))
    plan = failover_for(problem, placement, [lost])
    displaced = set(placement.on_host(lost))
    assert set(plan.moves) | set(plan.unplaced) >= displaced
    assert all(h != lost for h in plan.moves.values())
    if plan.others_moved == 0:
        assert set(plan.moves) <= displaced and not set(plan.unplaced) - displaced
    # the placement after failover obeys every rule, with the lost host gone
    kept = {r: h for r, h in placement.assignments.items() if h != lost and r not in plan.unplaced}
    after = kept | dict(plan.moves)
    hosts = tuple(h if h.name != lost else type(h)(h.name, h.capacity, h.labels, HostState.DOWN) for h in problem.hosts)
    gone = PlacementProblem(hosts, problem.services, placement, problem.strategy)
    unplaced = {r: "x" for s in problem.services for r in s.replica_ids() if r not in after}
    check = PlacementResult(Placement(after), unplaced, SolverStatus.FEASIBLE, {}, 0, 0, 0.0, 0.0, 0)
    assert violations(gone, check) == []
