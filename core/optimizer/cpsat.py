"""The CP-SAT counts model and its lexicographic objective, solved in sequential stages.

Variables: x[s,h] = how many replicas of service s run on host h, only for hosts where s may
run (its upper bound already holds require, state, max_per_host and the per-replica fit).

Objective, lexicographic, as three sequential solves rather than one weighted sum: each
later stage fixes the earlier optimum as a constraint. Weights would have to span
priority × replicas × moves × hosts and overflow or hurt the LP relaxation at
10,000 replicas, while sequential solves keep each objective small and let every stage
stop as soon as it meets its own bound.
  PLACE (A). most priority-weighted replicas placed; ties broken by the least spread excess
     (max - min - 1 of a spread service's per-group counts): both in one objective,
     placed_weight * (E + 1) - excess, safe because excess <= E;
  MOVES (B). fewest moves: per service, min(running, placed) - replicas left where they run
     (a running replica that is not kept either moves or, when fewer are placed, stops);
  HOSTS (C). binpack: fewest hosts used; spread: lowest worst load (per mille of a host dimension).
"""

from __future__ import annotations

import enum
import itertools
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from ortools.sat.python import cp_model

from core.optimizer.compiled import Compiled, Counts, moves_of, spread_excess, used_hosts, weights


class Stage(enum.Enum):
    """The levels of the lexicographic objective, solved in this order (see the module docstring)."""

    PLACE = "A"  # most priority-weighted replicas placed, spread as even as it can be
    MOVES = "B"  # fewest running replicas moved
    HOSTS = "C"  # binpack: fewest hosts used; spread: lowest worst load


DETERMINISTIC_PER_SECOND = 0.25  # CP-SAT ran 0.3-0.45 deterministic units per wall second here
# The wall clock only cuts in at twice the limit: the deterministic budget normally ends the search
# well before (at 0.3-0.7 units per second it lasts 0.35-0.8 of the limit), so the same input and
# seed give the same plan even on a machine that is twice as slow as usual.
WALL_SAFETY = 2.0
MAX_EXACT_VARS = 20_000  # above this, the fewest-hosts stage searches a neighbourhood of the incumbent


@dataclass(slots=True)
class Budget:
    """How much search is left, in seconds of the caller's time limit.

    Search is paid for in CP-SAT's deterministic time (DETERMINISTIC_PER_SECOND units per
    second of limit), so every rule that reads `left()` stops at the same point for the same
    input and seed. The wall clock also ends the search at `deadline` (twice the limit): on
    placement models CP-SAT's clock ran at 0.3-0.7 units per wall second here, so the deterministic
    budget runs out first; only on heavy LP models (arc-flow) on a machine more than twice as slow
    can the deadline come first, and then a plan cut short may differ between runs.
    """

    limit: float
    deadline: float
    used: float = 0.0
    parent: Budget | None = None

    @classmethod
    def of(cls, seconds: float) -> Budget:
        return cls(seconds, time.monotonic() + seconds * WALL_SAFETY)

    def left(self) -> float:
        if time.monotonic() >= self.deadline:
            return 0.0
        return max(0.0, self.limit - self.used)

    def share(self, fraction: float, *, at_most: float | None = None) -> Budget:
        """A part of what is left; what the part spends is spent here too."""
        part = self.left() * fraction
        return Budget(part if at_most is None else min(part, at_most), self.deadline, parent=self)

    def spend(self, seconds: float) -> None:
        self.used += seconds
        if self.parent is not None:
            self.parent.spend(seconds)


@dataclass(slots=True)
class StageResult:
    x: Counts
    proven: bool  # the stage's objective is optimal for its constraints
    bound: float | None = None  # the solver's best bound on the stage objective


GENERAL: tuple[Mapping[str, object], ...] = ({},)  # every worker searches the default way, each with its own seed


