"""What the hosts report: host states, replica records with their health, fences and claims, one observation
per host."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from core.model.plans import ReplicaId
from core.model.resources import Resources


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


class Health(enum.StrEnum):
    """A replica's health as its service's check says; a replica of a service without a check has none."""

    STARTING = "starting"  # not yet `healthy_after` passes in a row
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"  # `unhealthy_after` failures in a row, counted once `grace` has passed


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
    # not running: how its leader ended, as sh reports it (an exit code, or 128 + the signal that ended it; see
    # `ended_by`); None when nobody recorded it (an older runtime, or a waiter that was killed with the host)
    exit_status: int | None = None

    @property
    def ended_by(self) -> tuple[int | None, int | None]:
        """(exit code, signal number) of a replica that is not running, each None when not known. A status above
        128 is the signal 128 less, as sh reports a child a signal ended (so an exit(137) reads as SIGKILL too)."""
        status = self.exit_status
        if status is None or self.running:
            return None, None
        if 128 < status <= 128 + 64:
            return None, status - 128
        return status, None

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
class MachineIdentity:
    """Which machine and state directory a host's probe runs with (its first frame; issue 12, item 13).

    Two [[hosts]] entries are one machine when their probes run under one boot of one kernel (`boot_id`) and
    use one directory (`directory`: its device and inode). Neither a path nor the machine id decides it: hosts
    in network namespaces, and other machines, have the same path (`~/.loadmaster/<cluster>`) without sharing
    it, and VMs cloned from one image share a machine id and even the directory's inode, never a boot."""

    machine_id: str | None  # /etc/machine-id (else dbus'): shown, not compared
    boot_id: str  # /proc/sys/kernel/random/boot_id
    directory: str  # "DEVICE:INODE" of the state directory
    state_dir: str  # its path, as the probe expanded it: shown, not compared

    @property
    def key(self) -> tuple[str, str]:
        return self.boot_id, self.directory


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
    host_key: str | None = None  # the fingerprint of a host key it presented that is not trusted (to trust or not)
    identity: MachineIdentity | None = None  # from its probe: two hosts with one key are one machine
    enforcement: str | None = None  # how it limits replicas' cpu and memory: cgroup2, cgroup1 or none (see limits)
