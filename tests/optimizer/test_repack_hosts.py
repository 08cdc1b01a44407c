"""Repacking a few hosts at a time on constrained fleets (issue 13 build 4): zones, `avoid`, `require` and
`max_per_host` hold, every spread service keeps its count per zone, and hosts are freed."""

from __future__ import annotations

from collections import Counter

from core.model import Placement, SolverStatus
from core.optimizer import PlacementProblem, solve
from core.optimizer.compiled import compile_problem, hosts_used, to_placement
from core.optimizer.cpsat import Budget
from core.optimizer.problem import PlacementResult
from core.optimizer.repack import Neighbourhood, repack
from core.optimizer.repack_hosts import repack_hosts, separable
from core.optimizer.solve import _solve_round
from tests.optimizer.checks import host, service, violations

ZONES = ("z1", "z2", "z3")


def fleet() -> PlacementProblem:
    hosts = tuple(host(f"{z}-{i}", 8, 32, zone=z, disk="ssd" if i % 2 else "hdd") for z in ZONES for i in range(6))
    services = (
        service("memy", 3, 1, 12, spread_over="zone"),  # memory-heavy: two fill a host's memory
        service("cpuy", 6, 3, 2, spread_over="zone"),  # cpu-heavy
        service("db", 3, 2, 4, max_per_host=1, require={"disk": "ssd"}),
        service("batch", 3, 1, 1, avoid=("db",)),
    )
    return PlacementProblem(hosts, services)


def one_per_host(problem: PlacementProblem) -> list[list[int]]:
    """The worst valid packing: every replica alone on a host of its own zone (and disk, for db)."""
    c = compile_problem(problem)
    x = [[0] * c.n_hosts for _ in range(c.n_services)]
    free = list(range(c.n_hosts))
    for s, svc in enumerate(problem.services):
        for i in range(svc.replicas):
            zone = ZONES[i % 3]
            fits = [h for h in free if c.ub[s][h]]
            h = next(h for h in fits if svc.spread_over is None or problem.hosts[h].labels["zone"] == zone)
            free.remove(h)
            x[s][h] = 1
    return x


def zones_of(problem: PlacementProblem, placement: Placement) -> Counter[tuple[str, str]]:
    hosts = {h.name: h for h in problem.hosts}
    return Counter((r.service, hosts[h].labels["zone"]) for r, h in placement.assignments.items())


def as_result(problem: PlacementProblem, placement: Placement) -> PlacementResult:
    return PlacementResult(placement, {}, SolverStatus.FEASIBLE, {}, len(placement.hosts_used()), 0, 0.0, 0.0, 0)


def test_rounds_free_hosts_within_each_zone_and_every_rule_still_holds() -> None:
    problem = fleet()
    c = compile_problem(problem)
    assert separable(c)
    x = one_per_host(problem)
    before = to_placement(c, x)
    assert violations(problem, as_result(problem, before)) == []
    packed = repack_hosts(c, x, lb=0, budget=Budget.of(10), seed=0, solve=_solve_round)
    after = to_placement(c, packed)
    assert violations(problem, as_result(problem, after)) == []
    assert zones_of(problem, after) == zones_of(problem, before)  # each spread service's count per zone kept
    assert hosts_used(c, packed) < hosts_used(c, x) - 3


def test_same_seed_same_packing() -> None:
    problem = fleet()
    c = compile_problem(problem)
    x = one_per_host(problem)
    runs = [repack_hosts(c, x, lb=0, budget=Budget.of(10), seed=3, solve=_solve_round) for _ in range(2)]
    assert runs[0] == runs[1]


def test_nothing_running_is_separable_and_a_running_replica_is_not() -> None:
    problem = fleet()
    placed = solve(problem, time_limit=2.0, workers=1).placement
    assert not separable(compile_problem(PlacementProblem(problem.hosts, problem.services, placed)))


def test_rounds_that_free_nothing_stop_after_the_patience_runs_out() -> None:
    calls: list[int] = []

    def never(chosen: list[int], budget: Budget, seed: int) -> None:
        calls.append(seed)  # found nothing: the bins stay as they are

    bins = list(range(30))
    size = Neighbourhood(rounds=80, loose=2, others=3, seconds=0.1, patience=5)
    assert repack(bins, fill=lambda b: 0.5, resolve=never, size=size, lb=0, budget=Budget.of(10), seed=0) == bins
    assert len(calls) == 5
    unlimited = Neighbourhood(rounds=20, loose=2, others=3, seconds=0.1)
    calls.clear()
    repack(bins, fill=lambda b: 0.5, resolve=never, size=unlimited, lb=0, budget=Budget.of(10), seed=0)
    assert len(calls) == 20
