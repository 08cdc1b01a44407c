"""Pure functions that turn a Snapshot or Plan into the numbers the screens show."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from console.formatting import clock
from core.autoscale import TOLERANCE, last_decisions, measured_ratio
from core.engine.api import Snapshot
from core.engine.events import Event
from core.model import (
    ActionKind,
    ClusterConfig,
    Health,
    Host,
    HostObservation,
    HostState,
    Placement,
    Plan,
    ReplicaId,
    Resources,
    Service,
)


@dataclass(frozen=True, slots=True)
class HostLoad:
    """What the replicas placed on one host request."""

    cpu: int = 0
    mem: int = 0
    replicas: int = 0


def requests_by_host(config: ClusterConfig, placement: Placement) -> dict[str, HostLoad]:
    """One pass over the placement (10,000 replicas must stay cheap); unknown services count zero."""
    per_service = {s.name: (s.resources.cpu, s.resources.mem) for s in config.services}
    cpu: dict[str, int] = defaultdict(int)
    mem: dict[str, int] = defaultdict(int)
    count: Counter[str] = Counter()
    for replica, host in placement.assignments.items():
        c, m = per_service.get(replica.service, (0, 0))
        cpu[host] += c
        mem[host] += m
        count[host] += 1
    return {h: HostLoad(cpu[h], mem[h], count[h]) for h in count}


def capacity(snapshot: Snapshot, host: Host) -> Resources:
    """What loadmaster may fill on `host`: the pinned or probed capacity minus its reserve."""
    obs = snapshot.hosts.get(host.name)
    return host.usable(obs.capacity if obs else None)


class Capacities:
    """Usable capacity per host, recomputed only when a host's entry or its probed capacity changes."""

    def __init__(self) -> None:
        self._memo: dict[str, tuple[Host, Resources | None, Resources]] = {}

    def of(self, snapshot: Snapshot, host: Host) -> Resources:
        obs = snapshot.hosts.get(host.name)
        probed = obs.capacity if obs else None
        memo = self._memo.get(host.name)
        if memo is not None and memo[0] is host and (memo[1] is probed or memo[1] == probed):
            return memo[2]
        usable = capacity(snapshot, host)
        self._memo[host.name] = (host, probed, usable)
        return usable


def mem_used(obs: HostObservation | None) -> int | None:
    if obs is None or obs.mem_total is None or obs.mem_available is None:
        return None
    return obs.mem_total - obs.mem_available


@dataclass(frozen=True, slots=True)
class FleetSummary:
    up: int
    suspect: int
    down: int  # down, key mismatch, unsupported or never reached
    requested: Resources  # by every placed replica
    capacity: Resources  # of the hosts that are up


def summarize(snapshot: Snapshot, loads: Mapping[str, HostLoad], capacities: Capacities) -> FleetSummary:
    states = Counter(obs.state for obs in snapshot.hosts.values())
    cap_cpu = cap_mem = 0
    for host in snapshot.config.hosts:
        if _state(snapshot, host.name) is HostState.UP:
            cap = capacities.of(snapshot, host)
            cap_cpu += cap.cpu
            cap_mem += cap.mem
    return FleetSummary(
        up=states[HostState.UP] + states[HostState.DRAINING],
        suspect=states[HostState.SUSPECT],
        down=len(snapshot.config.hosts) - states[HostState.UP] - states[HostState.DRAINING] - states[HostState.SUSPECT],
        requested=Resources(sum(x.cpu for x in loads.values()), sum(x.mem for x in loads.values())),
        capacity=Resources(cap_cpu, cap_mem),
    )


def _state(snapshot: Snapshot, host: str) -> HostState:
    obs = snapshot.hosts.get(host)
    return obs.state if obs else HostState.UNKNOWN


def host_matcher(pattern: str) -> Callable[[str], bool]:
    """Case-insensitive regex search; text that is not a valid regex is matched as a plain substring."""
    if not pattern:
        return lambda _text: True
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
    except re.error:
        needle = pattern.lower()
        return lambda text: needle in text.lower()
    return lambda text: compiled.search(text) is not None


