"""Replica records read on this machine (the local host, demo hosts), with psutil.

The records are the ones `scripts.START` writes; this is the same reading the
shell does on a remote host, for hosts loadmaster reaches without SSH.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import psutil

from core.hostlink.frames import FrameError, ReplicaSample, decode_hex
from core.model import ReplicaId

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


def parse_record(line: str) -> Record:
    fields = line.split()
    if len(fields) != 9 or fields[0] != "v1":
        raise FrameError(f"replica record {line[:60]!r} is not a v1 record")
    _, svc, index, gen, cmd, pid, start, at, port = fields
    try:
        return Record(
            replica=ReplicaId(decode_hex(svc, "service name"), int(index)),
            generation=decode_hex(gen, "generation") if gen != "-" else "",
            command=decode_hex(cmd, "command"),
            pid=int(pid),
            starttime=int(start),
            started_at=float(at),
            port=int(port) if port != "-" else None,
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


def _process(record: Record) -> psutil.Process | None:
    """The record's process if it still runs with the recorded start time (a reused pid is not it)."""
    try:
        proc = psutil.Process(record.pid)
        started = round((proc.create_time() - psutil.boot_time()) * HZ)
        if abs(started - record.starttime) > 1 or proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


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


def sample(record: Record) -> ReplicaSample:
    """Liveness, cpu ticks and RSS of a replica: its process and that process's children."""
    proc = _process(record)
    ticks = rss = None
    if proc is not None:
        try:
            with proc.oneshot():
                members = [proc, *_children(record.pid)]
            times = [m.cpu_times() for m in members]
            ticks = round(sum(t.user + t.system for t in times) * HZ)
            rss = sum(m.memory_info().rss for m in members) // 1024
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            proc = None
    return ReplicaSample(
        replica=record.replica,
        generation=record.generation,
        pid=record.pid,
        started_at=record.started_at,
        alive=proc is not None,
        ticks=ticks if proc is not None else None,
        rss_kb=rss if proc is not None else None,
    )


def kill(record: Record, sig: signal.Signals = signal.SIGKILL) -> None:
    """Signal the replica's process group, if the record's process still runs."""
    if _process(record) is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(record.pid, sig)
