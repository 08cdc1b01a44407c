"""Autoscaling: replicas follow the cpu the hosts measure, by the Kubernetes HPA rule.

For a service with `autoscale = { min, max, cpu_target }`:

- the measured ratio is the cpu its healthy replicas use over the cpu they request, averaged over
  `window` seconds (per-replica cpu comes from the host frames, /proc/PID/stat);
- the recommendation is `ceil(replicas × ratio / cpu_target)`, kept at `replicas` while the ratio is
  within ±10% of the target (the HPA tolerance), and bounded by `min` and `max`;
- a scale-up happens at once (stabilization 0 s); a scale-down takes the highest recommendation of the
  last `scale_down_window` seconds (default 5 min), so load that flaps does not flap replicas;
- a decision is a change of `cluster.toml` through core.desired (so the file stays the one desired
  state and a person sees it), then an engine reload; a scale-up the optimizer cannot place is undone,
  reported with the optimizer's reason, and not tried again for a window.

`Rule` is the pure part (tested on its own); `Autoscaler` runs it beside an engine.
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from core import desired
from core.engine.api import Snapshot
from core.engine.events import Event, EventKind
from core.errors import ConfigError, RevisionConflict, UnknownService
from core.model import Autoscale, ClusterConfig, Service

TOLERANCE = 0.1  # no change while measured/target is within ±10% (the HPA default)


@dataclass(frozen=True, slots=True)
class Decision:
    service: str
    current: int
    desired: int
    ratio: float  # measured cpu / requested cpu, averaged over the window
    target: float

    @property
    def kind(self) -> EventKind:
        return EventKind.AUTOSCALE_UP if self.desired > self.current else EventKind.AUTOSCALE_DOWN

    def __str__(self) -> str:
        head = f"{self.kind.value} {self.service} {self.current}→{self.desired}"
        if math.isnan(self.ratio):
            return f"{head}: replicas outside autoscale min/max (no cpu measured yet)"
        return f"{head}: cpu {self.ratio:.2f} of requested, target {self.target:g}"


class Rule:
    """The HPA rule with its window and stabilization, for every autoscaled service; no I/O, no clock of its own."""

    def __init__(self) -> None:
        self._samples: dict[str, collections.deque[tuple[float, float]]] = {}
        self._recommendations: dict[str, collections.deque[tuple[float, int]]] = {}

    def observe(self, service: str, now: float, ratio: float) -> None:
        self._samples.setdefault(service, collections.deque()).append((now, ratio))

    def forget(self, service: str) -> None:
        self._samples.pop(service, None)
        self._recommendations.pop(service, None)

    def scaled(self, service: str) -> None:
        """Samples taken before a scale describe the old replica count: measure afresh."""
        self._samples.pop(service, None)

    def ratio(self, service: str, spec: Autoscale, now: float) -> float | None:
        samples = self._samples.get(service)
        while samples and samples[0][0] < now - spec.window:
            samples.popleft()
        return sum(r for _, r in samples) / len(samples) if samples else None

    def decide(self, service: Service, now: float) -> Decision | None:
        spec = service.autoscale
        if spec is None:
            return None
        current = service.replicas
        ratio = self.ratio(service.name, spec, now)
        if ratio is None:  # nothing measured: only the bounds apply
            bounded = min(max(current, spec.min), spec.max)
            return Decision(service.name, current, bounded, math.nan, spec.cpu_target) if bounded != current else None
        if abs(ratio / spec.cpu_target - 1) <= TOLERANCE:
            wanted = current
        else:
            wanted = math.ceil(current * ratio / spec.cpu_target - 1e-9) if current else spec.min
        wanted = min(max(wanted, spec.min), spec.max)
        recent = self._recommendations.get(service.name)
        if recent is None:  # first sight (a controller that just started): what runs counts as recommended now,
            recent = self._recommendations[service.name] = collections.deque([(now, current)])  # as the HPA seeds it
        recent.append((now, wanted))
        while recent and recent[0][0] < now - spec.scale_down_window:
            recent.popleft()
        if wanted < current:  # scale down only as far as every recommendation of the window allows
            wanted = min(max(r for _, r in recent), current, spec.max)  # above max (the seed) goes at once
        return Decision(service.name, current, wanted, ratio, spec.cpu_target) if wanted != current else None


def measured_ratio(snapshot: Snapshot, service: Service) -> float | None:
    """Used over requested cpu across the service's healthy replicas (running on a reachable host), if measured."""
    used, replicas = 0.0, 0
    for obs in snapshot.hosts.values():
        if not obs.state.reachable:
            continue
        for r in obs.replicas:
            if r.replica.service == service.name and r.running and r.cpu_percent is not None:
                used += r.cpu_percent * 10  # percent of one core → millicores
                replicas += 1
    if not replicas or service.resources.cpu <= 0:
        return None
    return used / (replicas * service.resources.cpu)


