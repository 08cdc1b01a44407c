"""First-fit decreasing over several dimensions, on counts.

It is the solver's warm start, its fallback when CP-SAT finds nothing in time,
and the baseline of the benchmarks. Replicas that run now stay where they are
when they still fit; the rest go, largest first and higher priority first, to
the first host with room (hosts largest first). Replicas of one service are
interchangeable, so first fit places a whole run of them on a host at once,
which keeps it fast at thousands of replicas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from core.optimizer.compiled import Compiled, Counts, used_hosts

ORDERS = ("max", "sum", "first")  # dimension that ranks "largest": the worst one, all of them, the first


def size_key(c: Compiled, order: str) -> Callable[[int], float]:
    mean_cap = [max(1.0, sum(row[d] for row in c.cap) / max(1, c.n_hosts)) for d in range(len(c.dims))]

    def key(s: int) -> float:
        shares = [c.demand[s][d] / mean_cap[d] for d in range(len(c.dims))] or [0.0]
        if order == "sum":
            return sum(shares)
        if order == "first":
            return shares[0]
        return max(shares)

    return key


def greedy_counts(c: Compiled, *, order: str = "max", binpack: bool = True, limited_first: bool = False) -> Counts:
    """`limited_first`: services with a `max_per_host` are placed before the others (each by priority, then
    size). Such a service needs many distinct hosts; placed last it finds the largest hosts full and opens
    hundreds of hosts for one or two replicas each (issue 13: 599 hosts where 333 can suffice)."""
    n_s, n_h = c.n_services, c.n_hosts
    x = [[0] * n_h for _ in range(n_s)]
    residual = [list(row) for row in c.cap]
    present: list[set[int]] = [set() for _ in range(n_h)]

    def room(s: int, h: int) -> int:
        if c.conflicts[s] & present[h]:
            return 0
        return min(c.ub[s][h] - x[s][h], c.fits_count(s, residual[h]))

    def put(s: int, h: int, n: int) -> None:
        x[s][h] += n
        present[h].add(s)
        for d, need in enumerate(c.demand[s]):
            residual[h][d] -= need * n

    key = size_key(c, order)
    by_priority = sorted(range(n_s), key=lambda s: (-c.problem.services[s].priority, s))
    for s in by_priority:  # keep what runs, most important services first
        for h in range(n_h):
            if c.cur[s][h]:
                n = min(c.cur[s][h], room(s, h))
                if n > 0:
                    put(s, h, n)

    host_size = size_key_hosts(c)
    host_order = sorted(range(n_h), key=lambda h: (-host_size[h], h))
    rank = {h: i for i, h in enumerate(host_order)}

    def limited(s: int) -> bool:
        return limited_first and c.problem.services[s].max_per_host is not None

    for s in sorted(range(n_s), key=lambda s: (not limited(s), -c.problem.services[s].priority, -key(s), s)):
        left = c.replicas[s] - sum(x[s])
        if left <= 0:
            continue
        groups = c.zones[s]
        if groups:
            per_group = [sum(x[s][h] for h in g) for g in groups]
            place_spread(s, left, [sorted(g, key=rank.__getitem__) for g in groups], per_group, room, put)
        elif binpack:
            first_fit(s, left, host_order, room, put)
        else:
            for _ in range(left):
                best = min(
                    (h for h in range(n_h) if room(s, h) > 0),
                    key=lambda h: (_load_after(c, residual[h], h, s), rank[h]),
                    default=None,
                )
                if best is None:
                    break
                put(s, best, 1)
    return x


def size_key_hosts(c: Compiled) -> list[float]:
    mean_cap = [max(1.0, sum(row[d] for row in c.cap) / max(1, c.n_hosts)) for d in range(len(c.dims))]
    return [sum(c.cap[h][d] / mean_cap[d] for d in range(len(c.dims))) for h in range(c.n_hosts)]


def _load_after(c: Compiled, residual: list[int], h: int, s: int) -> float:
    return max(
        ((c.cap[h][d] - residual[d] + c.demand[s][d]) / c.cap[h][d] for d in range(len(c.dims)) if c.cap[h][d]),
        default=0.0,
    )


Room = Callable[[int, int], int]  # (service, host) → replicas of it the host may still take
Put = Callable[[int, int, int], None]  # (service, host, replicas): place them and update the room


def first_fit(s: int, left: int, hosts: Iterable[int], room: Room, put: Put) -> None:
    """Up to `left` replicas of s, as many as fit on each host in `hosts` order (read only as far as needed)."""
    for h in hosts:
        n = min(left, room(s, h))
        if n > 0:
            put(s, h, n)
            left -= n
            if not left:
                return


def place_spread(
    s: int, left: int, groups: Sequence[Iterable[int]], per_group: list[int], room: Room, put: Put
) -> None:
    """One replica at a time into the group that has the fewest so far (`per_group`, counted by
    the caller, ties to the lower group), first fit inside it.

    A host that cannot take a replica of s now never can later (its room only shrinks while
    s is placed), so each group is read once, in order, and only as far as needed (a failover
    plan passes lazily merged orders over thousands of hosts).
    """
    per_group = list(per_group)
    rest = [iter(g) for g in groups]
    head: list[int | None] = [next(it, None) for it in rest]
    for _ in range(left):
        for gi in sorted(range(len(groups)), key=lambda g: (per_group[g], g)):
            h = head[gi]
            while h is not None and room(s, h) <= 0:
                h = head[gi] = next(rest[gi], None)
            if h is not None:
                put(s, h, 1)
                per_group[gi] += 1
                break
        else:
            return


def consolidate(c: Compiled, x: Counts) -> Counts:
    """Empty hosts one at a time, least loaded first, into the room other used hosts have left.

    A host is emptied only if every replica on it finds a place, so the host count only goes
    down. Replicas that run on the host now are never moved (that would add moves); a replica of
    a spread service moves only within its group, so the per-group counts stay as they are.
    """
    x = [row[:] for row in x]
    n_h = c.n_hosts
    load = [
        [sum(c.demand[s][d] * x[s][h] for s in range(c.n_services)) for d in range(len(c.dims))] for h in range(n_h)
    ]
    group_of: list[dict[int, int]] = [
        {h: gi for gi, g in enumerate(groups) for h in g} if groups else {} for groups in c.zones
    ]

    def fullness(h: int) -> float:
        return sum(load[h][d] / c.cap[h][d] for d in range(len(c.dims)) if c.cap[h][d])

    for victim in sorted(used_hosts(c, x), key=lambda h: (fullness(h), h)):
        if any(x[s][victim] and c.cur[s][victim] for s in range(c.n_services)):
            continue
        receivers = sorted((h for h in used_hosts(c, x) if h != victim), key=lambda h: (-fullness(h), h))
        trial: list[tuple[int, int, int]] = []  # (service, host, replicas) moved so far
        ok = True
        for s in sorted(range(c.n_services), key=lambda s: -sum(c.demand[s])):
            need = x[s][victim]
            for h in receivers if need else ():
                if group_of[s].get(h) != group_of[s].get(victim) or any(x[t][h] for t in c.conflicts[s]):
                    continue
                n = min(need, c.ub[s][h] - x[s][h])
                for d in range(len(c.dims)):
                    if c.demand[s][d]:
                        n = min(n, (c.cap[h][d] - load[h][d]) // c.demand[s][d])
                if n <= 0:
                    continue
                x[s][victim] -= n
                x[s][h] += n
                for d in range(len(c.dims)):
                    load[victim][d] -= c.demand[s][d] * n
                    load[h][d] += c.demand[s][d] * n
                trial.append((s, h, n))
                need -= n
                if not need:
                    break
            if need:
                ok = False
                break
        if not ok:
            for s, h, n in reversed(trial):  # undo: the victim stays in use
                x[s][h] -= n
                x[s][victim] += n
                for d in range(len(c.dims)):
                    load[h][d] -= c.demand[s][d] * n
                    load[victim][d] += c.demand[s][d] * n
    return x
