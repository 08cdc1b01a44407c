"""The vector-packing heuristic families (core/optimizer/families.py) and the clique bound: hand-built
instances with known answers, and properties over random ones (every bound kept, solve never worse than
any family, the bound never above an exact optimum)."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.model import HostState, Resources, Service, SolverStatus, Strategy
from core.optimizer import HostSpec, PlacementProblem, greedy, solve
from core.optimizer.bounds import clique_bound, lower_bound
from core.optimizer.compiled import Compiled, Counts, compile_problem, hosts_used
from core.optimizer.cpsat import Budget
from core.optimizer.families import applies, family_starts, heuristics
from core.optimizer.greedy import ORDERS, greedy_counts
from core.optimizer.vectorlp import lp_bound, vector_bound
from tests.optimizer.checks import violations


def vector_problem(
    items: list[tuple[int, int]], cap: tuple[int, int] = (10, 10), hosts: int | None = None
) -> PlacementProblem:
    """Items (cpu, mem) as one-replica services on identical hosts: 2-D vector bin packing."""
    spec = tuple(HostSpec(f"h{i:02d}", Resources(cap[0], cap[1]), {}, HostState.UP) for i in range(hosts or len(items)))
    services = tuple(Service(f"i{k}", "true", 1, Resources(a, b)) for k, (a, b) in enumerate(items))
    return PlacementProblem(spec, services, strategy=Strategy.BINPACK)


# Sums (26, 25) need 3 bins of (10, 10), and 3 do: {(9, 8)}, {(3, 4), (4, 2), (3, 2)}, {(4, 3), (3, 6)}.
# First fit decreasing by the largest, the summed or the first share (greedy's orders) needs 4.
THREE_BINS = [(3, 4), (4, 2), (9, 8), (4, 3), (3, 2), (3, 6)]


def check_counts(c: Compiled, x: Counts) -> None:
    for h in range(c.n_hosts):
        for d in range(len(c.dims)):
            assert sum(c.demand[s][d] * x[s][h] for s in range(c.n_services)) <= c.cap[h][d]
    for s in range(c.n_services):
        assert sum(x[s]) <= c.replicas[s]
        assert all(0 <= x[s][h] <= c.ub[s][h] for h in range(c.n_hosts))


def test_families_pack_what_first_fit_decreasing_does_not() -> None:
    c = compile_problem(vector_problem(THREE_BINS))
    assert [hosts_used(c, greedy_counts(c, order=o)) for o in ORDERS] == [4, 4, 4]
    used = {name: hosts_used(c, run()) for name, run in heuristics(c)}
    # the mean-demand weights rank (9, 8) before (3, 6) and so break the tie FFD loses on;
    # bin-centric fills the first bin with (9, 8) and then packs the rest in pairs that fit
    for name in ("ffd-sum-avg", "bfd-sum-avg", "bc-dot-1", "bc-dot-avg", "bc-l2-1", "bc-l2-left"):
        assert used[name] == 3, name
    assert used["ffd-sum-1"] == 4
    for x in family_starts(c):
        check_counts(c, x)
        assert all(sum(row) == 1 for row in x)


def test_solve_starts_from_the_best_family() -> None:
    problem = vector_problem(THREE_BINS)
    assert greedy(problem).hosts_used == 4
    result = solve(problem, time_limit=1, workers=1)
    assert result.hosts_used == 3 and not result.unplaced and not violations(problem, result)


def test_bin_centric_dot_product_prefers_the_item_that_matches_the_room_left() -> None:
    # (6, 2) opens the first bin (it ties with (1, 7) and comes first); the room (4, 8) then matches
    # (1, 7) (dot 0.04 + 0.56) better than (4, 1) (0.16 + 0.08), and (5, 2) no longer fits:
    # complementary items pair up; (4, 1) and (5, 2) share the second bin
    c = compile_problem(vector_problem([(6, 2), (4, 1), (1, 7), (5, 2)]))
    x = dict(heuristics(c))["bc-dot-1"]()
    bins = sorted(tuple(s for s in range(c.n_services) if x[s][h]) for h in range(c.n_hosts) if any(r[h] for r in x))
    assert bins == [(0, 2), (1, 3)]


def test_families_leave_alone_what_they_do_not_model() -> None:
    problem = vector_problem(THREE_BINS)
    spread = PlacementProblem(problem.hosts, problem.services, strategy=Strategy.SPREAD)
    assert applies(compile_problem(problem))
    avoid = (Service("i0", "true", 1, Resources(3, 4), avoid=("i1",)), *problem.services[1:])
    assert not applies(compile_problem(PlacementProblem(problem.hosts, avoid, strategy=Strategy.BINPACK)))
    assert family_starts(compile_problem(PlacementProblem(problem.hosts, avoid, strategy=Strategy.BINPACK))) == []
    assert solve(spread, time_limit=1, workers=1).hosts_used >= 1  # the spread path never runs them


@st.composite
def vector_problems(draw: st.DrawFn) -> PlacementProblem:
    """Random 2-D packings with per-host bounds: unequal hosts, a down host, `require`, `max_per_host`."""
    n_hosts = draw(st.integers(1, 8))
    hosts = tuple(
        HostSpec(
            f"h{i}",
            Resources(draw(st.sampled_from([8, 10, 16])), draw(st.sampled_from([8, 10, 16]))),
            {"disk": draw(st.sampled_from(["ssd", "hdd"]))},
            draw(st.sampled_from([HostState.UP] * 4 + [HostState.DOWN])),
        )
        for i in range(n_hosts)
    )
    services = tuple(
        Service(
            f"s{k}",
            "true",
            draw(st.integers(1, 4)),
            Resources(draw(st.integers(1, 9)), draw(st.integers(0, 9))),
            require=draw(st.sampled_from([{}, {}, {"disk": "ssd"}])),
            max_per_host=draw(st.sampled_from([None, None, 1, 2])),
        )
        for k in range(draw(st.integers(1, 6)))
    )
    return PlacementProblem(hosts, services, strategy=Strategy.BINPACK)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vector_problems())
def test_every_family_keeps_every_bound_and_solve_is_never_worse(problem: PlacementProblem) -> None:
    c = compile_problem(problem)
    starts = family_starts(c)
    assert len(starts) == len(heuristics(c)) > 0
    for x in starts:
        check_counts(c, x)
    assert family_starts(c) == starts  # deterministic
    result = solve(problem, time_limit=0.5, workers=1)
    assert not violations(problem, result)
    best = min(starts, key=lambda x: (-sum(map(sum, x)), hosts_used(c, x)))
    # solve places at least as many replicas (equal weight here) and, placing as many, uses no more hosts
    assert sum(1 for _ in result.placement.assignments) >= max(sum(map(sum, x)) for x in starts)
    if sum(map(sum, best)) == sum(1 for _ in result.placement.assignments):
        assert result.hosts_used <= hosts_used(c, best)


def test_clique_bound_on_hand_built_instances() -> None:
    # (6, 5), (5, 6) and (6, 6): every pair overflows a dimension, so 3 bins, though the sums (17, 17) fit 2
    assert clique_bound([((6, 5), 1), ((5, 6), 1), ((6, 6), 1)], (10, 10)) == 3
    # two copies of (6, 6) never share a bin; (1, 1) x 8 fit next to them (4 + 4 each): still 2 bins
    assert clique_bound([((6, 6), 2), ((1, 1), 8)], (10, 10)) == 2
    # (9, 1) x 2 leave room (1, 9) each, but (5, 5) x 2 fit in neither: they need a third bin
    assert clique_bound([((9, 1), 2), ((5, 5), 2)], (10, 10)) == 3
    problem = vector_problem([(6, 5), (5, 6), (6, 6)])
    assert lower_bound(problem) == 3
    result = solve(problem, time_limit=5, workers=1)
    assert result.status is SolverStatus.OPTIMAL and result.lower_bound == result.hosts_used == 3


def fewest_bins(items: list[tuple[int, int]], cap: tuple[int, int]) -> int:
    """Exact, by trying every bin for every item (few items only): independent of the optimizer."""
    best = len(items)

    def place(k: int, bins: list[list[int]]) -> None:
        nonlocal best
        if len(bins) >= best:
            return
        if k == len(items):
            best = len(bins)
            return
        a, b = items[k]
        for load in bins:
            if load[0] + a <= cap[0] and load[1] + b <= cap[1]:
                load[0] += a
                load[1] += b
                place(k + 1, bins)
                load[0] -= a
                load[1] -= b
        place(k + 1, [*bins, [a, b]])

    place(0, [])
    return best


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10), st.integers(0, 10)).filter(any), min_size=1, max_size=7))
def test_clique_bound_never_exceeds_the_optimum(items: list[tuple[int, int]]) -> None:
    counted = Counter(items)
    assert clique_bound(list(counted.items()), (10, 10)) <= fewest_bins(items, (10, 10))


# Sums (20, 20) fit two bins only if both are exactly full, which needs (5, 3) next to (5, 7): no
# subset of the others makes it, so 3 bins; the per-dimension and clique bounds say 2.
LP_THREE = [(4, 2), (4, 3), (3, 4), (5, 7), (4, 4)]


def test_pattern_lp_bound_proves_what_the_simple_bounds_miss() -> None:
    problem = vector_problem(LP_THREE)
    assert lower_bound(problem) == 2
    c = compile_problem(problem)
    x = greedy_counts(c)
    assert hosts_used(c, x) == 3
    assert lp_bound(c, x, budget=Budget.of(5), seed=0) == 3
    # not for one dimension (onedim's job), nor when a rule links hosts
    flat = vector_problem([(a, 0) for a, _ in LP_THREE])
    assert lp_bound(compile_problem(flat), greedy_counts(compile_problem(flat)), budget=Budget.of(5), seed=0) == 0
    result = solve(problem, time_limit=5, workers=1)
    assert result.status is SolverStatus.OPTIMAL and result.lower_bound == result.hosts_used == 3


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10), st.integers(1, 10)), min_size=1, max_size=7))
def test_pattern_lp_bound_never_exceeds_the_optimum(items: list[tuple[int, int]]) -> None:
    counted = Counter(items)
    types = list(counted)
    most = [min(10 // a, 10 // b) for a, b in types]
    opt = fewest_bins(items, (10, 10))
    bound = vector_bound(types, [counted[t] for t in types], most, (10, 10), target=opt, budget=Budget.of(5), seed=0)
    assert bound <= opt
