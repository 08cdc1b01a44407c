"""Rolling updates and moves gated on health (issue 11, build 2).

A restart (the service's definition changed) and a move both start a new copy of a replica; the apply
goes on only once the hosts' frames say that copy passes its service's check:
- a restart touches the next replica of its service only once the new copy is healthy. A new copy that
  fails (its check says unhealthy, it exits, or it is not healthy within its budget) halts the rollout
  of that service: the plan's remaining restarts of it are not made, so the old replicas keep serving,
  and no plan restarts them for that definition again (`Rollouts.halted`, read by the planner's view)
  until the file defines the service differently;
- a move stops its source copy only once the target copy is healthy; a target copy that fails is
  stopped and the source copy kept. A failover move (its source host is lost) does not wait: the wait
  would hold up the engine's tick, which notices the next host to fail; the replica counts as back
  (towards min_healthy, `healthy` in status) only once its check passes, as every replica does.
- a wait ends early when a host that was reachable goes down (`Interrupted`): the plan stops beginning
  gated steps, so that the failover it needs is not held up behind a rollout; the rollout is planned
  again afterwards (it did not fail).

State owned here: the halted rollouts (`Rollouts`), changed only by `halt`, called by the apply, and
`forget`, called by the engine after a reload. They are kept in the store's shared map `rollouts`
(core.store.shared_map: `~/.loadmaster/<cluster>/journal.rollouts.json` beside the journal, or a key per
service in etcd), so that a restarted controller, or a new leader, does not replace another old replica with
a definition that already failed, and `status` shows them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from core.engine.basis import generation
from core.engine.events import EventKind
from core.errors import LoadmasterError
from core.model import Health, HostObservation, ReplicaId, ReplicaStatus, Service
from core.store.shared_map import FileMap, MapError, SharedMap

STEP = 0.1  # seconds between looks at the frames while a new copy starts


def budget(service: Service, poll_interval: float) -> float:
    """How long a new copy of `service` has to pass its check: grace + unhealthy_after × interval
    (after which a failing copy is unhealthy anyway), or healthy_after × interval when passing takes longer;
    plus two polls and a check's timeout, since checks run inside the probe loop and travel in its frames."""
    check = service.check
    if check is None:
        return 0.0
    checks = max(check.grace + check.unhealthy_after * check.interval, check.healthy_after * check.interval)
    return checks + 2 * poll_interval + check.timeout


@dataclass(frozen=True, slots=True)
class Halt:
    generation: str  # the definition whose rollout stopped
    reason: str


LISTS = "rolling updates stopped by a failing check"


class Rollouts:
    """Services whose rollout stopped at a new copy that failed its check, until the file changes them."""

    def __init__(self, shared: SharedMap | None = None, emit: Callable[..., None] = lambda *a, **k: None) -> None:
        self._map = shared if shared is not None else FileMap(None)
        self._emit = emit  # Engine._emit(kind, message, host=, replica=, data=)
        self._halted: dict[str, Halt] = self._read()

    @property
    def halted(self) -> Mapping[str, str]:
        """service → the generation whose restarts are not made (the planner's view leaves them out)."""
        return {name: h.generation for name, h in self._halted.items()}

    def why(self) -> dict[str, str]:
        """service → why its rollout stopped (for the snapshot)."""
        return {name: h.reason for name, h in self._halted.items()}

    def halt(self, service: Service, replica: ReplicaId, host: str | None, why: str) -> None:
        """The new copy `replica` on `host` did not become healthy (`why`): the rollout of `service` stops."""
        reason = f"rollout of {service.name} stopped: {why}; its other replicas keep their definition"
        halt = self._halted[service.name] = Halt(generation(service), reason)
        try:
            self._map.put(service.name, {"generation": halt.generation, "reason": halt.reason})
            kept = ""
        except OSError as exc:  # a full disk must not hide the halt: it holds in memory and is said
            kept = f" (not kept across a restart: {self._map.where}: {exc})"
        self._emit(
            EventKind.ROLLOUT_HALTED, reason + kept, host=host, replica=replica,
            data={"service": service.name, "generation": generation(service), "level": "error"},
        )  # fmt: skip

    def is_halted(self, service: Service) -> bool:
        halt = self._halted.get(service.name)
        return halt is not None and halt.generation == generation(service)

    def forget(self, services: tuple[Service, ...]) -> list[str]:
        """After a reload: drop the halts of services the file now defines differently (or no longer has);
        returns their names."""
        now = {s.name: generation(s) for s in services}
        gone = [name for name, h in self._halted.items() if now.get(name) != h.generation]
        for name in gone:
            del self._halted[name]
            with contextlib.suppress(OSError):  # dropped in memory; the next start drops it again
                self._map.put(name, None)
        return gone

    def _read(self) -> dict[str, Halt]:
        try:
            doc = self._map.read()
        except MapError as exc:
            raise MapError(exc.where, exc.why, LISTS) from None
        if not all(
            isinstance(h, dict) and isinstance(h.get("generation"), str) and isinstance(h.get("reason"), str)
            for h in doc.values()
        ):
            raise MapError(self._map.where, 'is not {"service": {"generation": "…", "reason": "…"}, …}', LISTS)
        return {str(name): Halt(h["generation"], h["reason"]) for name, h in doc.items()}  # type: ignore[index]


