"""Placements and the plans that change them: replicas, actions, solver status, bases, failover plans."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True, order=True)
class ReplicaId:
    """A stable replica identity, written `service/index` (e.g. `web/3`)."""

    service: str
    index: int

    def __str__(self) -> str:
        return f"{self.service}/{self.index}"

    @classmethod
    def parse(cls, text: str) -> ReplicaId:
        service, sep, index = text.rpartition("/")
        if not sep or not service or not (index.isascii() and index.isdigit()):
            raise ValueError(f"{text!r} is not a replica id (use service/index, e.g. web/3)")
        return cls(service, int(index))

    @property
    def order(self) -> tuple[str, int]:
        """The sort key of its order: sorting by it compares in C, where the generated `__lt__` is a Python
        call per comparison (a placement of 10,000 replicas sorted 20 ms faster)."""
        return (self.service, self.index)


@dataclass(frozen=True, slots=True)
class Placement:
    """Which host runs each replica."""

    assignments: Mapping[ReplicaId, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ordered = sorted(self.assignments.items(), key=_by_replica)  # replica ids are unique keys: replica order
        object.__setattr__(self, "assignments", MappingProxyType(dict(ordered)))

    def host_of(self, replica: ReplicaId) -> str | None:
        return self.assignments.get(replica)

    def on_host(self, host: str) -> tuple[ReplicaId, ...]:
        return tuple(r for r, h in self.assignments.items() if h == host)

    def hosts_used(self) -> frozenset[str]:
        return frozenset(self.assignments.values())

    def __hash__(self) -> int:
        return hash(tuple(self.assignments.items()))


def _by_replica(item: tuple[ReplicaId, str]) -> tuple[str, int]:
    return item[0].order


class ActionKind(enum.StrEnum):
    START = "start"
    STOP = "stop"
    MOVE = "move"  # start on `to_host`, then stop on `from_host`
    RESTART = "restart"  # stop, then start in place from the current definition (from_host == to_host)


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    replica: ReplicaId
    from_host: str | None = None
    to_host: str | None = None

    def __str__(self) -> str:
        if self.kind is ActionKind.MOVE:
            return f"move {self.replica} {self.from_host} → {self.to_host}"
        if self.kind is ActionKind.START:
            return f"start {self.replica} on {self.to_host}"
        if self.kind is ActionKind.RESTART:
            return f"restart {self.replica} on {self.to_host} (definition changed)"
        return f"stop {self.replica} on {self.from_host}"


def diff_actions(current: Placement, target: Placement) -> tuple[Action, ...]:
    """The actions that turn `current` into `target`, in replica order."""
    actions: list[Action] = []
    for replica in sorted(current.assignments.keys() | target.assignments.keys(), key=lambda r: r.order):
        src, dst = current.host_of(replica), target.host_of(replica)
        if src == dst:
            continue
        if src is None:
            actions.append(Action(ActionKind.START, replica, to_host=dst))
        elif dst is None:
            actions.append(Action(ActionKind.STOP, replica, from_host=src))
        else:
            actions.append(Action(ActionKind.MOVE, replica, from_host=src, to_host=dst))
    return tuple(actions)


class SolverStatus(enum.StrEnum):
    OPTIMAL = "OPTIMAL"
    FEASIBLE = "FEASIBLE"
    INFEASIBLE = "INFEASIBLE"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True, slots=True)
class Plan:
    """A target placement and the actions that reach it, with the solver's account of it."""

    cluster: str
    basis: str  # fingerprint of the observed placement + config it was computed from
    created_at: float  # unix seconds
    current: Placement
    target: Placement
    actions: tuple[Action, ...]
    status: SolverStatus
    hosts_used: int
    lower_bound: int  # fewest hosts any placement could use
    gap: float  # (hosts_used - lower_bound) / hosts_used, 0 when optimal
    unplaced: Mapping[ReplicaId, str] = field(default_factory=dict)  # replica → why
    reason: str = "rebalance"  # rebalance | failover:<host> | drift
    assumed: Basis | None = None  # what `basis` fingerprints, to say what changed when stale
    # replica → why no action touches it now: its host cannot be reached and is not declared down yet
    waiting: Mapping[ReplicaId, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Basis:
    """The part of the world a plan depends on; a plan is stale once this changes."""

    hosts: Mapping[str, str]  # host → state (only whether it takes work matters)
    services: Mapping[str, int]  # service → replicas declared
    generations: Mapping[str, str]  # service → spec fingerprint (command, resources, constraints)
    placement: Mapping[ReplicaId, str]  # what ran where


@dataclass(frozen=True, slots=True)
class FailoverPlan:
    """What happens if `target` (a host, or every host with a label value) is lost now."""

    scope: str  # "host" or a label key such as "zone"
    target: str  # host name or label value
    lost_hosts: tuple[str, ...]
    moves: Mapping[ReplicaId, str]  # displaced replica → new host
    unplaced: Mapping[ReplicaId, str]  # displaced replica → why it has nowhere to go
    degraded: tuple[str, ...]  # services left below their replica count
    status: SolverStatus = SolverStatus.OPTIMAL
    others_moved: int = 0  # replicas not on the lost hosts that had to move too

    @property
    def survives(self) -> bool:
        return not self.unplaced
