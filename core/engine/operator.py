"""What an operator asks of one replica or one host from a front end, outside any plan the engine makes:
restart or stop a replica, read its log, trust the host key a host presented; and the demo fleet's controls.

`OperatorCalls` is a base of `Engine` (core/engine/engine.py), kept here so the engine stays the life cycle
and the loop. A replica's restart or stop is a one-action plan, applied like any other (journaled, fenced,
refused below min_healthy or on a host that cannot be reached); reading a log changes nothing; trusting a key
writes the known_hosts that accept-new writes to. Every change is refused under --read-only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from core.engine.api import ApplyProgress
from core.engine.events import EventKind
from core.engine.planner import one_replica_plan
from core.engine.ports import DemoControl, FleetPort, KeyTrust, LogReader
from core.engine.view import View
from core.errors import LoadmasterError, ReadOnly
from core.model import ActionKind, ClusterConfig, Plan, ReplicaId


class _Engine(Protocol):
    """The parts of `Engine` these calls use."""

    read_only: bool
    _fleet: FleetPort
    _demo: DemoControl | None
    _config: ClusterConfig
    _clock: Callable[[], float]

    @property
    def _view(self) -> View: ...

    def _emit(self, kind: EventKind, message: str, host: str | None = None, replica: ReplicaId | None = None,
              data: Any = None) -> None: ...  # fmt: skip

    def _observe(self) -> Any: ...

    def _refuse_unless_acting(self, what: str) -> None: ...

    async def _apply(self, plan: Plan) -> ApplyProgress: ...


class OperatorCalls:
    async def restart_replica(self: _Engine, replica: ReplicaId) -> ApplyProgress:
        """Stop and start one replica in place, asked by the operator."""
        return await OperatorCalls._one_replica(self, replica, ActionKind.RESTART)

    async def stop_replica(self: _Engine, replica: ReplicaId) -> ApplyProgress:
        """Stop one replica, asked by the operator; the file still wants it, so the next plan places it again
        (on any host, as Nomad's `alloc stop` reschedules)."""
        return await OperatorCalls._one_replica(self, replica, ActionKind.STOP)

    async def _one_replica(self: _Engine, replica: ReplicaId, kind: ActionKind) -> ApplyProgress:
        self._refuse_unless_acting(f"{kind.value} {replica}")
        self._observe()  # where it runs now, not as of the last tick
        plan = one_replica_plan(self._view, replica, kind, self._clock())
        host = plan.actions[0].from_host
        self._emit(EventKind.PLAN_APPROVED, f"{kind.value} {replica} on {host}, asked by the operator", host=host,
                   replica=replica)  # fmt: skip
        return await self._apply(plan)

    def replica_log(
        self: _Engine, host: str, replica: ReplicaId, lines: int, *, follow: bool = False
    ) -> AsyncIterator[bytes]:
        """`replica`'s log on `host` through the fleet's log reader (reading changes nothing: read-only may)."""
        if not isinstance(self._fleet, LogReader):
            raise LoadmasterError("this fleet keeps no replica logs")
        return self._fleet.log_stream(host, replica, lines, follow)

    def trust_host_key(self: _Engine, host: str, fingerprint: str) -> str:
        """Trust the refused key `host` presents, that the operator saw as `fingerprint` (journaled; refused under
        --read-only): recorded in the known_hosts accept-new writes to, and the host connected again. The file."""
        if self.read_only:
            raise ReadOnly(f"trust {host}'s host key")
        if not isinstance(self._fleet, KeyTrust):
            raise LoadmasterError("this fleet has no host keys to trust")
        written = str(self._fleet.trust_host_key(host, fingerprint))
        self._emit(EventKind.HOST_KEY_TRUSTED, f"{host}: host key {fingerprint} trusted by the operator, in {written}",
                   host=host, data={"fingerprint": fingerprint, "known_hosts": written})  # fmt: skip
        return written

    # -- the demo fleet's controls (the console's keys, `loadmaster demo --wedge`) --

    async def stop_demo_host(self: _Engine, host: str) -> None:
        await OperatorCalls._demo_for(self, "stop", f"demo host {host}").crash(host)

    async def restore_demo_host(self: _Engine, host: str) -> None:
        await OperatorCalls._demo_for(self, "restore", f"demo host {host}").restore(host)

    async def set_demo_load(self: _Engine, service: str, share: float) -> str:
        loads = OperatorCalls._demo_for(self, "set the load of", service).set_load(self._config, {service: share})
        return "; ".join(str(load) for load in loads)

    def _demo_for(self: _Engine, verb: str, what: str) -> DemoControl:
        if self._demo is None:
            raise LoadmasterError(f"not a demo fleet: cannot {verb} {what}")
        if self.read_only:
            raise ReadOnly(f"{verb} {what}")
        return self._demo

    async def wedge_demo_replica(self: _Engine, replica: ReplicaId) -> str:
        host, pid = await OperatorCalls._demo_for(self, "wedge", f"demo replica {replica}").wedge(replica)
        self._emit(EventKind.DEMO_WEDGED, f"{replica} wedged on {host} (pid {pid}): it answers 503 until restarted",
                   host=host, replica=replica)  # fmt: skip
        return host
