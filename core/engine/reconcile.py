"""What runs where, decided from the hosts' own records (pure).

Hosts hold the truth, but after partitions and crashes they can disagree:
a replica may run on two hosts, or have a dead record on one host and a live
copy on another. This module turns the records into one current placement and
the clean-up steps that restore "each replica exactly once".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.model import ClusterConfig, HostState, Placement, ReplicaId, ReplicaStatus


@dataclass(frozen=True, slots=True)
class Reconciliation:
    current: Placement  # one host per replica: where it runs (or last ran, on a lost host)
    duplicates: tuple[tuple[ReplicaId, str], ...]  # extra live copies to stop
    stale: tuple[tuple[ReplicaId, str], ...]  # dead records whose replica lives elsewhere: remove
    crashed: tuple[tuple[ReplicaId, str], ...]  # dead records with no live copy: restart in place
    running: Mapping[str, int]  # service → live replicas on reachable hosts


def reconcile(
    config: ClusterConfig,
    states: Mapping[str, HostState],
    records: Mapping[str, tuple[ReplicaStatus, ...]],
    intended: Placement | None = None,
    given_up: frozenset[tuple[ReplicaId, str]] = frozenset(),
) -> Reconciliation:
    """`records`: per host, the replicas it reported (for a lost host, the last report).

    `given_up` are (replica, host) pairs whose in-place restarts failed too often:
    they are left out of the placement so that the optimizer puts them elsewhere.
    """
    live: dict[ReplicaId, list[ReplicaStatus]] = {}
    dead: dict[ReplicaId, list[ReplicaStatus]] = {}
    lost: dict[ReplicaId, list[ReplicaStatus]] = {}
    for host in sorted(records):
        state = states.get(host, HostState.UNKNOWN)
        for status in records[host]:
            if not state.reachable:
                if status.running:
                    lost.setdefault(status.replica, []).append(status)
            elif status.running:
                live.setdefault(status.replica, []).append(status)
            else:
                dead.setdefault(status.replica, []).append(status)

    assignments: dict[ReplicaId, str] = {}
    duplicates: list[tuple[ReplicaId, str]] = []
    for replica, copies in live.items():
        keep = _keeper(copies, intended.host_of(replica) if intended else None)
        assignments[replica] = keep.host
        duplicates.extend((replica, c.host) for c in copies if c is not keep)

    stale: list[tuple[ReplicaId, str]] = []
    crashed: list[tuple[ReplicaId, str]] = []
    for replica, records_ in dead.items():
        for i, status in enumerate(sorted(records_, key=lambda s: s.host)):
            if replica in assignments or i > 0 or (replica, status.host) in given_up:
                stale.append((replica, status.host))
            else:
                crashed.append((replica, status.host))
                assignments[replica] = status.host
    for replica, copies in lost.items():
        # A lost host's replicas stay in the placement on it, so the optimizer sees them as displaced.
        if replica not in assignments:
            assignments[replica] = _keeper(copies, intended.host_of(replica) if intended else None).host

    running: dict[str, int] = {s.name: 0 for s in config.services}
    for replica in live:
        running[replica.service] = running.get(replica.service, 0) + 1
    return Reconciliation(
        current=Placement(assignments),
        duplicates=tuple(sorted(duplicates)),
        stale=tuple(sorted(stale)),
        crashed=tuple(sorted(crashed)),
        running=running,
    )


def _keeper(copies: list[ReplicaStatus], intended_host: str | None) -> ReplicaStatus:
    for c in copies:
        if c.host == intended_host:
            return c
    # Otherwise the copy that has served longest; ties broken by host name for determinism.
    return min(copies, key=lambda c: (c.started_at if c.started_at is not None else float("inf"), c.host))
