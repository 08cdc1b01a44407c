"""One-dimensional packing: pricing, the pattern-LP bound, the dive, and the pipeline around them.

Instances with a known optimum are built here, bins filled exactly by construction (no licensed
benchmark data): k bins of capacity C, each cut into items that sum to C, so k bins are enough
and, as the items fill k bins exactly, no fewer are possible.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from core.model import Resources, SolverStatus
from core.optimizer import PlacementProblem, greedy, solve
from core.optimizer.arcflow import min_slack
from core.optimizer.colgen import relax
from core.optimizer.cpsat import Budget
from core.optimizer.dive import dive
from core.optimizer.onedim import pack
from core.optimizer.patterns import best_pattern, grain_for, load
from tests.optimizer.checks import host, service, violations


def exact_bins(k: int, capacity: int, rng: random.Random, *, pieces: int = 3) -> tuple[list[int], list[int]]:
    """(sizes, counts) of k bins each cut into `pieces` items, every piece above C / (pieces + 1):
    a triplet-like instance, the kind first-fit decreasing and plain minimum bin slack miss."""
    low = capacity // (pieces + 1) + 1
    items: list[int] = []
    for _ in range(k):
        while True:
            cuts = [rng.randint(low, capacity // 2) for _ in range(pieces - 1)]
            last = capacity - sum(cuts)
            if low <= last <= capacity // 2:
                break
        items += [*cuts, last]
    by_size = sorted(Counter(items).items(), reverse=True)
    return [w for w, _ in by_size], [n for _, n in by_size]


def check_packing(bins: list[list[int]], sizes: list[int], counts: list[int], capacity: int) -> None:
    assert all(load(b, sizes) <= capacity for b in bins), "a bin is over capacity"
    assert [sum(b[t] for b in bins) for t in range(len(sizes))] == counts, "items lost or duplicated"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 12), st.integers(0, 3), st.floats(0, 2)), min_size=1, max_size=5),
    st.integers(1, 20),
)
def test_best_pattern_is_the_most_valuable_of_all_patterns(items: list[tuple[int, int, float]], capacity: int) -> None:
    sizes, bounds, values = ([it[i] for it in items] for i in range(3))
    priced = best_pattern(sizes, bounds, values, capacity)
    best = 0.0
    for pattern in itertools.product(*(range(n + 1) for n in bounds)):
        if load(pattern, sizes) <= capacity:
            best = max(best, sum(v * n for v, n in zip(values, pattern, strict=True)))
    assert all(n <= b for n, b in zip(priced.pattern, bounds, strict=True))
    assert load(priced.pattern, sizes) <= capacity
    assert abs(priced.value - best) < 1e-6
    assert abs(sum(v * n for v, n in zip(values, priced.pattern, strict=True)) - priced.value) < 1e-6


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(5, 60), st.integers(0, 3), st.floats(0, 2)), min_size=1, max_size=5),
    st.integers(40, 150),
    st.integers(2, 9),
)
def test_coarse_pricing_bounds_the_best_value_and_returns_a_pattern_that_fits(
    items: list[tuple[int, int, float]], capacity: int, grain: int
) -> None:
    sizes, bounds, values = ([it[i] for it in items] for i in range(3))
    exact = best_pattern(sizes, bounds, values, capacity)
    coarse = best_pattern(sizes, bounds, values, capacity, grain=grain)
    assert coarse.value >= exact.value - 1e-6  # Farley's bound needs an upper bound on the best value
    assert load(coarse.pattern, sizes) <= capacity
    assert all(n <= b for n, b in zip(coarse.pattern, bounds, strict=True))


def test_lp_bound_is_the_bin_count_on_exactly_filled_bins() -> None:
    sizes, counts = exact_bins(30, 1000, random.Random(1))
    r = relax(sizes, counts, 1000)
    assert r.bound == 30
    assert abs(r.value - 30) < 1e-6


def test_lp_bound_beats_the_volume_bound_where_items_cannot_share() -> None:
    # 7 items of 51 in bins of 100: volume says 4 bins, but no two share a bin, so 7
    r = relax([51], [7], 100)
    assert r.bound == 7


def test_dive_packs_exactly_filled_bins_at_the_bound() -> None:
    sizes, counts = exact_bins(40, 1000, random.Random(2))
    d = dive(sizes, counts, 1000, target=40)
    assert d.reached
    check_packing([list(b) for b in d.bins], sizes, counts, 1000)


def test_pack_finds_the_optimum_where_minimum_bin_slack_does_not() -> None:
    rng = random.Random(3)
    for _ in range(20):  # find an instance the old incumbent misses, so the test can fail
        sizes, counts = exact_bins(25, 1000, rng)
        if len(min_slack(sizes, counts, 1000)) > 25:
            break
    else:
        raise AssertionError("no instance where minimum bin slack misses the optimum")
    bins, proven, lb = pack(sizes, counts, 1000, hint=[], lb=0, budget=Budget.of(20), seed=0, workers=1)
    check_packing(bins, sizes, counts, 1000)
    assert (len(bins), proven, lb) == (25, True, 25)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 12), st.sampled_from([2, 3, 4]))
def test_pack_is_valid_never_worse_than_its_hint_and_repeats(seed: int, k: int, pieces: int) -> None:
    sizes, counts = exact_bins(k, 600, random.Random(seed), pieces=pieces)
    counts = [n + (seed % 2) for n in counts]  # some instances no longer fill bins exactly
    hint = min_slack(sizes, counts, 600)
    runs = [pack(sizes, counts, 600, hint=hint, lb=0, budget=Budget.of(2), seed=seed, workers=2) for _ in range(2)]
    bins, _, lb = runs[0]
    check_packing(bins, sizes, counts, 600)
    assert lb <= len(bins) <= len(hint)
    assert runs[0] == runs[1], "same input and seed gave different bins"


def exact_problem(k: int, seed: int, *, mem_share: float) -> PlacementProblem:
    """k hosts' worth of items that fill them exactly in cpu; each item also asks for memory, at
    `mem_share` of its cpu share (below 1: cpu is the dimension that binds)."""
    sizes, counts = exact_bins(k, 1000, random.Random(seed))
    hosts = tuple(host(f"h{i:02d}", 1, 1) for i in range(k + 10))
    services = tuple(service(f"s{w}", n, w / 1000, w / 1000 * mem_share) for w, n in zip(sizes, counts, strict=True))
    return PlacementProblem(hosts, services)


def test_solve_packs_exactly_filled_hosts_when_cpu_binds_and_memory_does_not() -> None:
    problem = exact_problem(30, 8, mem_share=0.5)
    result = solve(problem, time_limit=10.0, seed=0, workers=2)
    assert violations(problem, result) == []
    assert (result.hosts_used, result.lower_bound, result.status) == (30, 30, SolverStatus.OPTIMAL)


def test_solve_is_never_worse_than_greedy_where_no_dimension_binds_alone() -> None:
    problem = exact_problem(12, 9, mem_share=0.5)
    # one service asks for more memory than cpu: neither dimension dominates, the counts model solves it
    heavy = problem.services[0]
    services = (
        dataclasses.replace(heavy, resources=Resources(heavy.resources.cpu, 900 * 2**20)),
        *problem.services[1:],
    )
    problem = dataclasses.replace(problem, services=services)
    result = solve(problem, time_limit=2.0, seed=0, workers=2)
    assert violations(problem, result) == []
    assert result.hosts_used <= greedy(problem).hosts_used


def test_large_capacity_is_priced_on_a_grid_and_still_packed_within_the_bound() -> None:
    sizes, counts = exact_bins(30, 100_000, random.Random(4))
    assert grain_for(sizes, counts, 100_000) > 1  # the case this test is about
    assert relax(sizes, counts, 100_000).bound <= 30  # still a valid bound
    hint = min_slack(sizes, counts, 100_000)
    bins, _, lb = pack(sizes, counts, 100_000, hint=hint, lb=0, budget=Budget.of(5), seed=0, workers=1)
    check_packing(bins, sizes, counts, 100_000)
    assert lb <= 30 <= len(bins) <= len(hint)
