"""Replica records read on this machine (the local host, demo hosts), with psutil.

The records are the ones `scripts.START` writes; this is the same reading the
shell does on a remote host, for hosts loadmaster reaches without SSH: a replica
runs while its session leader runs with the recorded start time or, once the
leader is gone, while any process of its session remains. The fence is read and
renewed here as the shell probe does it (see `scripts`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from core.hostlink.frames import FrameError, ReplicaSample, decode_hex
from core.model import Fence, ReplicaId, Token

HZ = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Record:
    replica: ReplicaId
    generation: str
    command: str
    pid: int
    starttime: int  # clock ticks after boot, field 22 of /proc/PID/stat
    started_at: float
    port: int | None
    epoch: int | None = None  # the token it was started under (v1 records have none)


def parse_record(line: str) -> Record:
    fields = line.split()
    if not ((len(fields) == 9 and fields[0] == "v1") or (len(fields) == 11 and fields[0] == "v2")):
        raise FrameError(f"replica record {line[:60]!r} is not a v1 or v2 record")
    _, svc, index, gen, cmd, pid, start, at, port = fields[:9]
    epoch = fields[9] if len(fields) == 11 else "-"
    try:
        return Record(
            replica=ReplicaId(decode_hex(svc, "service name"), int(index)),
            generation=decode_hex(gen, "generation") if gen != "-" else "",
            command=decode_hex(cmd, "command"),
            pid=int(pid),
            starttime=int(start),
            started_at=float(at),
            port=int(port) if port != "-" else None,
            epoch=int(epoch) if epoch != "-" else None,
        )
    except ValueError as exc:
        raise FrameError(f"replica record {line[:60]!r}: {exc}") from None


def read_records(directory: Path) -> list[Record]:
    """Every readable record under `directory/replicas`; unreadable ones are skipped (a start is writing)."""
    records = []
    for path in sorted((directory / "replicas").glob("*.rec")):
        try:
            records.append(parse_record(path.read_text(encoding="utf-8")))
        except (OSError, FrameError):
            continue
    return records


class Sessions:
    """The live processes of each session, read from /proc once and only when a leader is gone."""

    def __init__(self) -> None:
        self._by_sid: dict[int, list[psutil.Process]] | None = None

    def of(self, sid: int) -> list[psutil.Process]:
        if self._by_sid is None:
            self._by_sid = {}
            for proc in psutil.process_iter():
                with contextlib.suppress(psutil.Error, OSError):
                    if proc.status() != psutil.STATUS_ZOMBIE:
                        self._by_sid.setdefault(os.getsid(proc.pid), []).append(proc)
        return self._by_sid.get(sid, [])


def _members(record: Record, sessions: Sessions) -> list[psutil.Process]:
    """What runs of the replica: its leader and the leader's children while the leader runs with the
    recorded start time, else every process left in its session (empty once it ended)."""
    try:
        proc = psutil.Process(record.pid)
        started = round((proc.create_time() - psutil.boot_time()) * HZ)
        if abs(started - record.starttime) > 1:
            return []  # the pid was reused, which the kernel does only once our session is empty
        if proc.status() != psutil.STATUS_ZOMBIE:
            return [proc, *_children(record.pid)]
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        pass
    return sessions.of(record.pid)


def _children(pid: int) -> list[psutil.Process]:
    """Direct children from /proc/PID/task/PID/children, as the shell probe reads them.

    psutil's `children()` scans every pid on the machine to build a parent map, which at
    a few hundred demo replicas per second was most of the demo fleet's cpu.
    """
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(k) for k in f.read().split()]
    except OSError:
        return []
    out = []
    for kid in kids:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            out.append(psutil.Process(kid))
    return out


def sample(record: Record, sessions: Sessions) -> ReplicaSample:
    """Liveness, cpu ticks and RSS of a replica: what runs of it (see `_members`)."""
    members = _members(record, sessions)
    ticks = rss = None
    if members:
        try:
            times = [m.cpu_times() for m in members]
            ticks = round(sum(t.user + t.system for t in times) * HZ)
            rss = sum(m.memory_info().rss for m in members) // 1024
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            members = []
    return ReplicaSample(
        replica=record.replica,
        generation=record.generation,
        pid=record.pid,
        started_at=record.started_at,
        alive=bool(members),
        ticks=ticks if members else None,
        rss_kb=rss if members else None,
        epoch=record.epoch,
    )


def exit_status(directory: Path, replica: ReplicaId, pid: int) -> int | None:
    """How a dead replica's leader ended, as its waiter recorded it (`runtime_shell.START`: `PID STATUS` in
    replicas/<service hex>.<index>.exit), if that is the record's pid; None otherwise (see the probe's `rep`)."""
    path = directory / "replicas" / f"{replica.service.encode().hex()}.{replica.index}.exit"
    try:
        recorded, status = path.read_text(encoding="utf-8").split()
        return int(status) if int(recorded) == pid and 0 <= int(status) <= 255 else None
    except (OSError, ValueError):
        return None


def exits(
    directory: Path, found: list[Record], samples: tuple[ReplicaSample, ...]
) -> tuple[tuple[ReplicaId, int, int], ...]:
    """(replica, pid, status) of each dead replica whose waiter recorded how it ended: a frame's `x` lines."""
    out = []
    for record, s in zip(found, samples, strict=True):
        if not s.alive and (status := exit_status(directory, record.replica, record.pid)) is not None:
            out.append((record.replica, record.pid, status))
    return tuple(out)


def samples(directory: Path) -> tuple[ReplicaSample, ...]:
    sessions = Sessions()
    return tuple(sample(r, sessions) for r in read_records(directory))


def kill(record: Record, sig: signal.Signals = signal.SIGKILL) -> None:
    """Signal the replica's process group and whatever is left in its session."""
    for member in _members(record, Sessions()):
        with contextlib.suppress(psutil.Error):
            member.send_signal(sig)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(record.pid, sig)


def uptime_cs() -> int:
    """The host's uptime in centiseconds: the clock of fence renewals, as /proc/uptime is for the shell."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * 100)


def fence(directory: Path, holder: str) -> Fence:
    """The fence as the probe reports it, renewing it first when `holder` holds it (see `probe_shell.PROBE`)."""
    epoch, owner = 0, "-"
    with contextlib.suppress(OSError, ValueError):
        e, owner = (directory / "fence").read_text(encoding="utf-8").split()
        epoch = int(e)
    now = uptime_cs()
    if owner == holder:
        with contextlib.suppress(OSError):
            (directory / "fence.live").write_text(f"{holder} {now}\n", encoding="utf-8")
    age = None
    with contextlib.suppress(OSError, ValueError):
        live, at = (directory / "fence.live").read_text(encoding="utf-8").split()
        if live == owner:
            age = (now - int(at)) / 100
    return Fence(Token(epoch, owner), age)