class Interrupted(LoadmasterError):
    """A host went down while a new copy was being waited for: the failover comes first."""


class HealthGate:
    """Waits, reading the fleet's latest frames, until a copy just started passes its service's check."""

    def __init__(self, observations: Callable[[], Mapping[str, HostObservation]], poll_interval: float):
        self._observations, self._poll = observations, poll_interval
        self._reachable = {n for n, o in observations().items() if o.state.reachable}

    def lost(self) -> list[str]:
        """Hosts reachable when the plan began that are not any more."""
        now = self._observations()
        return sorted(n for n in self._reachable if (o := now.get(n)) is not None and not o.state.reachable)

    def record(self, host: str, replica: ReplicaId) -> ReplicaStatus | None:
        obs = self._observations().get(host)
        if obs is None:
            return None
        return next((r for r in obs.replicas if r.replica == replica), None)

    def healthy_now(self, host: str, replica: ReplicaId) -> bool:
        """The copy on `host` counts towards min_healthy now (unknown: assume it does, the safe side)."""
        r = self.record(host, replica)
        return r is None or r.healthy

    async def wait(self, service: Service, started: ReplicaStatus) -> str | None:
        """None once the copy `started` reported is healthy; otherwise why it is not (it failed its check,
        exited, or its budget passed). A service without a check is healthy once running. Raises `Interrupted`
        when a host goes down meanwhile."""
        if service.check is None:
            return None
        loop = asyncio.get_running_loop()
        allowed = budget(service, self._poll)
        deadline = loop.time() + allowed
        detail = "no frame showed it yet"
        while True:
            if lost := self.lost():
                raise Interrupted(f"{', '.join(lost)} went down while {started.replica} on {started.host} started")
            r = self.record(started.host, started.replica)
            if r is not None and _same_copy(r, started):
                if not r.running:
                    return f"{started.replica} exited on {started.host} before passing its check"
                if r.health is Health.HEALTHY:
                    return None
                if r.health is Health.UNHEALTHY:
                    return f"{started.replica} on {started.host} failed its check ({r.health_detail or 'unhealthy'})"
                detail = f"still {r.health.value if r.health else 'unchecked'}" + (
                    f", last check {r.health_detail}" if r.health_detail else ""
                )
            if loop.time() >= deadline:
                return f"{started.replica} on {started.host} not healthy within {allowed:.1f} s ({detail})"
            await asyncio.sleep(STEP)


def _same_copy(seen: ReplicaStatus, started: ReplicaStatus) -> bool:
    """The frame speaks of the process we started, not of the copy it replaced."""
    if started.pid is not None and seen.pid is not None:
        return seen.pid == started.pid
    if started.started_at is not None and seen.started_at is not None:
        return seen.started_at >= started.started_at
    return True
