"""Repair: exactly-once clean-up that needs no plan — extra copies, dead records, crashed replicas.

State owned here, and who changes it: the restart backoff per (replica, host) (`_restarts`) and the
pairs given up on after too many crashes (`given_up`). Only `tidy` changes them, called by the
engine's tick when no plan is being applied; the observer reads `given_up` so that a replica that
keeps crashing drops out of the placement and the next plan puts it elsewhere.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from core.engine.basis import generation
from core.engine.events import Emit, EventKind
from core.engine.ports import ReplicaRuntime
from core.engine.reconcile import Reconciliation
from core.errors import LoadmasterError
from core.model import ClusterConfig, ReplicaId, ReplicaStatus, Service

T = TypeVar("T")
RESTART_BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0)  # then the replica is moved instead


class Repairer:
    def __init__(self, runtime: ReplicaRuntime, clock: Callable[[], float], emit: Emit):
        self._runtime, self._clock, self._emit = runtime, clock, emit
        self._restarts: dict[tuple[ReplicaId, str], tuple[int, float]] = {}  # → (attempts, not before)
        self._given_up: set[tuple[ReplicaId, str]] = set()
        self._restarted: dict[tuple[ReplicaId, str], int | None] = {}  # → pid of the unhealthy process restarted

    @property
    def given_up(self) -> frozenset[tuple[ReplicaId, str]]:
        return frozenset(self._given_up)

    async def tidy(self, config: ClusterConfig, rec: Reconciliation, stop_grace: float) -> None:
        for replica, host in rec.duplicates:
            await self._quietly(self._runtime.stop_replica(host, replica, stop_grace))
            self._emit(EventKind.REPLICA_STOPPED, f"{replica} also ran on {host}: stopped that copy", host, replica)
        for replica, host in rec.stale:
            await self._quietly(self._runtime.stop_replica(host, replica, 0))
        now = self._clock()
        services = {s.name: s for s in config.services}
        for replica, host in rec.crashed:
            service = services.get(replica.service)
            if service is None or replica.index >= service.replicas:
                await self._quietly(self._runtime.stop_replica(host, replica, 0))
                continue
            attempts, not_before = self._restarts.get((replica, host), (0, 0.0))
            if now < not_before:
                continue
            if attempts >= len(RESTART_BACKOFF):
                self._given_up.add((replica, host))
                self._emit(EventKind.REPLICA_CRASHED, f"{replica} keeps crashing on {host}: moving it", host, replica)
                continue
            self._restarts[(replica, host)] = (attempts + 1, now + RESTART_BACKOFF[attempts])
            status = await self._quietly(self._runtime.start_replica(host, service, replica.index, generation(service)))
            if isinstance(status, ReplicaStatus) and status.running:
                self._emit(EventKind.REPLICA_STARTED, f"{replica} restarted in place on {host}", host, replica)
        for sick in rec.unhealthy:
            await self._restart_unhealthy(services, sick, now, stop_grace)

    async def _restart_unhealthy(
        self, services: dict[str, Service], sick: ReplicaStatus, now: float, stop_grace: float
    ) -> None:
        """An unhealthy replica: restarted in place with the crash backoff, then given up on (and moved)."""
        replica, host = sick.replica, sick.host
        service = services.get(replica.service)
        if service is None or self._restarted.get((replica, host)) == sick.pid:
            return  # this very process was restarted already: a frame from before the restart
        attempts, not_before = self._restarts.get((replica, host), (0, 0.0))
        if now < not_before:
            return
        if attempts >= len(RESTART_BACKOFF):
            self._given_up.add((replica, host))
            self._emit(EventKind.REPLICA_UNHEALTHY, f"{replica} stays unhealthy on {host}: moving it", host, replica)
            return
        self._restarts[(replica, host)] = (attempts + 1, now + RESTART_BACKOFF[attempts])
        self._restarted[(replica, host)] = sick.pid
        await self._quietly(self._runtime.stop_replica(host, replica, stop_grace))
        status = await self._quietly(self._runtime.start_replica(host, service, replica.index, generation(service)))
        if isinstance(status, ReplicaStatus) and status.running:
            why = f" ({sick.health_detail})" if sick.health_detail else ""
            self._emit(
                EventKind.REPLICA_STARTED, f"{replica} was unhealthy{why}: restarted in place on {host}", host, replica
            )

    async def _quietly(self, aw: Awaitable[T]) -> T | None:
        """Run a clean-up step; a failure is an event, not a reason to stop the loop."""
        try:
            return await aw
        except (TimeoutError, LoadmasterError, OSError) as exc:
            self._emit(EventKind.ACTION_FAILED, str(exc))
            return None
