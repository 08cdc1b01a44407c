"""An in-memory fleet (a `FleetPort`) for engine and contract tests and the engine benchmark: hosts hold
replica records like real ones do.

It is also the demo control of such a fleet: `crash` ends a host and its replicas, `restore` brings it back.
With `frame_interval` > 0 a host's observation is rebuilt once per interval unless something on it changed,
like a real link that keeps its last probe frame: the engine benchmark then measures the engine, not this fake.
As with real links, frames arrive between the engine's looks, not when it looks: once started, the fleet builds
each host's frame at its own phase of the interval (host i at i/n of it: hosts polled each on its own) in a task
of its own, and `observations()` hands out the frames kept, as hostlink's does.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Mapping

from core.engine.basis import generation
from core.errors import Fenced, HostUnreachable
from core.model import (
    NO_TOKEN,
    Claim,
    ClaimOutcome,
    ClusterConfig,
    Fence,
    Health,
    Host,
    HostObservation,
    HostState,
    Placement,
    ReplicaId,
    ReplicaStatus,
    Resources,
    Service,
    Token,
)


class FakeFleet:
    def __init__(self, config: ClusterConfig, *, frame_interval: float = 0.0):
        self.config = config
        self.frame_interval = frame_interval
        self._frames: dict[str, HostObservation] = {}  # host → its last observation (frame_interval > 0)
        self._turn = -1  # frames come in turns, one host's a turn, n turns an interval: the last turn built
        self._arriving: asyncio.Task[None] | None = None
        self.states = {h.name: HostState.UP for h in config.hosts}
        self.records: dict[str, dict[ReplicaId, ReplicaStatus]] = {h.name: {} for h in config.hosts}
        self.loads: dict[str, float] = {}  # set_load: service → share (a demo fleet burns it; this one notes it)
        self.starts: list[tuple[str, ReplicaId]] = []  # every start that created a process
        self.stops: list[tuple[str, ReplicaId]] = []
        self.fail_starts_on: set[str] = set()
        self.new_health: dict[str, Health] = {}  # service → the health its copies started from now report
        self.closed = False
        # Each host's fence as the runtime keeps it: the highest token seen, when its holder renewed.
        self.controller = "fake-controller"
        self.token = NO_TOKEN
        self.fences: dict[str, tuple[Token, float]] = {}

    async def start(self) -> None:
        if self.frame_interval > 0 and self._arriving is None:
            self._arriving = asyncio.create_task(self._arrive(), name="memfleet-frames")

    async def close(self) -> None:
        self.closed = True
        if self._arriving is not None:
            self._arriving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._arriving

    async def _arrive(self) -> None:
        """Build the frames whose turn came, a few times per interval (hosts answer their polls all the time)."""
        while True:
            hosts = self.config.hosts
            if hosts:
                now = int(time.monotonic() * len(hosts) / self.frame_interval)
                for turn in range(max(self._turn + 1, now - len(hosts) + 1), now + 1):
                    h = hosts[turn % len(hosts)]
                    self._frames[h.name] = self._frame(h, time.time())
                self._turn = now
            await asyncio.sleep(self.frame_interval / 10)

    def update_config(self, config: ClusterConfig) -> None:
        self.config = config
        for h in config.hosts:
            self.states.setdefault(h.name, HostState.UP)
            self.records.setdefault(h.name, {})

    def changed(self, host: str) -> None:
        """Something on `host` changed: its next observation is a new frame."""
        self._frames.pop(host, None)

    def observations(self) -> Mapping[str, HostObservation]:
        now = time.time()
        if self.frame_interval <= 0:  # a new frame at every look
            return {h.name: self._frame(h, now) for h in self.config.hosts}
        out = {}
        for h in self.config.hosts:
            frame = self._frames.get(h.name)
            if frame is None:  # something on it changed (or its first look): its frame shows it at once
                frame = self._frames[h.name] = self._frame(h, now)
            out[h.name] = frame
        return out

    def _frame(self, h: Host, now: float) -> HostObservation:
        cap = h.capacity or Resources(4000, 8 << 30)
        held, renewed = self.fences.get(h.name, (NO_TOKEN, 0.0))
        if held.holder == self.controller and self.states[h.name].reachable:  # the probe renews
            self.fences[h.name] = (held, renewed := time.monotonic())
        fence = Fence(held, time.monotonic() - renewed) if held != NO_TOKEN else None
        return HostObservation(
            h.name, self.states[h.name], now, capacity=cap, replicas=tuple(self.records[h.name].values()), fence=fence
        )

    def set_token(self, token: Token) -> None:
        self.token = token

    async def claim(self, host: str, token: Token, live_for: float, force: bool = False) -> Claim:
        self._reachable(host)
        held, renewed = self.fences.get(host, (NO_TOKEN, 0.0))
        age = time.monotonic() - renewed
        if held.holder not in ("-", token.holder) and not force and age < live_for:
            return Claim(ClaimOutcome.HELD, held, age)
        if token.epoch < held.epoch or (token.epoch == held.epoch and token.holder != held.holder):
            return Claim(ClaimOutcome.FENCED, held)
        self.fences[host] = (token, time.monotonic())
        self.changed(host)
        return Claim(ClaimOutcome.TAKEN, held)

    def _fenced(self, host: str, what: str) -> None:
        """What the runtime's `fence` does before every action."""
        held, _ = self.fences.get(host, (NO_TOKEN, 0.0))
        token = self.token
        if token.epoch < held.epoch or (token.epoch == held.epoch and token.holder != held.holder):
            raise Fenced(host, what, held.epoch, held.holder)
        if token.epoch > held.epoch:
            self.fences[host] = (token, time.monotonic())
            self.changed(host)

    def _reachable(self, host: str) -> None:
        if not self.states[host].reachable:
            raise HostUnreachable(host, "connection refused")

    async def start_replica(self, host: str, service: Service, index: int, generation: str) -> ReplicaStatus:
        self._reachable(host)
        replica = ReplicaId(service.name, index)
        self._fenced(host, f"start {replica}")
        existing = self.records[host].get(replica)
        if existing is not None and existing.running:
            return existing
        if host in self.fail_starts_on:
            raise HostUnreachable(host, "start failed")
        status = ReplicaStatus(replica, host, pid=1000 + len(self.starts), running=True, generation=generation,
                               started_at=time.time(), epoch=self.token.epoch,
                               health=self.new_health.get(service.name))  # fmt: skip
        self.records[host][replica] = status
        self.starts.append((host, replica))
        self.changed(host)
        return status

    async def stop_replica(self, host: str, replica: ReplicaId, grace: float = 5.0) -> None:
        self._reachable(host)
        self._fenced(host, f"stop {replica}")
        if self.records[host].pop(replica, None) is not None:
            self.stops.append((host, replica))
            self.changed(host)

    # -- test controls ---------------------------------------------------------------

    def run(self, placement: Placement) -> None:
        """Begin with `placement` already running, started from the config's current definitions."""
        services = {s.name: s for s in self.config.services}
        for replica, host in placement.assignments.items():
            self.records[host][replica] = ReplicaStatus(
                replica, host, pid=100 + len(self.records[host]), running=True,
                generation=generation(services[replica.service]), started_at=time.time(),
            )  # fmt: skip
            self.changed(host)

    def set_health(self, host: str, replica: ReplicaId, health: Health | None) -> None:
        """What the check of `replica` on `host` says from now on."""
        self.records[host][replica] = dataclasses.replace(self.records[host][replica], health=health)
        self.changed(host)

    def crash_replica(
        self, host: str, replica: ReplicaId, *, oom_killed: bool = False, exit_status: int | None = None
    ) -> None:
        r = self.records[host][replica]
        self.records[host][replica] = ReplicaStatus(
            r.replica, host, r.pid, False, r.generation, started_at=r.started_at, oom_killed=oom_killed,
            exit_status=exit_status,
        )  # fmt: skip
        self.changed(host)

    async def crash(self, host: str) -> None:
        """What a demo host does when stopped: it stops answering and its replicas end with it."""
        self.states[host] = HostState.DOWN
        self.records[host].clear()
        self.changed(host)

    async def restore(self, host: str) -> None:
        self.states[host] = HostState.UP
        self.changed(host)

    def set_load(self, config: ClusterConfig, shares: Mapping[str, float]) -> list[str]:
        """Remembered only: an in-memory replica burns nothing."""
        self.loads.update(shares)
        return [f"{name}: {share:g} of its request" for name, share in shares.items()]

    def running(self) -> dict[ReplicaId, list[str]]:
        out: dict[ReplicaId, list[str]] = {}
        for host, recs in self.records.items():
            for r in recs.values():
                if r.running:
                    out.setdefault(r.replica, []).append(host)
        return out
