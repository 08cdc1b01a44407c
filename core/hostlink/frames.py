"""Probe frames: the text a host streams every poll, parsed into immutable observations.

A frame is a block of lines that the probe script (`core/hostlink/scripts.py`)
prints with shell built-ins only, so the host forks nothing but `sleep`:

    F <seq>
    cpu  <user> <nice> <system> <idle> <iowait> <irq> <softirq> <steal> ...   (first line of /proc/stat)
    mem <MemTotal kB> <MemAvailable kB>
    load <the /proc/loadavg line>
    up <the /proc/uptime line>
    ncpu <cpus> <clock ticks per second>
    cap <millicores> <bytes>                      (demo hosts only: the declared capacity)
    t <epoch> <holder> <centiseconds since the holder renewed, or ->   (the host's fence)
    w <what> <words…>                            (first frame only: what this host cannot do, e.g. http checks)
    lim <cgroup2|cgroup1|none>                    (how the host limits replicas: core/hostlink/limits.py)
    o <service hex> <index> <pid>                 (a replica that died OOM-killed by its memory limit)
    r <service hex> <index> <generation hex> <pid> <started unix s> <alive 0/1> <cpu ticks> <rss kB> <epoch or ->
    h <service hex> <index> <pid> <s|h|u> <passes in a row> <failures in a row> <last result>
    E

An `h` line follows the `r` line of each live replica whose service has a health check: its state
(starting, healthy, unhealthy) as the host's probe judged it by the check's rules.

A host without /proc answers a single `U <reason>` line instead.
Everything here is pure: bytes in, frames out, observations from two frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.hostlink.limits import KINDS
from core.model import (
    Fence,
    Health,
    HostObservation,
    HostState,
    MachineIdentity,
    ReplicaId,
    ReplicaStatus,
    Resources,
    Token,
)

MAX_FRAME_BYTES = 1 << 20  # a frame is ~300 bytes plus ~80 per replica; more is not a probe talking
# What a machine can report. Anything outside is a host lying or broken, and is refused here so that it
# never reaches the planner (a negative MemTotal once made every plan of the cluster impossible).
MAX_MEM_KB = 1 << 42  # 4 PiB, the most 5-level paging addresses
MAX_CPUS = 1 << 16
MAX_HZ = 100_000
MAX_SECONDS = 1e11  # ~3,000 years of uptime or unix time
MAX_LOAD = 1e6
MAX_INT = (1 << 31) - 1  # pids and replica indexes
MAX_COUNTER = 1 << 62  # clock-tick counters


class FrameError(ValueError):
    """A frame that cannot be read; the message says what was wrong with it."""


@dataclass(frozen=True, slots=True)
class ReplicaSample:
    replica: ReplicaId
    generation: str
    pid: int
    started_at: float
    alive: bool
    ticks: int | None  # utime + stime, clock ticks
    rss_kb: int | None
    epoch: int | None = None  # the fencing epoch it was started under (None: a record of an older runtime)


_HEALTH = {"s": Health.STARTING, "h": Health.HEALTHY, "u": Health.UNHEALTHY}


@dataclass(frozen=True, slots=True)
class CheckSample:
    """One replica's health check as the host's probe reports it."""

    replica: ReplicaId
    pid: int
    health: Health
    passes: int  # in a row
    failures: int  # in a row, counted once the grace period is over
    detail: str  # the last result: ok, no-answer, http-5xx, exit-N, timeout, not-listening, or - before the first


@dataclass(frozen=True, slots=True)
class Frame:
    seq: int
    cpu: tuple[int, ...]  # /proc/stat "cpu" counters, clock ticks
    mem_total_kb: int
    mem_available_kb: int | None  # None on kernels before 3.14
    load1: float
    uptime: float
    ncpu: int
    hz: int
    capacity: Resources | None = None  # declared capacity (demo hosts)
    replicas: tuple[ReplicaSample, ...] = ()
    fence: Fence | None = None
    checks: tuple[CheckSample, ...] = ()
    warnings: tuple[str, ...] = ()
    enforcement: str | None = None  # `lim` line: cgroup2, cgroup1 or none (core/hostlink/limits.py)
    oom_killed: frozenset[tuple[ReplicaId, int]] = frozenset()  # `o` lines: (replica, pid) the kernel OOM-killed
    exits: tuple[tuple[ReplicaId, int, int], ...] = ()  # `x` lines: (replica, pid, status) of dead replicas' leaders
    identity: MachineIdentity | None = None  # `id` line, first frame: which machine and state directory

    @property
    def cpu_busy_total(self) -> tuple[int, int]:
        """(busy, total) ticks over the eight classic fields; guest time is already in user."""
        fields = self.cpu[:8]
        total = sum(fields)
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return total - idle, total


@dataclass(frozen=True, slots=True)
class Unsupported:
    reason: str


def decode_hex(text: str, what: str) -> str:
    try:
        return bytes.fromhex(text).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise FrameError(f"{what} {text[:40]!r} is not hex-encoded UTF-8") from None


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FrameError(f"{what} {text[:40]!r} is not a whole number") from None


def _float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FrameError(f"{what} {text[:40]!r} is not a number") from None
    if not math.isfinite(value):  # float() takes "nan", "inf" and "1e400"
        raise FrameError(f"{what} {text[:40]!r} is not a finite number")
    return value


def _int_in(text: str, what: str, low: int, high: int) -> int:
    value = _int(text, what)
    if not low <= value <= high:
        raise FrameError(f"{what} {value} is impossible (expected {low} to {high})")
    return value


def _float_in(text: str, what: str, high: float) -> float:
    value = _float(text, what)
    if not 0 <= value <= high:
        raise FrameError(f"{what} {value:g} is impossible (expected 0 to {high:g})")
    return value


def parse_replica_line(fields: list[str]) -> ReplicaSample:
    if len(fields) != 10:
        raise FrameError(f"replica line has {len(fields)} fields, expected 10")
    _, svc, index, gen, pid, started, alive, ticks, rss, epoch = fields
    return ReplicaSample(
        replica=ReplicaId(decode_hex(svc, "service name"), _int_in(index, "replica index", 0, MAX_INT)),
        generation=decode_hex(gen, "generation"),
        pid=_int_in(pid, "pid", 1, MAX_INT),
        started_at=_float_in(started, "start time", MAX_SECONDS),
        alive=alive == "1",
        ticks=_int_in(ticks, "cpu ticks", 0, MAX_COUNTER) if ticks != "-" else None,
        rss_kb=_int_in(rss, "rss kB", 0, MAX_MEM_KB) if rss != "-" else None,
        epoch=_int(epoch, "epoch") if epoch != "-" else None,
    )


def parse_fence(fields: list[str]) -> Fence:
    """`t EPOCH HOLDER AGE` → the host's fence (AGE in centiseconds, `-` when unknown)."""
    if len(fields) != 3:
        raise FrameError(f"fence line has {len(fields)} values, expected epoch, holder and age")
    epoch, holder, age = fields
    return Fence(Token(_int(epoch, "fence epoch"), holder), _int(age, "fence age") / 100 if age != "-" else None)