DECISIONS = (EventKind.AUTOSCALE_UP, EventKind.AUTOSCALE_DOWN, EventKind.AUTOSCALE_BLOCKED)


def last_decisions(events: Iterable[Event]) -> dict[str, Event]:
    """Service → its latest autoscale decision (up, down or blocked), from the engine's events (oldest first)."""
    return {str(e.data["service"]): e for e in events if e.kind in DECISIONS and "service" in e.data}


class ScaledEngine(Protocol):
    def snapshot(self) -> Snapshot: ...

    def reload(self, config: ClusterConfig, *, guarded: bool = True, revision: str | None = None) -> object: ...

    def record(self, kind: EventKind, message: str, *, data: Mapping[str, object] | None = None) -> None: ...


class Autoscaler:
    """Samples every poll, decides, and writes decisions to the cluster file; one per engine."""

    def __init__(self, engine: ScaledEngine, target: desired.Target, clock: Callable[[], float]):
        """`target`: the cluster file, or clustered the stored document's editor (core.store.desired_doc)."""
        self.engine, self.editor, self.clock = engine, desired.editor_of(target), clock
        self.rule = Rule()
        self.last: dict[str, str] = {}  # service → its last decision, in words (for a screen)
        self._placing: dict[str, tuple[int, int]] = {}  # service → (from, to) of a scale-up not yet placed
        self._blocked_until: dict[str, float] = {}

    async def run(self, interval: float) -> None:
        while True:
            await self.step()
            await asyncio.sleep(interval)

    async def step(self) -> None:
        snapshot, now = self.engine.snapshot(), self.clock()
        if snapshot.read_only:  # a standby (another controller acts, or the elected leader does) decides nothing
            return
        for service in snapshot.config.services:
            if service.autoscale is None:
                self.rule.forget(service.name)
                continue
            if service.name in self._placing:
                await self._check_placed(snapshot, service)
                continue
            ratio = measured_ratio(snapshot, service)
            if ratio is not None:
                self.rule.observe(service.name, now, ratio)
            decision = self.rule.decide(service, now)
            if decision is None or (
                decision.desired > decision.current and now < self._blocked_until.get(service.name, 0)
            ):
                continue
            if await self._write(decision.service, decision.current, decision.desired):
                self.rule.scaled(service.name)
                self.last[service.name] = str(decision)
                self.engine.record(decision.kind, str(decision), data={
                    "service": decision.service, "from": decision.current, "to": decision.desired,
                    "ratio": None if math.isnan(decision.ratio) else round(decision.ratio, 3),
                    "target": decision.target,
                })  # fmt: skip
                if decision.desired > decision.current:
                    self._placing[service.name] = (decision.current, decision.desired)

    async def _check_placed(self, snapshot: Snapshot, service: Service) -> None:
        """A scale-up the optimizer cannot place is undone: the service keeps what it had."""
        before, after = self._placing[service.name]
        unplaced = {r: why for r, why in snapshot.unplaced.items() if r.service == service.name and r.index >= before}
        running = sum(1 for r in snapshot.running() if r.service == service.name and r.index < after)
        if running >= after:
            del self._placing[service.name]
        elif unplaced:
            del self._placing[service.name]
            reason = next(iter(unplaced.values()))
            if await self._write(service.name, after, before):
                wait = service.autoscale.window if service.autoscale else 0.0
                self._blocked_until[service.name] = self.clock() + wait
                kind = EventKind.AUTOSCALE_BLOCKED
                message = f"{kind.value} {service.name} {before}→{after}: {reason}; keeps {before}"
                self.last[service.name] = message
                data = {"service": service.name, "from": before, "to": after, "reason": reason}
                self.engine.record(kind, message, data=data)

    async def _write(self, name: str, current: int, wanted: int) -> bool:
        """Scale in the file if it still says `current` (a person's edit meanwhile wins); reload the engine."""

        def change() -> desired.Document | None:
            doc = self.editor.read()
            if doc.config.service(name).replicas != current:
                return None
            return desired.scale(self.editor, name, wanted, expect=doc.revision)

        try:
            doc = await asyncio.to_thread(change)
        except (RevisionConflict, ConfigError, UnknownService, KeyError):
            return False  # the file moved on or is broken now: the next step looks again
        if doc is None:
            return False
        # its own bounded decision, not a file edited under it; the revision: the file watch need not adopt it again
        self.engine.reload(doc.config, guarded=False, revision=doc.revision)
        return True
