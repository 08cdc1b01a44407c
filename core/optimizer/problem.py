"""What the optimizer is asked (`PlacementProblem`) and what it answers (`PlacementResult`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from core.errors import InvalidProblem
from core.model import (
    CPU,
    MEM,
    ClusterConfig,
    HostState,
    Placement,
    ReplicaId,
    Resources,
    Service,
    SolverStatus,
    Strategy,
)


@dataclass(frozen=True, slots=True)
class HostSpec:
    """A host as the optimizer sees it: `capacity` is what may be filled (after reserve)."""

    name: str
    capacity: Resources
    labels: Mapping[str, str] = field(default_factory=dict)
    state: HostState = HostState.UP

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", MappingProxyType(dict(sorted(self.labels.items()))))

    @property
    def takes_new(self) -> bool:
        return self.state.accepts_work

    @property
    def keeps_current(self) -> bool:
        """SUSPECT hosts keep what they run (it may still be alive); DOWN/DRAINING/… keep nothing."""
        return self.state in (HostState.UP, HostState.SUSPECT)


@dataclass(frozen=True, slots=True)
class PlacementProblem:
    hosts: tuple[HostSpec, ...]
    services: tuple[Service, ...]
    current: Placement = field(default_factory=Placement)
    strategy: Strategy = Strategy.BINPACK

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_config(
        cls,
        config: ClusterConfig,
        capacities: Mapping[str, Resources],
        states: Mapping[str, HostState],
        current: Placement,
    ) -> PlacementProblem:
        """Hosts from the config; a host without a pinned capacity uses its probed one in `capacities`.

        A host in `unplannable` is left out: it keeps nothing and takes nothing, so that one host's
        numbers never make the whole problem invalid."""
        problems: list[str] = []
        hosts = []
        excluded = unplannable(config, capacities)
        for host in config.hosts:
            state = states.get(host.name, HostState.UNKNOWN)
            probed = capacities.get(host.name)
            if host.name in excluded:
                hosts.append(HostSpec(host.name, Resources(), host.labels, HostState.UNSUPPORTED))
                continue
            if host.capacity is None and probed is None:
                if state.accepts_work:
                    problems.append(
                        f'host "{host.name}" is up but has no capacity: pin `capacity` in {config.source} '
                        "or wait for its first probe"
                    )
                hosts.append(HostSpec(host.name, Resources(), host.labels, state))
                continue
            hosts.append(HostSpec(host.name, host.usable(probed), host.labels, state))
        if problems:
            raise InvalidProblem(problems)
        return cls(tuple(hosts), config.services, current, config.policy.strategy)

    def host(self, name: str) -> HostSpec:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def service(self, name: str) -> Service:
        for s in self.services:
            if s.name == name:
                return s
        raise KeyError(name)

    def targets(self) -> tuple[ReplicaId, ...]:
        """Every replica the services ask for, in service then index order."""
        return tuple(r for s in self.services for r in s.replica_ids())


def unplannable(config: ClusterConfig, capacities: Mapping[str, Resources]) -> dict[str, str]:
    """Hosts no plan may use, and why in words: a probed capacity no machine has (a host lying or broken),
    or a reserve larger than the capacity. Each concerns that host alone.

    The engine asks on every observation: plain comparisons, no `Resources` arithmetic (~1 ms at 1,000 hosts)."""
    out = {}
    for host in config.hosts:
        pinned = host.capacity is not None
        base = host.capacity if pinned else capacities.get(host.name)
        if base is None:
            continue
        if not pinned and (base.cpu <= 0 or base.mem <= 0 or any(v < 0 for v in base.extra.values())):
            amounts = ", ".join(f"{d} {v}" for d, v in base.as_dict().items())
            out[host.name] = f"reported an impossible capacity ({amounts})"
            continue
        reserve = host.reserve
        short = [CPU] if reserve.cpu > base.cpu else []
        short += [MEM] if reserve.mem > base.mem else []
        short += [d for d, v in reserve.extra.items() if v > base.extra.get(d, 0)]
        if short:
            out[host.name] = (
                f"reserve is larger than its capacity in {', '.join(short)} (lower `reserve` in {config.source})"
            )
    return out


def _validate(problem: PlacementProblem) -> None:
    problems: list[str] = []
    seen: set[str] = set()
    for h in problem.hosts:
        if h.name in seen:
            problems.append(f'host "{h.name}" is listed twice (host names must be unique)')
        seen.add(h.name)
        negative = [d for d, v in h.capacity.as_dict().items() if v < 0]
        if negative:
            problems.append(f'host "{h.name}" has a negative capacity in {", ".join(negative)}')
    names = [s.name for s in problem.services]
    for s in problem.services:
        if names.count(s.name) > 1 and names.index(s.name) != problem.services.index(s):
            problems.append(f'service "{s.name}" is listed twice (service names must be unique)')
        if s.replicas < 0:
            problems.append(f'service "{s.name}" asks for {s.replicas} replicas (use 0 or more)')
        negative = [d for d, v in s.resources.as_dict().items() if v < 0]
        if negative:
            problems.append(f'service "{s.name}" has a negative demand in {", ".join(negative)}')
        if s.max_per_host is not None and s.max_per_host < 1:
            problems.append(f'service "{s.name}" has max_per_host={s.max_per_host} (use 1 or more)')
        for other in s.avoid:
            if other not in names:
                problems.append(f'service "{s.name}" avoids "{other}", which is not a service')
    if problems:
        raise InvalidProblem(problems)


@dataclass(frozen=True, slots=True)
class PlacementResult:
    """A target placement with the solver's account of it.

    `objective` holds each lexicographic term of the final placement: `placed_weight`, `moves`,
    `spread_excess`, and `hosts_used` (binpack) or `max_load_permille` (spread).
    `gap` is (hosts_used - lower_bound) / hosts_used: 0 means provably fewest hosts.
    """

    placement: Placement
    unplaced: Mapping[ReplicaId, str]
    status: SolverStatus
    objective: Mapping[str, int]
    hosts_used: int
    lower_bound: int
    gap: float
    wall_time: float
    seed: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "unplaced", MappingProxyType(dict(sorted(self.unplaced.items()))))
        object.__setattr__(self, "objective", MappingProxyType(dict(self.objective)))

    def summary(self) -> str:
        """ "7 hosts, optimal" or "9 hosts, at most 1 above optimal", for the console."""
        if self.hosts_used <= self.lower_bound:
            return f"{self.hosts_used} hosts, optimal"
        return f"{self.hosts_used} hosts, at most {self.hosts_used - self.lower_bound} above optimal"