def parse_check_line(fields: list[str]) -> CheckSample:
    if len(fields) != 8:
        raise FrameError(f"health line has {len(fields)} fields, expected 8")
    _, svc, index, pid, state, passes, failures, detail = fields
    health = _HEALTH.get(state)
    if health is None:
        raise FrameError(f"health state {state[:10]!r} is not one of s, h, u")
    return CheckSample(
        replica=ReplicaId(decode_hex(svc, "service name"), _int(index, "replica index")),
        pid=_int(pid, "pid"),
        health=health,
        passes=_int(passes, "passes"),
        failures=_int(failures, "failures"),
        detail=detail[:40],
    )


def parse_frame(text: str) -> Frame:
    """One complete frame (from `F` to `E`) → Frame; raises FrameError naming what is missing or bad."""
    lines = text.strip("\n").split("\n")
    if len(lines) < 2 or not lines[0].startswith("F ") or lines[-1] != "E":
        raise FrameError("frame does not run from an 'F <seq>' line to an 'E' line")
    seq = _int(lines[0][2:], "frame number")
    seen: dict[str, list[str]] = {}
    replicas = []
    checks = []
    warnings = []
    oom = set()
    exits = []
    for line in lines[1:-1]:
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "r":
            replicas.append(parse_replica_line(fields))
        elif fields[0] == "h":
            checks.append(parse_check_line(fields))
        elif fields[0] == "w":
            warnings.append(" ".join(fields[1:])[:300])
        elif fields[0] == "o" and len(fields) == 4:
            oom.add((ReplicaId(decode_hex(fields[1], "service name"), _int_in(fields[2], "replica index", 0, MAX_INT)),
                     _int_in(fields[3], "pid", 1, MAX_INT)))  # fmt: skip
        elif fields[0] == "x" and len(fields) == 5:
            replica = ReplicaId(decode_hex(fields[1], "service name"), _int_in(fields[2], "replica index", 0, MAX_INT))
            exits.append((replica, _int_in(fields[3], "pid", 1, MAX_INT), _int_in(fields[4], "exit status", 0, 255)))
        else:
            seen[fields[0]] = fields[1:]
    missing = [k for k in ("cpu", "mem", "load", "up", "ncpu") if k not in seen]
    if missing:
        raise FrameError(f"frame {seq} lacks {', '.join(missing)}")
    cpu = tuple(_int_in(v, "cpu counter", 0, MAX_COUNTER) for v in seen["cpu"])
    if len(cpu) < 4:
        raise FrameError(f"frame {seq}: cpu line has {len(cpu)} counters, expected at least 4")
    mem = seen["mem"]
    if not mem or not mem[0]:
        raise FrameError(f"frame {seq}: no MemTotal")
    ncpu = seen["ncpu"]
    if len(ncpu) != 2:
        raise FrameError(f"frame {seq}: ncpu line needs cpus and clock ticks")
    capacity = None
    if "cap" in seen:
        cap = seen["cap"]
        if len(cap) != 2:
            raise FrameError(f"frame {seq}: cap line needs millicores and bytes")
        capacity = Resources(
            _int_in(cap[0], "declared cpu", 0, MAX_CPUS * 1000), _int_in(cap[1], "declared mem", 0, MAX_MEM_KB * 1024)
        )
    if not seen["load"] or not seen["up"]:
        raise FrameError(f"frame {seq}: empty load or uptime line")
    fence = parse_fence(seen["t"]) if "t" in seen else None
    return Frame(
        seq=seq,
        cpu=cpu,
        mem_total_kb=_int_in(mem[0], "MemTotal kB", 1, MAX_MEM_KB),
        mem_available_kb=_int_in(mem[1], "MemAvailable kB", 0, MAX_MEM_KB) if len(mem) > 1 and mem[1] else None,
        load1=_float_in(seen["load"][0], "load average", MAX_LOAD),
        uptime=_float_in(seen["up"][0], "uptime", MAX_SECONDS),
        ncpu=max(1, _int_in(ncpu[0], "cpu count", 0, MAX_CPUS)),  # 0: /proc/stat without per-cpu lines
        hz=max(1, _int_in(ncpu[1], "clock ticks", 0, MAX_HZ)),
        capacity=capacity,
        replicas=tuple(replicas),
        fence=fence,
        checks=tuple(checks),
        warnings=tuple(warnings),
        enforcement=_enforcement(seen.get("lim")),
        oom_killed=frozenset(oom),
        exits=tuple(exits),
        identity=_identity(seen.get("id")),
    )


