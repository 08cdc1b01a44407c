"""Column generation for one-dimensional bin packing: the pattern LP and the bound it proves.

The LP (Gilmore–Gomory) has one column per bin pattern: minimise the bins used, sum of x_p, with
every item type covered, sum_p pattern_p[t] * x_p >= counts[t]. Patterns are generated on demand:
the LP's duals price items, and the most valuable pattern (a bounded knapsack, `patterns.py`)
enters whenever it is worth more than one bin. GLOP, the LP solver that ships with OR-Tools,
solves the master.

The bound: for any item prices pi >= 0, no packing uses fewer than (pi . counts) / max_p (pi .
pattern_p) bins (Farley), since each bin holds at most max_p (pi . pattern_p) of value. Every
pricing computes that maximum exactly, so the bound is certified at every step, not only when
the LP is solved to the end; rounded up, it equals the optimum on the classic sets (they have
the "integer round-up property"). Duals are smoothed towards the best prices so far (Wentges),
which cuts the number of rounds on these degenerate LPs several-fold.

Work is counted (DP cells and LP size), never timed, so the same input gives the same answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ortools.linear_solver import pywraplp  # type: ignore[import-untyped]  # SWIG module, no stubs

from core.optimizer.patterns import EPS, Pattern, best_pattern, fill, grain_for

# Deterministic cost of the work, in seconds of the caller's budget; measured here (2 cores,
# shared, Falkenauer t501): about 1.2e8 DP cells per second, and a GLOP re-solve after adding a
# column at about 6e5 master nonzeros per second.
CELLS_PER_SECOND = 1.2e8
NONZEROS_PER_SECOND = 6e5
SMOOTHING = 0.5  # weight of the best prices so far in the prices a round uses
ROUND_UP_SLACK = 1e-6  # a bound of 41.9999999 is 42: the duals are floating point


@dataclass(frozen=True, slots=True)
class Relaxation:
    value: float  # the restricted master's LP value when the rounds ended
    bound: int  # certified: no packing uses fewer bins
    columns: tuple[Pattern, ...]
    x: tuple[float, ...]  # the master's solution, per column
    closed: bool  # no pattern prices out: `value` is the LP optimum
    cost: float  # seconds of budget the work is worth (deterministic)


def round_up(value: float) -> int:
    return math.ceil(value - ROUND_UP_SLACK)


class Master:
    """The restricted master LP over the columns found so far, kept between solves (GLOP warm-starts)."""

    def __init__(self, counts: Sequence[int]) -> None:
        self.counts = list(counts)
        self.solver = pywraplp.Solver.CreateSolver("GLOP")
        # every type gets a row, even one with no items left, so `demand` can change later
        self.rows = [self.solver.Constraint(float(n), self.solver.infinity()) for n in self.counts]
        self.objective = self.solver.Objective()
        self.objective.SetMinimization()
        self.columns: list[Pattern] = []
        self.vars: list[pywraplp.Variable] = []
        self.seen: set[Pattern] = set()
        self.nonzeros = 0
        self.stale = True  # columns or demand changed since the last solve

    def add(self, pattern: Pattern) -> bool:
        if pattern in self.seen or not any(pattern) or any(n > m for n, m in zip(pattern, self.counts, strict=True)):
            return False
        self.seen.add(pattern)
        var = self.solver.NumVar(0.0, self.solver.infinity(), "")
        self.objective.SetCoefficient(var, 1.0)
        for t, n in enumerate(pattern):
            if n:
                self.rows[t].SetCoefficient(var, float(n))
                self.nonzeros += 1
        self.columns.append(pattern)
        self.vars.append(var)
        self.stale = True
        return True

    def demand(self, counts: Sequence[int]) -> None:
        """Cover `counts` from now on (a dive fixes bins and covers what is left). Columns that
        hold more of a type than is left are switched off: they would weaken the LP."""
        self.counts = list(counts)
        for row, n in zip(self.rows, self.counts, strict=True):
            row.SetLb(float(n))
        for var, pattern in zip(self.vars, self.columns, strict=True):
            fits = all(n <= m for n, m in zip(pattern, self.counts, strict=True))
            var.SetUb(self.solver.infinity() if fits else 0.0)
        self.stale = True

    def solve(self) -> tuple[float, list[float]]:
        """(value, dual price per item type)."""
        status = self.solver.Solve()
        if status != pywraplp.Solver.OPTIMAL:  # cannot happen: every type has a column of its own
            raise RuntimeError(f"pattern LP ended with status {status}")
        self.stale = False
        duals = [max(0.0, row.dual_value()) if n else 0.0 for row, n in zip(self.rows, self.counts, strict=True)]
        return self.objective.Value(), duals

    def solution(self) -> list[float]:
        """x per column (solving again first if columns came in since)."""
        if self.stale:
            self.solve()
        return [v.solution_value() for v in self.vars]


def starting_columns(sizes: Sequence[int], counts: Sequence[int], capacity: int) -> list[Pattern]:
    """One full column per type (that type as often as fits, then larger items first): the LP is
    feasible from the start."""
    out = []
    for t, n in enumerate(counts):
        if n:
            own = [0] * len(sizes)
            own[t] = min(n, capacity // sizes[t])
            out.append(fill(own, sizes, counts, capacity))
    return out


def relax(
    sizes: Sequence[int],
    counts: Sequence[int],
    capacity: int,
    *,
    columns: Sequence[Pattern] = (),
    target: int | None = None,
    max_cost: float = math.inf,
    master: Master | None = None,
    to_optimum: bool = False,
) -> Relaxation:
    """Column generation until the bound cannot rise any more (its rounded-up value meets the LP's),
    reaches `target` (a known packing: the bound then proves it optimal), or the work reaches
    `max_cost` seconds. `columns` (patterns that fit `counts`) seed the master; a `master` from an
    earlier call is reused with its columns (a dive re-solves one master as bins get fixed).
    `to_optimum`: go on until the LP itself is optimal (a dive reads its solution, not only the bound)."""
    if master is None:
        master = Master(counts)
    else:
        master.demand(counts)
    for p in starting_columns(sizes, counts, capacity):
        master.add(p)
    for p in columns:
        master.add(tuple(p))
    demand = [float(n) for n in counts]
    grain = grain_for(sizes, counts, capacity)
    best_bound, center = 0.0, [0.0] * len(sizes)
    cost, closed = 0.0, False
    value = 0.0
    while True:
        value, duals = master.solve()
        cost += master.nonzeros / NONZEROS_PER_SECOND
        added = False
        for weight in (SMOOTHING, 0.0) if best_bound > 0 else (0.0,):
            prices = [weight * c + (1 - weight) * d for c, d in zip(center, duals, strict=True)]
            priced = best_pattern(sizes, counts, prices, capacity, grain=grain)
            cost += priced.cells / CELLS_PER_SECOND
            if priced.value > EPS:
                bound = sum(p * n for p, n in zip(prices, demand, strict=True)) / priced.value
                if bound > best_bound:
                    best_bound, center = bound, prices
            reduced = 1.0 - sum(d * n for d, n in zip(duals, priced.pattern, strict=True))
            if reduced < -EPS and master.add(fill(priced.pattern, sizes, counts, capacity)):
                added = True
                break  # a column that improves the master: no need for the unsmoothed prices
        # Nothing prices out at the LP's own duals: the LP is optimal, and the bound just computed
        # at those duals is its value (within EPS), so the bound stays Farley's, certified. (On a
        # coarse grid, the pricing may miss a column: the search stops there, the bound holds.)
        closed = not added
        done = closed or (not to_optimum and round_up(best_bound) >= round_up(value))
        if done or (target is not None and round_up(best_bound) >= target) or cost >= max_cost:
            break
    return Relaxation(value, round_up(best_bound), tuple(master.columns), tuple(master.solution()), closed, cost)