def run(
    model: cp_model.CpModel,
    *,
    budget: Budget,
    seconds: float,
    seed: int,
    workers: int,
    flavours: Sequence[Mapping[str, object]] = GENERAL,
) -> tuple[cp_model.CpSolver, cp_model.CpSolverStatus]:
    """Solve reproducibly on `workers` threads, spending at most `seconds` of `budget`;
    returns the solver whose answer counts, and its status.

    CP-SAT's own multi-worker portfolio races its threads, and its reproducible mode
    (`interleave_search`) was several times slower here, so instead each worker is a
    single-thread search (reproducible under `max_deterministic_time`) with its own seed and
    parameters (`flavours[k]`, the last one repeated for further workers). Worker 0 is never
    interrupted: when it proves its answer optimal, the others are
    stopped and ignored; otherwise every worker runs to its own limit and the best answer
    wins (ties go to the lower worker). Either way the result depends only on the inputs, as
    long as each search ends by proof or by its deterministic limit (see `Budget`).
    """
    seconds = min(seconds, budget.left())
    wall = max(0.05, budget.deadline - time.monotonic())
    solvers = []
    for k in range(max(1, workers)):
        solver = cp_model.CpSolver()
        p = solver.parameters
        p.num_workers = 1
        p.random_seed = seed + k
        p.max_deterministic_time = max(0.001, seconds * DETERMINISTIC_PER_SECOND)
        p.max_time_in_seconds = wall
        for key, value in flavours[min(k, len(flavours) - 1)].items():
            setattr(p, key, value)
        solvers.append(solver)
    statuses: list[cp_model.CpSolverStatus] = [cp_model.UNKNOWN] * len(solvers)

    def work(k: int) -> None:
        statuses[k] = solvers[k].solve(model)
        if k == 0 and statuses[0] in (cp_model.OPTIMAL, cp_model.INFEASIBLE):
            for other in solvers[1:]:
                other.stop_search()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(1, len(solvers))]
    for t in threads:
        t.start()
    work(0)
    for t in threads:
        t.join()
    budget.spend(solvers[0].deterministic_time / DETERMINISTIC_PER_SECOND)  # worker 0's clock is reproducible
    if statuses[0] in (cp_model.OPTIMAL, cp_model.INFEASIBLE) or len(solvers) == 1:
        return solvers[0], statuses[0]
    found = [k for k, st in enumerate(statuses) if st in (cp_model.OPTIMAL, cp_model.FEASIBLE)]
    if not found:
        return solvers[0], statuses[0]
    sign = -1 if model.proto.objective.scaling_factor < 0 else 1  # maximisation is stored negated
    best = min(found, key=lambda k: (sign * solvers[k].objective_value, k))
    return solvers[best], statuses[best]


