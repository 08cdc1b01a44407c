"""The immutable model every part of loadmaster shares.

Resources are integers (millicores, bytes, whole units of further dimensions)
because the solver works on integers and equal inputs must give equal plans.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

CPU = "cpu"
MEM = "mem"


def _frozen_map(values: Mapping[str, int] | Iterable[tuple[str, int]] = ()) -> Mapping[str, int]:
    # Zero amounts are dropped so that equal resources compare equal however they were summed.
    return MappingProxyType({k: v for k, v in sorted(dict(values).items()) if v != 0})


@dataclass(frozen=True, slots=True)
class Resources:
    """An amount per dimension: `cpu` in millicores, `mem` in bytes, others (gpu, …) in units."""

    cpu: int = 0
    mem: int = 0
    extra: Mapping[str, int] = field(default_factory=_frozen_map)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", _frozen_map(self.extra))

    @classmethod
    def of(cls, amounts: Mapping[str, int]) -> Resources:
        rest = {k: v for k, v in amounts.items() if k not in (CPU, MEM)}
        return cls(amounts.get(CPU, 0), amounts.get(MEM, 0), rest)

    def as_dict(self) -> dict[str, int]:
        return {CPU: self.cpu, MEM: self.mem, **self.extra}

    def get(self, dimension: str) -> int:
        return self.as_dict().get(dimension, 0)

    @property
    def dimensions(self) -> tuple[str, ...]:
        return (CPU, MEM, *self.extra)

    def __add__(self, other: Resources) -> Resources:
        a, b = self.as_dict(), other.as_dict()
        return Resources.of({k: a.get(k, 0) + b.get(k, 0) for k in a.keys() | b.keys()})

    def __sub__(self, other: Resources) -> Resources:
        a, b = self.as_dict(), other.as_dict()
        return Resources.of({k: a.get(k, 0) - b.get(k, 0) for k in a.keys() | b.keys()})

    def __mul__(self, factor: int) -> Resources:
        return Resources.of({k: v * factor for k, v in self.as_dict().items()})

    def fits(self, capacity: Resources) -> bool:
        """True when this amount fits within `capacity` in every dimension."""
        cap = capacity.as_dict()
        return all(v <= cap.get(k, 0) for k, v in self.as_dict().items())

    def __hash__(self) -> int:
        return hash(tuple(self.as_dict().items()))


def total(resources: Iterable[Resources]) -> Resources:
    result = Resources()
    for r in resources:
        result = result + r
    return result


class HostKeyPolicy(enum.StrEnum):
    STRICT = "strict"
    ACCEPT_NEW = "accept-new"


class Strategy(enum.StrEnum):
    BINPACK = "binpack"
    SPREAD = "spread"


class HostState(enum.StrEnum):
    """What loadmaster knows of a host; only `UP` hosts take new replicas."""

    UNKNOWN = "unknown"  # not yet contacted
    UP = "up"
    SUSPECT = "suspect"  # missed polls, not yet past failure_timeout
    DOWN = "down"
    DRAINING = "draining"  # operator asked to empty it
    KEY_MISMATCH = "key-mismatch"  # host key changed: refused, never merely "down"
    UNSUPPORTED = "unsupported"  # reachable, but no Linux /proc
    MISBEHAVING = "misbehaving"  # its stream was cut off: garbage, impossible numbers or a flood of frames

    @property
    def accepts_work(self) -> bool:
        return self is HostState.UP

    @property
    def reachable(self) -> bool:
        """Its replica records can be acted on now (a suspect host may still answer)."""
        return self in (HostState.UP, HostState.SUSPECT, HostState.DRAINING)


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    address: str  # "local" = this machine through psutil, no SSH
    port: int = 22
    user: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    capacity: Resources | None = None  # pinned in the file; None = probe it
    reserve: Resources = Resources()
    identity_file: str | None = None
    jump: str | None = None  # name of another host used as a bastion
    demo: bool = False

    @property
    def is_local(self) -> bool:
        return self.address == "local"

    def usable(self, probed: Resources | None = None) -> Resources:
        """Capacity loadmaster may fill: the pin, else what was probed, minus reserve."""
        base = self.capacity if self.capacity is not None else probed
        if base is None:  # not pinned and never probed (a host that is down): nothing is known to be usable,
            return Resources()  # which is no capacity, not a negative one (0.0/-0.5 was shown)
        return base - self.reserve


class CheckKind(enum.StrEnum):
    TCP = "tcp"  # a socket listens on the port (read from /proc/net/tcp on the host)
    HTTP = "http"  # GET path on the port answers 2xx/3xx, or the expected status
    EXEC = "exec"  # a command run on the host exits 0


class Health(enum.StrEnum):
    """A replica's health as its service's check says; a replica of a service without a check has none."""

    STARTING = "starting"  # not yet `healthy_after` passes in a row
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"  # `unhealthy_after` failures in a row, counted once `grace` has passed


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """`[services.check]`: run by the probe loop on the host that runs the replica."""

    kind: CheckKind
    path: str = "/"  # http
    status: int | None = None  # http: the one status that is healthy; None = any 2xx or 3xx
    command: str = ""  # exec; `{port}` is the replica's port
    port: int | None = None  # tcp/http: a fixed port; None = the replica's `{port}`
    interval: float = 10.0  # seconds between checks (the probe runs them at most once per poll)
    timeout: float = 2.0
    grace: float = 10.0  # after the replica starts, failures do not count yet
    unhealthy_after: int = 3
    healthy_after: int = 1


@dataclass(frozen=True, slots=True)
class Autoscale:
    """`autoscale = { min = 2, max = 20, cpu_target = 0.6 }`: replicas follow measured cpu (the HPA rule)."""

    min: int
    max: int
    cpu_target: float  # wanted ratio of measured to requested cpu across healthy replicas
    window: float = 30.0  # seconds the measured ratio is averaged over
    scale_down_window: float = 300.0  # a scale-down takes the highest recommendation of this long (HPA: 5 min)


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    command: str
    replicas: int
    resources: Resources  # per replica
    max_per_host: int | None = None  # 1 = one per host (anti-affinity)
    spread_over: str | None = None  # label key, e.g. "zone"
    require: Mapping[str, str] = field(default_factory=dict)
    avoid: tuple[str, ...] = ()  # service names not to share a host with
    priority: int = 0  # higher is placed first when capacity is short
    min_healthy: int = 0  # never fewer healthy replicas during changes
    autoscale: Autoscale | None = None
    check: HealthCheck | None = None  # None: a running replica counts as healthy
    # How the process runs (issue 11): values reach it without any shell interpretation (see hostlink.scripts).
    env: Mapping[str, str] = field(default_factory=dict)  # `{port}`, `{replica}`, `{host}` are filled in
    workdir: str | None = None  # absolute, or `~/…` in the SSH user's home; None: the state directory
    user: str | None = None  # run as this user (the SSH user must be root there); None: the SSH user
    stop_signal: str = "TERM"  # sent first when the replica is stopped (a name without SIG)
    stop_timeout: float | None = None  # seconds from stop_signal to SIGKILL; None: the engine's (5 s)
    log_max_size: int = 10 << 20  # bytes of stdout+stderr per log file before it rotates
    log_keep: int = 3  # rotated files kept beside the current one

    def replica_ids(self) -> tuple[ReplicaId, ...]:
        return tuple(ReplicaId(self.name, i) for i in range(self.replicas))

    def matches(self, host: Host) -> bool:
        return all(host.labels.get(k) == v for k, v in self.require.items())


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


@dataclass(frozen=True, slots=True)
class Placement:
    """Which host runs each replica."""

    assignments: Mapping[ReplicaId, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "assignments", MappingProxyType(dict(sorted(self.assignments.items()))))

    def host_of(self, replica: ReplicaId) -> str | None:
        return self.assignments.get(replica)

    def on_host(self, host: str) -> tuple[ReplicaId, ...]:
        return tuple(r for r, h in self.assignments.items() if h == host)

    def hosts_used(self) -> frozenset[str]:
        return frozenset(self.assignments.values())

    def __hash__(self) -> int:
        return hash(tuple(self.assignments.items()))


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
    for replica in sorted(current.assignments.keys() | target.assignments.keys()):
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


@dataclass(frozen=True, slots=True)
class SshDefaults:
    user: str | None = None
    port: int = 22
    identity_file: str | None = None
    known_hosts: str | None = None  # None = ~/.ssh/known_hosts
    host_key_policy: HostKeyPolicy = HostKeyPolicy.STRICT
    connect_timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class Policy:
    strategy: Strategy = Strategy.BINPACK
    auto_apply: bool = False
    max_moves_per_cycle: int = 10
    cooldown: float = 60.0  # seconds between automatic rebalances
    solver_time_limit: float = 10.0  # seconds
    settle: float = 10.0  # a host that came back is stable this long before new work
    solver_workers: int | None = None  # CP-SAT searches at once; None: the cores available, at most 8
    # Replicas a plan after a reload may stop without approval; None: 25% of those running.
    max_stops_per_reload: int | None = None


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """`[api]`: where the engine serves the HTTP API; `--api` on the command line overrides `listen`."""

    listen: str | None = None  # HOST:PORT; None = served only when asked with --api
    tls_cert: str | None = None  # PEM certificate (chain); with tls_key, the API speaks HTTPS
    tls_key: str | None = None


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Everything `cluster.toml` declares: the desired state."""

    name: str
    hosts: tuple[Host, ...]
    services: tuple[Service, ...]
    poll_interval: float = 1.0
    failure_timeout: float = 3.0
    state_dir: str | None = None  # on each host; None = ~/.loadmaster/<name>
    demo: bool = False
    enforce_limits: bool = False  # replicas' cpu and mem become cgroup limits where hosts allow (hostlink.limits)
    defaults: SshDefaults = SshDefaults()
    policy: Policy = Policy()
    api: ApiSettings = ApiSettings()
    source: str = "cluster.toml"  # the file it came from, for messages

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def service(self, name: str) -> Service:
        for s in self.services:
            if s.name == name:
                return s
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    """A replica as its host reports it."""

    replica: ReplicaId
    host: str
    pid: int | None
    running: bool
    generation: str = ""  # config generation it was started from
    cpu_seconds: float | None = None
    cpu_percent: float | None = None
    rss: int | None = None  # bytes
    started_at: float | None = None  # unix seconds
    epoch: int | None = None  # the fencing epoch of the controller that started it (None: an older runtime)
    health: Health | None = None  # None: its service has no check (or the host's probe ran none yet)
    health_detail: str = ""  # the last check's result, e.g. "ok", "http-5xx", "timeout"
    oom_killed: bool = False  # not running because the kernel killed it for its memory limit

    @property
    def healthy(self) -> bool:
        """Counts as healthy: running, and passing its checks when it has any."""
        return self.running and self.health in (None, Health.HEALTHY)