def _identity(fields: list[str] | None) -> MachineIdentity | None:
    """`id MACHINE-ID BOOT-ID DEVICE:INODE STATE-DIR` → the identity; None when the boot or the directory is not
    known (`-`), or from an older probe: such a host is never taken for another's."""
    if fields is None or len(fields) < 4 or "-" in (fields[1], fields[2]):
        return None
    machine, boot, directory = fields[0], fields[1][:64], fields[2][:64]
    return MachineIdentity(None if machine == "-" else machine[:64], boot, directory, " ".join(fields[3:])[:4096])


def _enforcement(fields: list[str] | None) -> str | None:
    if fields is None:
        return None  # a probe of an older runtime
    if len(fields) != 1 or fields[0] not in KINDS:
        raise FrameError(f"enforcement {' '.join(fields)[:40]!r} is not one of {', '.join(KINDS)}")
    return fields[0]


class FrameReader:
    """Cuts a byte stream into frames; feed it whatever arrived, get back what is complete.

    Garbage between frames is reported once as a FrameError and skipped, so one bad
    write does not stall the stream.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._searched = 0  # bytes of _buf already searched for an end of frame: each byte is searched once

    def feed(self, data: bytes) -> list[Frame | Unsupported | FrameError]:
        buf = self._buf
        buf += data
        out: list[Frame | Unsupported | FrameError] = []
        pos = 0
        while True:
            if buf.startswith(b"U ", pos) and (newline := buf.find(b"\n", pos)) >= 0:
                out.append(Unsupported(buf[pos + 2 : newline].decode("utf-8", "replace").strip()))
                pos = newline + 1
                continue
            end = buf.find(b"\nE\n", max(pos, self._searched - 2))
            if end < 0:
                break
            block, pos = bytes(buf[pos:end]), end + 3
            if len(block) > MAX_FRAME_BYTES:
                out.append(FrameError(f"a frame of {len(block)} bytes is over the {MAX_FRAME_BYTES}-byte limit"))
                continue
            start = 0 if block.startswith(b"F ") else block.rfind(b"\nF ") + 1 or -1
            if start != 0:
                out.append(FrameError(f"skipped {start if start > 0 else len(block)} bytes that are not a frame"))
                if start < 0:
                    continue
            try:
                out.append(parse_frame(block[start:].decode("utf-8") + "\nE"))
            except UnicodeDecodeError:
                out.append(FrameError("frame is not UTF-8 text"))
            except FrameError as exc:
                out.append(exc)
        del buf[:pos]
        self._searched = len(buf)
        if len(buf) > MAX_FRAME_BYTES:
            buf.clear()
            self._searched = 0
            out.append(FrameError(f"no end of frame within {MAX_FRAME_BYTES} bytes; dropped them"))
        return out


def _percent(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 2) if whole > 0 and part >= 0 else None


def observe(host: str, frame: Frame, prev: Frame | None, at: float) -> HostObservation:
    """A host observation from a frame, with cpu% from the counter deltas since `prev`."""
    cpu_percent = None
    if prev is not None:
        busy, total = frame.cpu_busy_total
        pbusy, ptotal = prev.cpu_busy_total
        cpu_percent = _percent(busy - pbusy, total - ptotal)
    elapsed = frame.uptime - prev.uptime if prev is not None else 0.0
    before = {(s.replica, s.pid): s.ticks for s in prev.replicas} if prev is not None else {}
    checks = {(c.replica, c.pid): c for c in frame.checks}
    exits = {(r, pid): status for r, pid, status in frame.exits} if frame.exits else {}
    replicas = []
    for s in frame.replicas:
        last = before.get((s.replica, s.pid))
        rep_percent = None
        if s.alive and s.ticks is not None and last is not None and elapsed > 0:
            rep_percent = _percent((s.ticks - last) / frame.hz, elapsed)
        check = checks.get((s.replica, s.pid)) if s.alive else None
        replicas.append(
            ReplicaStatus(
                replica=s.replica,
                host=host,
                pid=s.pid,
                running=s.alive,
                generation=s.generation,
                cpu_seconds=s.ticks / frame.hz if s.ticks is not None else None,
                cpu_percent=rep_percent,
                rss=s.rss_kb * 1024 if s.rss_kb is not None else None,
                started_at=s.started_at,
                epoch=s.epoch,
                health=check.health if check is not None else None,
                health_detail=check.detail if check is not None else "",
                oom_killed=not s.alive and (s.replica, s.pid) in frame.oom_killed,
                exit_status=None if s.alive else exits.get((s.replica, s.pid)),
            )
        )
    mem_total = frame.mem_total_kb * 1024
    return HostObservation(
        host=host,
        state=HostState.UP,
        at=at,
        capacity=frame.capacity or Resources(frame.ncpu * 1000, mem_total),
        cpu_percent=cpu_percent,
        mem_total=mem_total,
        mem_available=frame.mem_available_kb * 1024 if frame.mem_available_kb is not None else None,
        load1=frame.load1,
        ncpu=frame.ncpu,
        uptime=frame.uptime,
        replicas=tuple(sorted(replicas, key=lambda r: r.replica)),
        last_seen=at,
        fence=frame.fence,
        enforcement=frame.enforcement,
    )
