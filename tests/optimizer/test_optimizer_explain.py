"""Explanations of unplaced replicas, in the words an operator acts on."""

from __future__ import annotations

from core.model import HostState, ReplicaId, SolverStatus
from core.optimizer import PlacementProblem, solve
from tests.optimizer.checks import host, service, violations

FAST = {"time_limit": 1.0, "workers": 1}


def reasons(problem: PlacementProblem) -> dict[str, set[str]]:
    result = solve(problem, **FAST)
    assert violations(problem, result) == []
    out: dict[str, set[str]] = {}
    for replica, why in result.unplaced.items():
        out.setdefault(replica.service, set()).add(why)
    return out


def test_cpu_short_cluster_wide() -> None:
    problem = PlacementProblem((host("a", 8, 64), host("b", 8, 64)), (service("web", 7, 2.5, 1),))
    assert reasons(problem) == {"web": {"cpu short by 1.5 cores cluster-wide"}}


def test_memory_short_cluster_wide() -> None:
    problem = PlacementProblem((host("a", 64, 4),), (service("cache", 3, 0.1, 2),))
    assert reasons(problem) == {"cache": {"mem short by 2.0GiB cluster-wide"}}


def test_avoid_blocks_every_host_with_room() -> None:
    problem = PlacementProblem(
        (host("a", 8, 16), host("b", 8, 16)),
        (service("cache", 2, 1, max_per_host=1, priority=10), service("db", 1, 1, avoid=("cache",))),
    )
    assert reasons(problem) == {"db": {"db avoids cache and every host with room runs cache"}}


def test_replica_larger_than_any_host() -> None:
    problem = PlacementProblem((host("a", 4, 16), host("b", 2, 16)), (service("big", 1, 6),))
    assert reasons(problem) == {
        "big": {"big needs 6.0 cores per replica but the largest host it may use has 4.0 cores"}
    }


def test_no_host_up() -> None:
    problem = PlacementProblem((host("a", 4, 16, HostState.DOWN),), (service("w", 1, 1),))
    assert reasons(problem) == {"w": {"no host accepts new replicas (hosts are down)"}}


def test_combined_limits_are_named_by_the_solver_core() -> None:
    # Each service alone fits and the fleet has enough cpu in total, but not with db's anti-affinity:
    # db needs both hosts (max_per_host=1) and leaves too little room for batch on either.
    problem = PlacementProblem(
        (host("a", 4, 16), host("b", 4, 16), host("c", 1, 16)),
        (service("db", 2, 3, max_per_host=1, priority=5), service("batch", 1, 2)),
    )
    result = solve(problem, **FAST)
    assert set(result.unplaced) == {ReplicaId("batch", 0)}
    assert result.status is SolverStatus.INFEASIBLE
    assert result.unplaced[ReplicaId("batch", 0)] == (
        "db and batch cannot all be placed together: the hosts they may use run out of room (db max_per_host=1)"
    )


def test_infeasible_problem_still_places_what_fits() -> None:
    problem = PlacementProblem((host("a", 2, 16),), (service("w", 5, 1),))
    result = solve(problem, **FAST)
    assert result.status is SolverStatus.INFEASIBLE
    assert len(result.placement.assignments) == 2 and len(result.unplaced) == 3
    assert result.objective["placed"] == 2
