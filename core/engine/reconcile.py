"""What runs where, decided from the hosts' own records (pure).

Hosts hold the truth, but after partitions and crashes they can disagree:
a replica may run on two hosts, or have a dead record on one host and a live
copy on another. This module turns the records into one current placement and
the clean-up steps that restore "each replica exactly once".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.model import ClusterConfig, Health, HostState, Placement, ReplicaId, ReplicaStatus


@dataclass(frozen=True, slots=True)
class Reconciliation:
    current: Placement  # one host per replica: where it runs (or last ran, on a lost host)
    duplicates: tuple[tuple[ReplicaId, str], ...]  # extra live copies to stop
    stale: tuple[tuple[ReplicaId, str], ...]  # dead records whose replica lives elsewhere: remove
    crashed: tuple[tuple[ReplicaId, str], ...]  # dead records with no live copy: restart in place
    running: Mapping[str, int]  # service → healthy live replicas on reachable hosts (what min_healthy counts)
    unhealthy: tuple[ReplicaStatus, ...] = ()  # kept live copies whose check fails: restart in place


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
    # Nearly every replica has one live copy and nothing else: it is kept alone (`live`), and only a
    # replica with several live copies gets a list (`copies`). At 50,000 replicas this runs on every
    # observation that changed something: a list, a keeper's `min` and an `any` per replica cost 100 ms.
    live: dict[ReplicaId, ReplicaStatus] = {}  # the first live copy
    copies: dict[ReplicaId, list[ReplicaStatus]] = {}  # every live copy, of replicas with more than one
    dead: dict[ReplicaId, list[ReplicaStatus]] = {}
    lost: dict[ReplicaId, list[ReplicaStatus]] = {}
    for host in sorted(records):
        if not states.get(host, HostState.UNKNOWN).reachable:
            for status in records[host]:
                if status.running:
                    lost.setdefault(status.replica, []).append(status)
            continue
        for status in records[host]:
            if not status.running:
                dead.setdefault(status.replica, []).append(status)
                continue
            first = live.setdefault(status.replica, status)
            if first is not status:
                several = copies.get(status.replica)
                if several is None:
                    copies[status.replica] = [first, status]
                else:
                    several.append(status)

    assignments: dict[ReplicaId, str] = {}
    duplicates: list[tuple[ReplicaId, str]] = []
    unhealthy: list[ReplicaStatus] = []
    stale: list[tuple[ReplicaId, str]] = []
    # What min_healthy counts: a live copy that passes its service's check (or runs, without a check).
    running: dict[str, int] = {s.name: 0 for s in config.services}
    for replica, keep in live.items():
        several = copies.get(replica) if copies else None
        if several is None:
            healthy = keep.healthy
        else:
            keep = _keeper(several, intended.host_of(replica) if intended else None)
            duplicates.extend((replica, c.host) for c in several if c is not keep)
            healthy = any(c.healthy for c in several)
        if healthy:
            running[replica.service] = running.get(replica.service, 0) + 1
        if keep.health is Health.UNHEALTHY and (replica, keep.host) in given_up:
            # Restarted in place too often and still failing its check: it goes, and the plan puts it elsewhere.
            stale.append((replica, keep.host))
            continue
        assignments[replica] = keep.host
        if keep.health is Health.UNHEALTHY:
            unhealthy.append(keep)

    crashed: list[tuple[ReplicaId, str]] = []
    for replica, records_ in dead.items():
        for i, status in enumerate(sorted(records_, key=lambda s: s.host)):
            if replica in assignments or i > 0 or (replica, status.host) in given_up:
                stale.append((replica, status.host))
            else:
                crashed.append((replica, status.host))
                assignments[replica] = status.host
    for replica, lost_copies in lost.items():
        # A lost host's replicas stay in the placement on it, so the optimizer sees them as displaced.
        if replica not in assignments:
            assignments[replica] = _keeper(lost_copies, intended.host_of(replica) if intended else None).host

    return Reconciliation(
        current=Placement(assignments),
        duplicates=tuple(sorted(duplicates)),
        stale=tuple(sorted(stale)),
        crashed=tuple(sorted(crashed)),
        running=running,
        unhealthy=tuple(sorted(unhealthy, key=lambda r: (r.replica, r.host))),
    )


def _keeper(copies: list[ReplicaStatus], intended_host: str | None) -> ReplicaStatus:
    for c in copies:
        if c.host == intended_host:
            return c
    # Otherwise the copy that has served longest; ties broken by host name for determinism.
    return min(copies, key=lambda c: (c.started_at if c.started_at is not None else float("inf"), c.host))
