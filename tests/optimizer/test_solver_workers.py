"""`[policy] solver_workers`: read and checked from cluster.toml, defaulted to the cores available,
and a plan that stays the same for the same input, seed and number of workers."""

from __future__ import annotations

import random

import pytest

from core import config
from core.errors import ConfigError
from core.model import SolverStatus
from core.optimizer import PlacementProblem, solve, solver_workers
from core.optimizer.workers import DEFAULT_MAX, available_cores
from tests.optimizer.checks import host, service, violations
from tests.optimizer.test_packing_1d import exact_bins

MINIMAL = """\
[[hosts]]
name = "h1"
address = "10.0.0.1"
"""


def test_solver_workers_is_read_from_policy() -> None:
    cfg = config.parse(MINIMAL + "\n[policy]\nsolver_workers = 4\n", "f.toml")
    assert cfg.policy.solver_workers == 4
    assert solver_workers(cfg.policy.solver_workers) == 4


def test_solver_workers_defaults_to_the_cores_available_at_most_eight() -> None:
    assert config.parse(MINIMAL, "f.toml").policy.solver_workers is None
    assert solver_workers(None) == max(1, min(DEFAULT_MAX, available_cores()))


@pytest.mark.parametrize("value", ["0", "65", "2.5", '"4"', "true"])
def test_solver_workers_out_of_range_is_a_config_error_naming_the_key(value: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.parse(MINIMAL + f"\n[policy]\nsolver_workers = {value}\n", "f.toml")
    [problem] = err.value.problems
    assert (problem.entry, problem.field) == ("policy", "solver_workers")


def constrained() -> PlacementProblem:
    """Zones, a label requirement, an avoid pair and per-host limits: the counts model, not 1-D."""
    rng = random.Random(5)
    hosts = tuple(
        host(f"h{i:02d}", rng.choice([4, 8]), rng.choice([8, 16]), zone=f"z{i % 3}", disk=rng.choice(["ssd", "hdd"]))
        for i in range(24)
    )
    services = (
        service("web", 14, 1.5, 2, spread_over="zone", max_per_host=2),
        service("db", 5, 3, 6, require={"disk": "ssd"}, avoid=("batch",)),
        service("batch", 20, 0.75, 1.5),
        service("cache", 9, 0.5, 3.5, spread_over="zone"),
    )
    return PlacementProblem(hosts, services)


def exactly_filled() -> PlacementProblem:
    """30 hosts' worth of items that fill them exactly: the 1-D path (LP bound, dives)."""
    sizes, counts = exact_bins(30, 1000, random.Random(7))
    hosts = tuple(host(f"h{i:02d}", 1, 64) for i in range(40))
    services = tuple(service(f"s{w}", n, w / 1000, 0) for w, n in zip(sizes, counts, strict=True))
    return PlacementProblem(hosts, services)


@pytest.mark.parametrize("make", [constrained, exactly_filled])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_same_seed_and_workers_give_the_same_plan(make, workers: int) -> None:
    problem = make()
    first = solve(problem, time_limit=1.0, seed=11, workers=workers)
    again = solve(problem, time_limit=1.0, seed=11, workers=workers)
    assert violations(problem, first) == []
    assert first.placement == again.placement
    assert (first.status, first.hosts_used, first.lower_bound) == (again.status, again.hosts_used, again.lower_bound)


def test_exactly_filled_hosts_are_found_and_proven() -> None:
    result = solve(exactly_filled(), time_limit=5.0, seed=0, workers=2)
    assert (result.hosts_used, result.lower_bound, result.status) == (30, 30, SolverStatus.OPTIMAL)
