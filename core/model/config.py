"""The desired state as read from cluster.toml: hosts, services with their checks and autoscaling, defaults, policy."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.model.plans import ReplicaId
from core.model.resources import Resources
from core.store.settings import SQLITE, StoreSettings


class HostKeyPolicy(enum.StrEnum):
    STRICT = "strict"
    ACCEPT_NEW = "accept-new"


class Strategy(enum.StrEnum):
    BINPACK = "binpack"
    SPREAD = "spread"


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
    store: StoreSettings = SQLITE  # where plans, events and the desired state live (core/store)
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
