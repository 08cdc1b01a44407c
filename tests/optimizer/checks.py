"""Independent checks of a placement against every rule of the problem (no optimizer code used)."""

from __future__ import annotations

from collections import Counter

from core.model import HostState, Resources, Service
from core.optimizer import HostSpec, PlacementProblem, PlacementResult

GIB = 2**30


def host(name: str, cpu: float, mem_gib: float, state: HostState = HostState.UP, **labels: str) -> HostSpec:
    return HostSpec(name, Resources(int(cpu * 1000), int(mem_gib * GIB)), labels, state)


def service(name: str, replicas: int, cpu: float, mem_gib: float = 0.25, **kw: object) -> Service:
    return Service(name, "true", replicas, Resources(int(cpu * 1000), int(mem_gib * GIB)), **kw)  # type: ignore[arg-type]


def violations(problem: PlacementProblem, result: PlacementResult) -> list[str]:
    """Every broken rule, in words; empty when the result is valid."""
    out: list[str] = []
    hosts = {h.name: h for h in problem.hosts}
    services = {s.name: s for s in problem.services}
    load: dict[str, Resources] = {}
    per_host: Counter[tuple[str, str]] = Counter()
    for replica, name in result.placement.assignments.items():
        s = services.get(replica.service)
        if s is None or replica.index >= s.replicas:
            out.append(f"{replica} is not a target replica")
            continue
        h = hosts.get(name)
        if h is None:
            out.append(f"{replica} on unknown host {name}")
            continue
        was_there = problem.current.host_of(replica) == name
        if h.state is not HostState.UP and not (h.state is HostState.SUSPECT and was_there):
            out.append(f"{replica} on {name}, which is {h.state.value}")
        if any(h.labels.get(k) != v for k, v in s.require.items()):
            out.append(f"{replica} on {name}, which lacks {dict(s.require)}")
        if s.spread_over and s.spread_over not in h.labels:
            out.append(f"{replica} on {name}, which has no {s.spread_over} label")
        load[name] = load.get(name, Resources()) + s.resources
        per_host[s.name, name] += 1
    for name, used in load.items():
        if not used.fits(hosts[name].capacity):
            out.append(f"{name} over capacity: {used.as_dict()} > {hosts[name].capacity.as_dict()}")
    for (sname, name), n in per_host.items():
        limit = services[sname].max_per_host
        if limit is not None and n > limit:
            out.append(f"{n} replicas of {sname} on {name} (max_per_host={limit})")
        for other in services[sname].avoid:
            if per_host[other, name]:
                out.append(f"{sname} shares {name} with {other}, which it avoids")
    for s in problem.services:
        for r in s.replica_ids():
            placed = result.placement.host_of(r) is not None
            if placed == (r in result.unplaced):
                out.append(f"{r} is {'both placed and' if placed else 'neither placed nor'} unplaced")
            if r in result.unplaced and not result.unplaced[r].strip():
                out.append(f"{r} unplaced without a reason")
    return out


def zone_counts(problem: PlacementProblem, result: PlacementResult, service_name: str, label: str) -> Counter[str]:
    hosts = {h.name: h for h in problem.hosts}
    return Counter(
        hosts[name].labels[label] for r, name in result.placement.assignments.items() if r.service == service_name
    )