@dataclass(frozen=True, slots=True, order=True)
class Token:
    """A fencing token: hosts refuse actions carrying a lower one. Ordered by epoch, then holder, so that
    two controllers that drew the same epoch from separate journals still have a winner; the etcd
    election revision can stand in for the epoch (clustered mode)."""

    epoch: int
    holder: str  # the controller's id: [A-Za-z0-9._-], no spaces (it is a word in files on the hosts)

    def __str__(self) -> str:
        return f"{self.epoch}:{self.holder}"


NO_TOKEN = Token(0, "-")  # an action from no controller: accepted only by hosts no controller has claimed


class ClaimOutcome(enum.StrEnum):
    TAKEN = "taken"
    HELD = "held"  # a live holder has it
    FENCED = "fenced"  # the host has a token at least as high


@dataclass(frozen=True, slots=True)
class Claim:
    """A host's answer to a controller claiming it."""

    outcome: ClaimOutcome
    before: Token  # the host's token before the claim (the holder's, when held or fenced)
    age: float | None = None  # seconds since a live holder renewed (held)


@dataclass(frozen=True, slots=True)
class Fence:
    """What a host's probe says of its fence: the highest token seen and how long ago its holder renewed."""

    token: Token
    age: float | None  # seconds since the holder last renewed here; None: never, or not readable


@dataclass(frozen=True, slots=True)
class HostObservation:
    """One host as last seen; `at` is unix seconds of the observation."""

    host: str
    state: HostState
    at: float
    capacity: Resources | None = None  # probed total (cpus × 1000, MemTotal)
    cpu_percent: float | None = None
    mem_total: int | None = None
    mem_available: int | None = None
    load1: float | None = None
    ncpu: int | None = None
    uptime: float | None = None
    replicas: tuple[ReplicaStatus, ...] = ()
    error: str | None = None  # what went wrong, in words an operator can act on
    last_seen: float | None = None  # unix seconds of the last good frame
    fence: Fence | None = None  # the host's fencing state, from its probe
    warnings: tuple[str, ...] = ()  # what the host's probe cannot do (e.g. no tool for http checks)
    enforcement: str | None = None  # how it limits replicas' cpu and memory: cgroup2, cgroup1 or none (see limits)