def host_search_text(name: str, labels: Mapping[str, str]) -> str:
    """What the fleet filter searches: the name and every `key=value` label."""
    return " ".join([name, *(f"{k}={v}" for k, v in labels.items())])


def services_touched(plan: Plan) -> tuple[str, ...]:
    return tuple(sorted({a.replica.service for a in plan.actions}))


# The order an operator reads a plan's actions in; every kind is counted, none may be left out.
COUNTED = (ActionKind.MOVE, ActionKind.START, ActionKind.STOP, ActionKind.RESTART)


def action_counts(plan: Plan) -> str:
    """ "3 moves, 0 starts, 0 stops, 1 restart": every kind of action, zeros included."""
    counts = Counter(a.kind for a in plan.actions)
    return ", ".join(f"{counts[kind]} {kind.value}{'' if counts[kind] == 1 else 's'}" for kind in COUNTED)


def hosts_freed(plan: Plan) -> tuple[str, ...]:
    """Hosts that run replicas now and none once the plan is applied."""
    return tuple(sorted(plan.current.hosts_used() - plan.target.hosts_used()))


@dataclass(frozen=True, slots=True)
class Utilization:
    host: str
    capacity: Resources
    before: HostLoad
    after: HostLoad


def plan_utilization(snapshot: Snapshot, plan: Plan) -> tuple[Utilization, ...]:
    """Per host, requested resources before → after the plan, for every host the plan touches or uses."""
    before = requests_by_host(snapshot.config, plan.current)
    after = requests_by_host(snapshot.config, plan.target)
    return tuple(
        Utilization(h.name, capacity(snapshot, h), before.get(h.name, HostLoad()), after.get(h.name, HostLoad()))
        for h in snapshot.config.hosts
        if h.name in before or h.name in after
    )


@dataclass(frozen=True, slots=True)
class AutoscaleView:
    min: int
    max: int
    target: float  # cpu_target: wanted ratio of measured to requested cpu
    ratio: float | None  # measured now, across running replicas (the autoscaler averages it over its window)
    last: Event | None  # its latest decision: autoscale.up, .down or .blocked

    @property
    def due(self) -> str:
        """ "up" / "down" when the measured ratio is past the autoscaler's tolerance of the target, else ""."""
        if self.ratio is None or abs(self.ratio / self.target - 1) <= TOLERANCE:
            return ""
        return "up" if self.ratio > self.target else "down"

    def ratio_text(self) -> str:
        return f"{'—' if self.ratio is None else f'{self.ratio:.2f}'}/{self.target:g}"

    def last_text(self) -> str:
        """`up 4→7 12:03:05`: the kind, the counts and when (the event says why)."""
        if self.last is None:
            return "—"
        kind = self.last.kind.value.removeprefix("autoscale.")
        return f"{kind} {self.last.data.get('from')}→{self.last.data.get('to')} {clock(self.last.at)}"


@dataclass(frozen=True, slots=True)
class ServiceView:
    name: str
    desired: int
    running: int  # replicas a host reports running
    healthy: int  # running on a host that is up and passing the service's check (without a check: running)
    unhealthy: int  # running, but failing the check
    starting: int  # running, not yet passing the check
    by_host: Mapping[str, tuple[ReplicaId, ...]]
    by_zone: Mapping[str, int]
    constraints: tuple[str, ...]
    unplaced: Mapping[ReplicaId, str]
    autoscale: AutoscaleView | None = None  # None: the service does not autoscale


ZONE_LABEL = "zone"