class CountsModel:
    def __init__(self, c: Compiled, *, binpack: bool, hosts: Collection[int] | None = None):
        """`hosts`: the only hosts that may receive replicas (all when None)."""
        self.c, self.binpack = c, binpack
        allowed = set(range(c.n_hosts)) if hosts is None else set(hosts)
        m = self.model = cp_model.CpModel()
        n_s, n_h = c.n_services, c.n_hosts
        self.x: dict[tuple[int, int], cp_model.IntVar] = {}
        for s in range(n_s):
            for h in range(n_h):
                if c.ub[s][h] > 0 and h in allowed:
                    self.x[s, h] = m.new_int_var(0, c.ub[s][h], f"x{s}_{h}")
        self.by_host: list[list[int]] = [[] for _ in range(n_h)]
        self.by_service: list[list[int]] = [[] for _ in range(n_s)]
        for s, h in self.x:
            self.by_host[h].append(s)
            self.by_service[s].append(h)
        self.placed = [sum(self.x[s, h] for h in self.by_service[s]) for s in range(n_s)]
        for s in range(n_s):
            if self.by_service[s]:
                m.add(self.placed[s] <= c.replicas[s])

        self.used: dict[int, cp_model.IntVar] = {}
        for h in range(n_h):
            if not self.by_host[h]:
                continue
            y = self.used[h] = m.new_bool_var(f"used{h}")
            for d in range(len(c.dims)):
                terms = [c.demand[s][d] * self.x[s, h] for s in self.by_host[h] if c.demand[s][d]]
                if terms:
                    m.add(sum(terms) <= c.cap[h][d] * y)
            for s in self.by_host[h]:
                m.add(self.x[s, h] <= c.ub[s][h] * y)
        self._break_symmetry()

        self.on: dict[tuple[int, int], cp_model.IntVar] = {}
        for s, t in c.avoid_pairs:
            for h in range(n_h):
                if (s, h) in self.x and (t, h) in self.x:
                    m.add_bool_or([self._on(s, h).Not(), self._on(t, h).Not()])

        self.excess = []
        self.derived: list[tuple[cp_model.IntVar, Callable[[Counts], int]]] = []  # hinted from x
        for s, groups in enumerate(c.zones):
            if not groups or len(groups) < 2:
                continue
            counts = [sum(self.x[s, h] for h in g if (s, h) in self.x) for g in groups]
            hi = m.new_int_var(0, c.replicas[s], f"hi{s}")
            lo = m.new_int_var(0, c.replicas[s], f"lo{s}")
            ex = m.new_int_var(0, c.replicas[s], f"ex{s}")
            for n in counts:
                m.add(hi >= n)
                m.add(lo <= n)
            m.add(ex >= hi - lo - 1)
            self.excess.append(ex)
            self.derived.append((hi, partial(_spread_stat, max, self, s, groups)))
            self.derived.append((lo, partial(_spread_stat, min, self, s, groups)))
            self.derived.append((ex, partial(_spread_stat, _excess, self, s, groups)))

        # moves of s = min(running, placed) - stayed: a running replica that is not kept either
        # moves (when a replica is placed for it) or stops
        stay = []
        kept_or_moved = []
        for s in range(n_s):
            running = sum(c.cur[s]) + c.displaced[s]
            if not running or not self.by_service[s]:
                continue
            r = m.new_int_var(0, running, f"movable{s}")
            m.add_min_equality(r, [running, self.placed[s]])
            kept_or_moved.append(r)
            self.derived.append((r, partial(_movable, s, running)))
            for h in self.by_service[s]:
                if c.cur[s][h]:
                    st = m.new_int_var(0, c.cur[s][h], f"stay{s}_{h}")
                    m.add(st <= self.x[s, h])
                    stay.append(st)
                    self.derived.append((st, partial(_stayed, s, h, c.cur[s][h])))
        self.moves = sum(kept_or_moved) - sum(stay)

        self.worst = m.new_int_var(0, 1000, "worst")
        self.fixed: set[Stage] = set()
        self.counts_fixed = False
        w = weights(c)
        self.placed_weight = sum(w[s] * self.placed[s] for s in range(n_s))
        # placed weight first, spread excess as tie-break: safe because excess <= excess_bound
        self.excess_bound = sum(c.replicas[s] for s, g in enumerate(c.zones) if g)
        self.stage_a = self.placed_weight * (self.excess_bound + 1) - sum(self.excess)

    def stage_a_value(self, x: Counts) -> int:
        w = weights(self.c)
        placed_weight = sum(w[s] * sum(x[s]) for s in range(self.c.n_services))
        return placed_weight * (self.excess_bound + 1) - spread_excess(self.c, x)

    def _on(self, s: int, h: int) -> cp_model.IntVar:
        if (s, h) not in self.on:
            b = self.on[s, h] = self.model.new_bool_var(f"on{s}_{h}")
            self.model.add(self.x[s, h] <= self.c.ub[s][h] * b)
        return self.on[s, h]

    def _break_symmetry(self) -> None:
        """Interchangeable hosts are used in order: host i used >= host i+1 used."""
        for members in identical_groups(self.c, list(self.used)):
            for a, b in itertools.pairwise(members):
                self.model.add(self.used[a] >= self.used[b])

    # -- stages ----------------------------------------------------------------------------

    def hint(self, x: Counts) -> None:
        m = self.model
        m.clear_hints()
        for (s, h), var in self.x.items():
            m.add_hint(var, x[s][h])
        for h, y in self.used.items():
            m.add_hint(y, int(any(x[s][h] for s in self.by_host[h])))
        for (s, h), b in self.on.items():
            m.add_hint(b, int(x[s][h] > 0))
        for var, value in self.derived:
            m.add_hint(var, value(x))

    def solve_stage(
        self, stage: Stage, x0: Counts, *, budget: Budget, seconds: float, seed: int, workers: int, lb: int = 0
    ) -> StageResult:
        m, c = self.model, self.c
        if stage is Stage.PLACE:
            m.maximize(self.stage_a)
        elif stage is Stage.MOVES:
            m.minimize(self.moves)
        elif self.binpack:
            total = sum(self.used.values())
            m.add(total >= lb)
            m.minimize(total)
        else:
            for h in self.used:
                for d in range(len(c.dims)):
                    if c.cap[h][d] and c.takes_new[h]:
                        load = sum(c.demand[s][d] * self.x[s, h] for s in self.by_host[h] if c.demand[s][d])
                        m.add(1000 * load <= c.cap[h][d] * self.worst)
            m.minimize(self.worst)
        self.hint(x0)
        solver, status = run(m, budget=budget, seconds=seconds, seed=seed, workers=workers)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return StageResult(x0, False)
        x = [[0] * c.n_hosts for _ in range(c.n_services)]
        for (s, h), var in self.x.items():
            x[s][h] = solver.value(var)
        return StageResult(x, status == cp_model.OPTIMAL, solver.best_objective_bound)

    def fix_to(self, x: Counts, stage: Stage) -> None:
        """Keep the value `x` reached in `stage` while later stages run (once per stage)."""
        if stage in self.fixed:
            return
        self.fixed.add(stage)
        if stage is Stage.PLACE:
            self.model.add(self.stage_a >= self.stage_a_value(x))
        elif stage is Stage.MOVES:
            self.model.add(self.moves <= moves_of(self.c, x))
        else:
            raise ValueError(f"{stage} is the last stage; nothing is solved after it")

    def fix_counts(self, x: Counts) -> None:
        """Place exactly as many replicas of each service as `x` does (once), so that the last stage
        only rearranges them and cannot trade one service's replicas for another's of equal weight."""
        if self.counts_fixed:
            return
        self.counts_fixed = True
        for s in range(self.c.n_services):
            if self.by_service[s]:
                self.model.add(self.placed[s] == sum(x[s]))


