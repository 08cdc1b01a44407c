"""A problem in index form: per service and host, how many replicas may go there and how many run there now.

Replicas of one service are interchangeable, so every solver works on counts
x[s][h] ("how many replicas of service s on host h") instead of one decision
per replica; `to_placement` turns counts back into stable replica ids.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.model import Placement, ReplicaId
from core.optimizer.problem import PlacementProblem

Counts = list[list[int]]  # [service][host]


@dataclass(frozen=True, slots=True)
class Compiled:
    problem: PlacementProblem
    dims: tuple[str, ...]  # dimensions any service asks for
    cap: tuple[tuple[int, ...], ...]  # [host][dim]
    demand: tuple[tuple[int, ...], ...]  # [service][dim]
    replicas: tuple[int, ...]
    takes_new: tuple[bool, ...]
    keeps: tuple[bool, ...]
    cur: tuple[tuple[int, ...], ...]  # [service][host]: valid replicas running there now, on hosts that keep them
    displaced: tuple[int, ...]  # [service]: valid current replicas on hosts that keep nothing (forced moves)
    ub: tuple[tuple[int, ...], ...]  # [service][host]: most replicas of s that host h may hold
    matches: tuple[tuple[bool, ...], ...]  # [service][host]: `require` labels hold
    avoid_pairs: tuple[tuple[int, int], ...]  # (s, t) with s < t that must not share a host
    conflicts: tuple[frozenset[int], ...]  # [service]: the services it must not share a host with (both ways)
    zones: tuple[tuple[tuple[int, ...], ...] | None, ...]  # [service]: host groups per spread label value
    max_per_host: tuple[int, ...]

    @property
    def n_hosts(self) -> int:
        return len(self.cap)

    @property
    def n_services(self) -> int:
        return len(self.demand)

    def fits_count(self, s: int, residual: list[int] | tuple[int, ...]) -> int:
        """How many replicas of s fit into `residual` (per dimension)."""
        best = self.replicas[s]
        for d, need in enumerate(self.demand[s]):
            if need > 0:
                best = min(best, residual[d] // need)
        return max(best, 0)


def compile_problem(problem: PlacementProblem) -> Compiled:
    hosts, services = problem.hosts, problem.services
    dims = tuple(sorted({d for s in services for d, v in s.resources.as_dict().items() if v > 0}))
    cap = tuple(tuple(h.capacity.get(d) for d in dims) for h in hosts)
    demand = tuple(tuple(s.resources.get(d) for d in dims) for s in services)
    host_index = {h.name: i for i, h in enumerate(hosts)}
    service_index = {s.name: i for i, s in enumerate(services)}
    keeps = tuple(h.keeps_current for h in hosts)
    takes_new = tuple(h.takes_new for h in hosts)

    cur = [[0] * len(hosts) for _ in services]
    displaced = [0] * len(services)
    for replica, host in problem.current.assignments.items():
        si = service_index.get(replica.service)
        if si is None or replica.index >= services[si].replicas:
            continue  # removed service or scaled down: not part of the target
        hi = host_index.get(host)
        if hi is None or not keeps[hi]:
            displaced[si] += 1
        else:
            cur[si][hi] += 1

    everywhere = (True,) * len(hosts)
    matches = tuple(
        tuple(all(h.labels.get(k) == v for k, v in s.require.items()) for h in hosts) if s.require else everywhere
        for s in services
    )
    max_per_host = tuple(s.max_per_host or s.replicas for s in services)
    labelled = {key: tuple(key in h.labels for h in hosts) for key in {s.spread_over for s in services} if key}
    ub = []
    for si, s in enumerate(services):
        needs = [(d, need) for d, need in enumerate(demand[si]) if need > 0]
        first = min(s.replicas, max_per_host[si])
        spread_ok = labelled[s.spread_over] if s.spread_over else everywhere
        row = []
        for hi in range(len(hosts)):
            # a spread service only runs where the label says which group the host is in
            if not (matches[si][hi] and spread_ok[hi] and (takes_new[hi] or cur[si][hi])):
                row.append(0)
                continue
            limit = first
            capacity = cap[hi]
            for d, need in needs:
                limit = min(limit, capacity[d] // need)
            if not takes_new[hi]:
                limit = min(limit, cur[si][hi])  # SUSPECT: keeps what it runs, takes nothing new
            row.append(max(limit, 0))
        ub.append(tuple(row))

    pairs = set()
    for si, s in enumerate(services):
        for other in s.avoid:
            ti = service_index[other]
            if ti != si:
                pairs.add((min(si, ti), max(si, ti)))

    conflicts: list[set[int]] = [set() for _ in services]
    for si, ti in pairs:
        conflicts[si].add(ti)
        conflicts[ti].add(si)

    zones: list[tuple[tuple[int, ...], ...] | None] = []
    for si, s in enumerate(services):
        if s.spread_over is None:
            zones.append(None)
            continue
        groups: dict[str, list[int]] = {}
        for hi, h in enumerate(hosts):
            if ub[si][hi] > 0:
                groups.setdefault(h.labels[s.spread_over], []).append(hi)
        zones.append(tuple(tuple(groups[v]) for v in sorted(groups)))

    return Compiled(
        problem=problem,
        dims=dims,
        cap=cap,
        demand=demand,
        replicas=tuple(s.replicas for s in services),
        takes_new=takes_new,
        keeps=keeps,
        cur=tuple(tuple(row) for row in cur),
        displaced=tuple(displaced),
        ub=tuple(ub),
        matches=matches,
        avoid_pairs=tuple(sorted(pairs)),
        conflicts=tuple(frozenset(row) for row in conflicts),
        zones=tuple(zones),
        max_per_host=max_per_host,
    )


def to_placement(c: Compiled, x: Counts) -> Placement:
    """Counts → replica ids: replicas already on a host stay there, the rest take free ids in order."""
    problem = c.problem
    assignments: dict[ReplicaId, str] = {}
    for si, service in enumerate(problem.services):
        free_slots: list[str] = []
        kept: set[int] = set()
        by_host: dict[str, list[int]] = {}
        for replica, host in problem.current.assignments.items():
            if replica.service == service.name and replica.index < service.replicas:
                by_host.setdefault(host, []).append(replica.index)
        for hi, h in enumerate(problem.hosts):
            n = x[si][hi]
            if n <= 0:
                continue
            stay = sorted(by_host.get(h.name, ()))[:n] if c.keeps[hi] else []
            for index in stay:
                assignments[ReplicaId(service.name, index)] = h.name
                kept.add(index)
            free_slots.extend([h.name] * (n - len(stay)))
        # replicas that run elsewhere now take the free slots first, so they move instead of stop + start
        running = {r.index for r in problem.current.assignments if r.service == service.name}
        free_ids = sorted(i for i in range(service.replicas) if i not in kept and i in running)
        free_ids += [i for i in range(service.replicas) if i not in kept and i not in running]
        for index, host in zip(free_ids, free_slots, strict=False):
            assignments[ReplicaId(service.name, index)] = host
    return Placement(assignments)


def moves_of(c: Compiled, x: Counts) -> int:
    """Replicas that leave the host they run on now: forced ones (host lost) that get placed, plus chosen ones."""
    moves = 0
    for s in range(c.n_services):
        placed = sum(x[s])
        stay = sum(min(c.cur[s][h], x[s][h]) for h in range(c.n_hosts))
        running = sum(c.cur[s]) + c.displaced[s]
        # every running replica that is not kept is either moved or stopped; only placed ones are moves
        moves += min(running - stay, placed - stay)
    return moves


def weights(c: Compiled) -> tuple[int, ...]:
    """Per service, the weight of one placed replica.

    Priorities are strict: one replica of a higher priority outweighs every replica of all lower
    priorities together, so weights grow by (replicas below + 1) per priority level. When that
    would exceed 2**40 (many levels with many replicas) the weight is priority rank + 1, which still
    prefers higher priorities but may trade one of them for several lower ones.
    """
    services = c.problem.services
    levels = sorted({s.priority for s in services})
    level_weight: dict[int, int] = {}
    w, below = 1, 0
    for p in levels:
        level_weight[p] = w
        below += sum(s.replicas for s in services if s.priority == p)
        w = w * (below + 1)
    if max(level_weight.values(), default=1) * max(sum(c.replicas), 1) > 2**40:
        level_weight = {p: i + 1 for i, p in enumerate(levels)}
    return tuple(level_weight[s.priority] for s in services)


def loads(c: Compiled, x: Counts) -> list[list[int]]:
    load = [[0] * len(c.dims) for _ in range(c.n_hosts)]
    for s in range(c.n_services):
        dem = c.demand[s]
        for h, n in enumerate(x[s]):
            if n:
                row = load[h]
                for d, v in enumerate(dem):
                    row[d] += v * n
    return load


def spread_excess(c: Compiled, x: Counts) -> int:
    """Sum over spread services of how far max-min of the per-group counts exceeds 1."""
    excess = 0
    for s, groups in enumerate(c.zones):
        if groups:
            per = [sum(x[s][h] for h in g) for g in groups]
            excess += max(0, max(per) - min(per) - 1)
    return excess


def objective_terms(c: Compiled, x: Counts, binpack: bool) -> dict[str, int]:
    w = weights(c)
    terms = {
        "placed_weight": sum(w[s] * sum(x[s]) for s in range(c.n_services)),
        "placed": sum(map(sum, x)),
        "moves": moves_of(c, x),
        "spread_excess": spread_excess(c, x),
        "hosts_used": hosts_used(c, x),
    }
    if not binpack:
        terms["max_load_permille"] = max_load_permille(c, x)
    return terms


def used_hosts(c: Compiled, x: Counts) -> list[int]:
    """Hosts that hold at least one replica in `x`, in host order."""
    return [h for h in range(c.n_hosts) if any(x[s][h] for s in range(c.n_services))]


def hosts_used(c: Compiled, x: Counts) -> int:
    return len(used_hosts(c, x))


def hosts_independent(c: Compiled) -> bool:
    """True when a few hosts may be packed again on their own: no rule links replicas across hosts
    (spread, avoid) and nothing runs yet (moves would need the whole picture). Both repacking
    hosts a few at a time and the arc-flow model need it."""
    return not c.avoid_pairs and not any(c.zones) and not any(map(any, c.cur)) and not any(c.displaced)


def max_load_permille(c: Compiled, x: Counts) -> int:
    worst = 0
    for h, row in enumerate(loads(c, x)):
        if c.takes_new[h]:
            for d, v in enumerate(row):
                if c.cap[h][d] > 0:
                    worst = max(worst, v * 1000 // c.cap[h][d])
    return worst