def service_views(snapshot: Snapshot, events: Iterable[Event] = ()) -> tuple[ServiceView, ...]:
    """`events`: the console's recent events, oldest first (an autoscaled service's last decision)."""
    decisions = last_decisions(events)
    running: dict[str, dict[ReplicaId, str]] = defaultdict(dict)  # service → replica → host
    health: dict[str, Counter[Health | None]] = defaultdict(Counter)  # service → replicas per check state
    for obs in snapshot.hosts.values():
        for status in obs.replicas:
            if status.running:
                running[status.replica.service][status.replica] = obs.host
                if obs.state is HostState.UP:
                    health[status.replica.service][status.health] += 1
    placed_by_service: dict[str, dict[str, list[ReplicaId]]] = defaultdict(lambda: defaultdict(list))
    for replica, host in snapshot.placement.assignments.items():
        placed_by_service[replica.service][host].append(replica)
    unplaced = dict(snapshot.unplaced)
    if snapshot.pending is not None:
        unplaced.update(snapshot.pending.unplaced)
    zone_of = {h.name: h.labels.get(ZONE_LABEL, "—") for h in snapshot.config.hosts}
    views = []
    for service in snapshot.config.services:
        mine = running[service.name]
        by_host = {h: tuple(rs) for h, rs in sorted(placed_by_service[service.name].items())}
        zones: Counter[str] = Counter()
        for host, replicas in by_host.items():
            zones[zone_of.get(host, "—")] += len(replicas)
        views.append(
            ServiceView(
                name=service.name,
                desired=service.replicas,
                running=len(mine),
                # HEALTHY is what the check says; a service without a check: running on an up host.
                healthy=health[service.name][Health.HEALTHY]
                + (health[service.name][None] if service.check is None else 0),
                unhealthy=health[service.name][Health.UNHEALTHY],
                starting=health[service.name][Health.STARTING]
                + (health[service.name][None] if service.check is not None else 0),
                by_host=by_host,
                by_zone=dict(sorted(zones.items())),
                constraints=constraint_lines(service),
                unplaced={r: why for r, why in sorted(unplaced.items()) if r.service == service.name},
                autoscale=None
                if service.autoscale is None
                else AutoscaleView(
                    service.autoscale.min,
                    service.autoscale.max,
                    service.autoscale.cpu_target,
                    measured_ratio(snapshot, service),
                    decisions.get(service.name),
                ),
            )
        )
    return tuple(views)


def constraint_lines(service: Service) -> tuple[str, ...]:
    lines = []
    if service.max_per_host is not None:
        lines.append(f"at most {service.max_per_host} per host")
    if service.spread_over:
        lines.append(f"spread over {service.spread_over}")
    if service.require:
        lines.append("requires " + ", ".join(f"{k}={v}" for k, v in service.require.items()))
    if service.avoid:
        lines.append("avoids " + ", ".join(service.avoid))
    if service.min_healthy:
        lines.append(f"min healthy {service.min_healthy}")
    lines.append(f"priority {service.priority}")
    return tuple(lines)


def joined(items: Iterable[object], empty: str = "—") -> str:
    text = ", ".join(str(i) for i in items)
    return text or empty


# Why a host is not up, in the words of its row (issue 12, item 9). Matched on the error texts hostlink writes
# (core/errors.py's HostKeyUnknown/HostKeyMismatch, core/hostlink/ssh.py's `describe` and the links' states); a test
# holds each of them, so a changed wording fails there instead of showing a row without its reason.
_REASONS = (
    ("is not in known_hosts", "new key"),  # a host key not in known_hosts (host detail shows its fingerprint)
    ("authentication refused", "denied"),
    ("identity_file", "id file"),
    ("connection refused", "refused"),
    ("timed out", "timeout"),
    ("no frame for", "silent"),
    ("unreachable", "offline"),
    ("no route to host", "offline"),
    ("connection lost", "lost"),
    ("connection reset", "lost"),
)


def down_reason(obs: HostObservation | None) -> str | None:
    """At most 9 characters for its row on why a host is down or not contacted yet (`new key`, `refused`,
    `denied`, …) or is another host's machine (`duplicate`); None otherwise (SUSPECT, KEY_MISMATCH, MISBEHAVING,
    UNSUPPORTED say it themselves). The whole error is in host detail."""
    if obs is not None and obs.error and "the same machine as" in obs.error:
        return "duplicate"  # another [[hosts]] entry's machine: excluded, whatever its state
    if obs is None or obs.state not in (HostState.DOWN, HostState.UNKNOWN) or not obs.error:
        return None
    error = obs.error.lower()
    return next((words for text, words in _REASONS if text in error), "error")
