"""Repacking a few hosts at a time (`repack`), for placements whose hosts can be packed again apart from the rest.

A round takes a dozen used hosts and solves their replicas again as a problem of their own (the whole
`solve` pipeline, on those hosts alone); when they fit on fewer of them, that packing replaces theirs.
This is sound whenever nothing runs yet (no move to count) and no rule links hosts that a round could
break. Per-host rules (capacity, `require`, `max_per_host`, `avoid`) hold inside a round by themselves.
The only rule across hosts is `spread_over`: so the hosts are split by the values of the labels the
services spread over (e.g. one part per zone), and a round takes hosts of one part only. Its replicas
then stay in their zone, every service keeps its count per zone, and its evenness cannot change; inside
one zone a spread service is packed like any other.

Issue 13 (build 4): a 1,000-host cluster with zones, `avoid` and memory-heavy services packed by greedy
leaves hosts full in memory and two-thirds empty in cpu; only rounds that mix them with cpu-heavy hosts
can free hosts, and the counts model over 1,000 hosts is too large to find those in time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from core.model import Strategy
from core.optimizer.compiled import Compiled, Counts, used_hosts
from core.optimizer.cpsat import Budget
from core.optimizer.problem import PlacementProblem, PlacementResult
from core.optimizer.repack import Neighbourhood, repack

# A round re-runs this whole pipeline on a dozen hosts (greedy, bounds, up to three CP-SAT stages),
# so rounds are smaller and shorter than arc-flow's, whose round is a single model.
# A round's own Python work (compiling, greedy, the model) is not charged to the deterministic budget, so rounds
# that free nothing stop after a few: seed 777 of benchmarks/scale.py ran all 80 of them for 47.7 s.
REPACK = Neighbourhood(rounds=80, loose=4, others=8, seconds=0.3, patience=8)

HostBin = tuple[int, tuple[int, ...]]  # (host, replicas of each service on it)
SolveSub = Callable[[PlacementProblem, Budget, int], PlacementResult]  # (problem, budget, seed) → result


def separable(c: Compiled) -> bool:
    """Nothing runs yet: a round moves no replica that runs (the placement is a plan from scratch)."""
    return not any(map(any, c.cur)) and not any(c.displaced)


def repack_hosts(c: Compiled, x: Counts, *, lb: int, budget: Budget, seed: int, solve: SolveSub) -> Counts:
    """Fewer (or the same) hosts for `x`, a part (hosts with the same spread label values) at a time;
    the rounds and the budget are shared out by the parts' sizes. Needs `separable(c)`."""
    problem = c.problem
    index = {svc.name: s for s, svc in enumerate(problem.services)}
    labels = sorted({s.spread_over for s in problem.services if s.spread_over is not None})
    # Inside a part, spreading is moot: every replica of the part stays in it.
    plain = tuple(dataclasses.replace(svc, spread_over=None) for svc in problem.services)

    def fill(b: HostBin) -> float:
        h, contents = b
        shares = [
            sum(c.demand[s][d] * n for s, n in enumerate(contents)) / c.cap[h][d]
            for d in range(len(c.dims))
            if c.cap[h][d]
        ]
        return sum(shares) / len(shares) if shares else 1.0

    def resolve(chosen: list[HostBin], part: Budget, round_seed: int) -> list[HostBin] | None:
        hosts = sorted(h for h, _ in chosen)
        services = [
            dataclasses.replace(svc, replicas=sum(contents[s] for _, contents in chosen)) for s, svc in enumerate(plain)
        ]
        sub = PlacementProblem(tuple(problem.hosts[h] for h in hosts), tuple(services), strategy=Strategy.BINPACK)
        found = solve(sub, part, round_seed)
        if found.unplaced or found.hosts_used >= len(chosen):
            return None
        names = {problem.hosts[h].name: h for h in hosts}
        packed: dict[int, list[int]] = {}
        for replica, name in found.placement.assignments.items():
            packed.setdefault(names[name], [0] * c.n_services)[index[replica.service]] += 1
        return [(h, tuple(packed[h])) for h in sorted(packed)]

    parts: dict[tuple[str | None, ...], list[HostBin]] = {}
    for h in used_hosts(c, x):
        key = tuple(problem.hosts[h].labels.get(label) for label in labels)
        parts.setdefault(key, []).append((h, tuple(x[s][h] for s in range(c.n_services))))
    total = sum(len(bins) for bins in parts.values())
    order = sorted(parts, key=lambda k: tuple(v or "" for v in k))
    out = [[0] * c.n_hosts for _ in range(c.n_services)]
    for i, key in enumerate(order):
        bins = parts[key]
        size = dataclasses.replace(REPACK, rounds=max(1, REPACK.rounds * len(bins) // total))
        still = sum(len(parts[k]) for k in order[i:])  # a part's share of what is left: its bins over those to come
        part_lb = lb * len(bins) // total  # the bound shared out (only a stopping rule: rounds never add hosts)
        bins = repack(bins, fill=fill, resolve=resolve, size=size, lb=part_lb,
                      budget=budget.share(len(bins) / still), seed=seed + i)  # fmt: skip
        for h, contents in bins:
            for s, n in enumerate(contents):
                out[s][h] = n
    return out
