"""What the front ends (console, headless daemon, CLI) see of the engine.

The console depends only on this module: a `Snapshot` to draw, an event
stream to follow, and the `EngineAPI` calls that change anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from core.engine.events import Event, EventKind
from core.engine.fencing import ControllerStatus
from core.model import (
    Action,
    ClusterConfig,
    FailoverPlan,
    HostObservation,
    Placement,
    Plan,
    ReplicaId,
    ReplicaStatus,
)


@dataclass(frozen=True, slots=True)
class ApplyProgress:
    plan: Plan
    total: int
    done: tuple[Action, ...] = ()
    running: tuple[Action, ...] = ()
    failed: Mapping[Action, str] = field(default_factory=dict)  # action → error

    @property
    def finished(self) -> bool:
        return len(self.done) + len(self.failed) >= self.total


@dataclass(frozen=True, slots=True)
class SolveProgress:
    """How far a running solve has got, for a spinner that says more than "busy"."""

    elapsed: float  # seconds since the solve started
    best_hosts: int | None = None  # hosts used by the best placement found so far
    lower_bound: int | None = None  # proven fewest hosts so far
    solutions: int = 0  # improving placements found so far


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a front end draws, as of `at` (unix seconds)."""

    at: float
    config: ClusterConfig
    hosts: Mapping[str, HostObservation]  # by host name, every host in the config
    placement: Placement  # what runs now, as the hosts report it
    failover: tuple[FailoverPlan, ...] = ()  # one per host, then one per value of each label a service spreads over
    pending: Plan | None = None
    pending_why: str | None = None  # why `pending` waits: "cooldown until 14:02:11", "waits for approval: …"
    applying: ApplyProgress | None = None
    unplaced: Mapping[ReplicaId, str] = field(default_factory=dict)  # desired but not placeable, and why
    fits_on: int | None = None  # optimizer's lower bound on hosts needed
    runs_on: int = 0  # hosts running at least one replica
    auto_apply: bool = False
    read_only: bool = False
    demo: bool = False  # demo controls (stop/restart a demo host) are available
    solving: bool = False  # a plan is being computed now
    solve_progress: SolveProgress | None = None  # set while `solving`, when the solver reports it
    controller: ControllerStatus | None = None  # who acts on the cluster: this controller, or which other one
    foreign: tuple[ReplicaStatus, ...] = ()  # live copies the journal never started: reported, left alone
    retrying: Mapping[ReplicaId, str] = field(default_factory=dict)  # failed actions: "retrying (n): reason"
    holds: Mapping[str, str] = field(default_factory=dict)  # host → "cordoned" | "draining" | "drained"
    rollouts_halted: Mapping[str, str] = field(default_factory=dict)  # service → why its rolling update stopped

    def running(self) -> dict[ReplicaId, list[str]]:
        """Replica → the reachable hosts that report it running (more than one only in a move or a split)."""
        out: dict[ReplicaId, list[str]] = {}
        for name, obs in self.hosts.items():
            if obs.state.reachable:
                for r in obs.replicas:
                    if r.running:
                        out.setdefault(r.replica, []).append(name)
        return out


class EngineAPI(Protocol):
    """The calls a front end makes. Every change goes through these, and each refuses under read-only."""

    def snapshot(self) -> Snapshot: ...

    def subscribe(self) -> asyncio.Queue[Event]:
        """A queue that receives every event from now on (including `state.updated`)."""
        ...

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None: ...

    def recent_events(self) -> tuple[Event, ...]:
        """The last events (bounded), oldest first, for a screen that opens late."""
        ...

    async def plan(self, *, repack: bool = False) -> Plan:
        """Compute a plan from the current snapshot and make it the pending plan.

        It moves as few running replicas as it can; `repack` puts the fewest hosts first instead.
        """
        ...

    async def approve(self, plan: Plan) -> None:
        """Approve and apply `plan`; raises StalePlan if the fleet moved on, ReadOnly under --read-only."""
        ...

    async def reject(self, plan: Plan) -> None: ...

    def what_if(self, host: str) -> FailoverPlan:
        """The failover plan if `host` died now; changes nothing."""
        ...

    def export(self, plan: Plan, path: str, fmt: str) -> None:
        """Write `plan` as json, csv or toml."""
        ...

    async def stop_demo_host(self, host: str) -> None:
        """Demo only: crash a demo host (its server and replicas end)."""
        ...

    async def restore_demo_host(self, host: str) -> None: ...

    async def set_demo_load(self, service: str, share: float) -> str:
        """Demo only: the service's replicas burn `share` of their cpu request (BadLoad says why not); in words."""
        ...

    async def wedge_demo_replica(self, replica: ReplicaId) -> str:
        """Demo only: the replica's demo server answers 503 from now on, so its http check fails (the engine
        then restarts it); returns the host it runs on. LoadmasterError when it does not run the demo server."""
        ...

    async def cordon(self, host: str) -> None:
        """No new replica goes to `host` (kept across restarts); UnknownHost, ReadOnly."""
        ...

    async def drain(self, host: str) -> Plan | None:
        """Cordon `host` and move its replicas off now, within min_healthy; the plan applied, if any."""
        ...

    async def uncordon(self, host: str) -> None:
        """Lift a cordon or a drain."""
        ...

    def reload(self, config: ClusterConfig, *, guarded: bool = True, revision: str | None = None) -> list[str]:
        """Adopt a new desired state (the file was edited and is valid); returns what changed, in words.
        `revision`: the file's (core.desired's), when the caller read or wrote it — a file watch skips it."""
        ...

    def record(self, kind: EventKind, message: str, *, data: Mapping[str, object] | None = None) -> None:
        """An event a front end made happen: journaled and streamed like the engine's own."""
        ...

    async def restart_replica(self, replica: ReplicaId) -> ApplyProgress:
        """Stop and start one replica where it runs (journaled; refused below min_healthy or under read-only)."""
        ...

    def trust_host_key(self, host: str, fingerprint: str) -> str:
        """Trust the host key `host` presented and was refused for, which the operator saw as `fingerprint`:
        recorded in the known_hosts accept-new writes to (the one the cluster file names), the host connected
        again; the file's path. LoadmasterError when the host presents another key now; ReadOnly under read-only."""
        ...

    def replica_log(self, host: str, replica: ReplicaId, lines: int, *, follow: bool = False) -> AsyncIterator[bytes]:
        """`replica`'s stdout and stderr on `host` as written: the last `lines` lines, then with `follow` what it
        writes, until the iterator is closed (hostlink's log reader; allowed under read-only: it changes nothing).
        LoadmasterError when the fleet keeps no logs or the host cannot be reached."""
        ...

    async def stop_replica(self, replica: ReplicaId) -> ApplyProgress:
        """Stop one replica; the next plan places it again (journaled; refused below min_healthy or read-only)."""
        ...