def identical_groups(c: Compiled, hosts: Collection[int]) -> list[list[int]]:
    """Hosts that are interchangeable: same capacity, labels, state and bounds, nothing running now."""
    groups: dict[tuple, list[int]] = {}
    for h in sorted(hosts):
        if any(c.cur[s][h] for s in range(c.n_services)):
            continue
        spec = c.problem.hosts[h]
        key = (c.cap[h], tuple(spec.labels.items()), spec.state, tuple(c.ub[s][h] for s in range(c.n_services)))
        groups.setdefault(key, []).append(h)
    return list(groups.values())


def hosts_worth_modelling(c: Compiled, x: Counts) -> list[int]:
    """Hosts a placement with fewer hosts than `x` could need.

    Such a placement uses fewer than hosts_used(x) hosts, so from a group of interchangeable
    hosts it never needs more than that many; the hosts x uses are kept, then the group's first
    unused ones. This keeps "unlimited identical hosts" from blowing up the model.
    """
    used = set(used_hosts(c, x))
    keep = set(used)
    grouped: set[int] = set()
    for members in identical_groups(c, range(c.n_hosts)):
        grouped.update(members)
        room = len(used) - sum(1 for h in members if h in used)
        keep.update([h for h in members if h not in used][: max(0, room)])
    keep.update(h for h in range(c.n_hosts) if h not in grouped)
    return sorted(keep)


def neighbourhood(c: Compiled, x: Counts) -> list[int]:
    """The hosts `x` uses plus one spare of each kind: a search around `x` that a model over every
    host would be too large for. Its optimum is not a proof for the whole fleet."""
    used = set(used_hosts(c, x))
    keep = set(used)
    for members in identical_groups(c, range(c.n_hosts)):
        keep.update([h for h in members if h not in used][:1])
    return sorted(keep)


def model_size(c: Compiled, hosts: Collection[int]) -> int:
    """Number of count variables a model over `hosts` would have."""
    return sum(1 for s in range(c.n_services) for h in hosts if c.ub[s][h] > 0)


def _group_counts(model: CountsModel, x: Counts, s: int, groups: Sequence[Sequence[int]]) -> list[int]:
    return [sum(x[s][h] for h in g if (s, h) in model.x) for g in groups]


def _excess(counts: list[int]) -> int:
    return max(0, max(counts) - min(counts) - 1)


# The values of derived variables for a hint from counts x (partials, not lambdas, so their types are checked).
def _spread_stat(
    stat: Callable[[list[int]], int], model: CountsModel, s: int, groups: Sequence[Sequence[int]], x: Counts
) -> int:
    return stat(_group_counts(model, x, s, groups))


def _movable(s: int, running: int, x: Counts) -> int:
    return min(running, sum(x[s]))


def _stayed(s: int, h: int, current: int, x: Counts) -> int:
    return min(current, x[s][h])
