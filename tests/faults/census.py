"""Counting replicas for real: which processes run which replica, on which host.

Not what the hosts report nor what the controller believes: the processes themselves.
Every replica's stdout leads to its log file, `<state dir>/logs/<service hex>.<index>.log`:
a pipe read by the log's rotating reader (`head -c`, fd/0 the pipe, fd/1 the file; older
runtimes pointed the replica's fd/1 at the file itself). So a host's live processes grouped
by the log their fd/1 leads to, counted as distinct sessions (a replica is a `setsid` session:
its shell and children share one), give the copies of each replica on that host; the readers
themselves are not copies. Two sessions on one log file, or copies on two hosts, is a
replica running twice (NOTES.md, "Counting replicas for real").
"""

from __future__ import annotations

import os
import re
import stat
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from core.model import ReplicaId

_LOG = re.compile(r"/\.loadmaster/[^/]+/logs/([0-9a-f]+)\.(\d+)\.log$")


@dataclass(frozen=True, slots=True)
class Copy:
    host: str
    session: int
    stopped: bool  # SIGSTOPped (a hung host's replica): alive, not running


def _fd(pid: int, fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return None  # gone, a zombie, or no such descriptor


def _pipe(pid: int, fd: int) -> tuple[int, int] | None:
    """The pipe behind a descriptor, as (device, inode), else None. A pipe opened through a FIFO (the
    runtime makes the replica's pipe so, then unlinks it) reads as the FIFO's path, `… (deleted)`, not as
    `pipe:[…]`: only stat says what it is, and names both kinds alike."""
    try:
        st = os.stat(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISFIFO(st.st_mode) else None


def _log_replica(target: str | None) -> ReplicaId | None:
    match = _LOG.search(target or "")
    if match is None:
        return None
    try:
        service = bytes.fromhex(match.group(1)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return ReplicaId(service, int(match.group(2)))


def _replicas_of(pids: Iterable[int]) -> dict[int, ReplicaId]:
    """pid → the replica whose log its stdout leads to, leaving out the logs' readers."""
    readers: dict[tuple[int, int], ReplicaId] = {}  # the pipe a reader copies into a log → that log's replica
    direct: dict[int, ReplicaId] = {}
    piped: dict[int, tuple[int, int]] = {}
    for pid in pids:
        replica = _log_replica(_fd(pid, 1))
        if replica is not None:
            source = _pipe(pid, 0)
            if source is not None:
                readers[source] = replica
            else:
                direct[pid] = replica
        elif (out := _pipe(pid, 1)) is not None:
            piped[pid] = out
    return direct | {pid: readers[p] for pid, p in piped.items() if p in readers}


def _stopped(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"
    except (OSError, IndexError):
        return False


def census(pids_by_host: Mapping[str, Iterable[int]]) -> dict[ReplicaId, list[Copy]]:
    """replica → its copies (one per session per host) among the given processes."""
    seen: dict[ReplicaId, dict[tuple[str, int], bool]] = defaultdict(dict)
    for host, pids in pids_by_host.items():
        for pid, replica in _replicas_of(list(pids)).items():
            try:
                session = os.getsid(pid)
            except OSError:
                continue
            key = (host, session)
            # A session counts as stopped only if every process of it we saw is stopped.
            seen[replica][key] = seen[replica].get(key, True) and _stopped(pid)
    return {
        r: [Copy(h, s, stopped) for (h, s), stopped in sorted(copies.items())] for r, copies in sorted(seen.items())
    }


def problems(
    copies: Mapping[ReplicaId, list[Copy]], desired: Iterable[ReplicaId], *, live_only: bool = True
) -> list[str]:
    """What is wrong with the count: replicas missing, doubled, or not declared. Empty when every
    desired replica runs exactly once. `live_only` leaves out copies frozen on a hung host."""
    wanted = set(desired)
    out: list[str] = []
    for replica in sorted(wanted | set(copies)):
        running = [c for c in copies.get(replica, []) if not (live_only and c.stopped)]
        where = ", ".join(f"{c.host} (session {c.session})" for c in running)
        if replica not in wanted and running:
            out.append(f"{replica} is not declared yet runs on {where}")
        elif replica in wanted and not running:
            out.append(f"{replica} runs nowhere (lost)")
        elif len(running) > 1:
            out.append(f"{replica} runs {len(running)} times: {where}")
    return out
