"""`View`: one observation of the fleet and what follows from it — the picture a tick's stages share.

Made by the observer (core.engine.observer) once per observation and never changed after: its derived
parts (the basis, its fingerprint, usable capacities) are computed once, on first use, or carried over from
the previous view when the observer knows they are the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

from core.engine.basis import basis_of, fingerprint, generation
from core.engine.reconcile import Reconciliation
from core.model import (
    Action,
    ActionKind,
    Basis,
    ClusterConfig,
    HostObservation,
    HostState,
    Placement,
    ReplicaStatus,
    Resources,
)


@dataclass(frozen=True)
class View:
    """One observation of the fleet and what follows from it (immutable; derived parts computed once)."""

    seq: int  # the how-manieth observation
    at: float
    config: ClusterConfig
    observations: Mapping[str, HostObservation]
    states: Mapping[str, HostState]  # as observed
    planning: Mapping[str, HostState]  # as the optimizer sees them: a host back from the dead settles first
    records: Mapping[str, tuple[ReplicaStatus, ...]]  # per host, our own unseen starts/stops included
    rec: Reconciliation
    halted: Mapping[str, str] = field(default_factory=dict)  # service → generation whose rollout stopped

    @property
    def current(self) -> Placement:
        return self.rec.current

    @cached_property
    def basis(self) -> Basis:
        # Hosts as planned for: only a settling host differs from its observation.
        planning = self.planning
        hosts = {
            n: o if planning.get(n, o.state) is o.state else replace(o, state=planning[n])
            for n, o in self.observations.items()
        }
        return basis_of(self.config, hosts, self.rec.current)

    @cached_property
    def fingerprint(self) -> str:
        return fingerprint(self.basis)

    def carry(self, before: View) -> None:
        """Take `before`'s basis and fingerprint: the same config, host states and placement (the observer
        knows), so the same values, without building them again."""
        self.__dict__["basis"] = before.basis  # what cached_property stores: frozen, yet computed once
        self.__dict__["fingerprint"] = before.fingerprint

    def restarts_needed(self, target: Placement) -> list[Action]:
        """Replicas that stay where they run but were started from an older definition of their service
        (not those of a service whose rollout to its current definition stopped: core.engine.rollout)."""
        gens = {s.name: generation(s) for s in self.config.services}
        gens = {name: g for name, g in gens.items() if self.halted.get(name) != g}
        out = []
        for host, records in self.records.items():
            if not self.states.get(host, HostState.UNKNOWN).reachable:
                continue
            for r in records:
                want = gens.get(r.replica.service)
                if r.running and want and r.generation and r.generation != want and target.host_of(r.replica) == host:
                    out.append(Action(ActionKind.RESTART, r.replica, host, host))
        return sorted(out, key=lambda a: a.replica)

    @cached_property
    def probed(self) -> Mapping[str, Resources]:
        return {n: o.capacity for n, o in self.observations.items() if o.capacity is not None}

    @cached_property
    def usable(self) -> Mapping[str, Resources]:
        """What loadmaster may fill on each host of the config (pinned, else probed, minus reserve)."""
        probed = self.probed
        return {h.name: h.usable(probed.get(h.name)) for h in self.config.hosts}
