"""The engine's snapshot as the API's JSON documents (plain dicts, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.autoscale import measured_ratio
from core.engine.api import Snapshot
from core.engine.basis import basis_of
from core.engine.planfile import failover_document, plan_document
from core.model import HostObservation, HostState, Plan, ReplicaStatus, Resources, Service


def _resources(r: Resources | None) -> dict[str, int] | None:
    return None if r is None else r.as_dict()


def _replica(status: ReplicaStatus, state: HostState) -> dict[str, Any]:
    # "unknown": its host cannot be asked now
    health = "unknown" if not state.reachable else "running" if status.running else "exited"
    return {
        "replica": str(status.replica),
        "host": status.host,
        "health": health,
        "pid": status.pid,
        "cpu_percent": status.cpu_percent,
        "rss": status.rss,
        "started_at": status.started_at,
    }


def host(snapshot: Snapshot, obs: HostObservation) -> dict[str, Any]:
    declared = snapshot.config.host(obs.host)
    return {
        "name": obs.host,
        "address": declared.address,
        "state": obs.state.value,
        "error": obs.error,
        "labels": dict(declared.labels),
        "capacity": _resources(declared.usable(obs.capacity)),  # what loadmaster may fill: pin or probe − reserve
        "probed": _resources(obs.capacity),
        "cpu_percent": obs.cpu_percent,
        "mem_total": obs.mem_total,
        "mem_available": obs.mem_available,
        "load1": obs.load1,
        "last_seen": obs.last_seen,
        "replicas": [_replica(r, obs.state) for r in obs.replicas],
    }


def hosts(snapshot: Snapshot) -> list[dict[str, Any]]:
    return [host(snapshot, obs) for obs in snapshot.hosts.values()]


def services(
    snapshot: Snapshot,
    declared: tuple[Service, ...],
    definitions: Mapping[str, Mapping[str, Any]],
    last_decisions: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Each declared service: desired replicas (from the file), where they run and how they are.

    One pass over what runs and what is assigned, grouped by service: at 1,000 hosts this is rendered
    once per engine tick, and hashing every replica id per service would cost several times more.
    """
    last_decisions = last_decisions or {}
    wanted = {s.name: s.replicas for s in declared}
    running: dict[str, list[tuple[int, Any]]] = {name: [] for name in wanted}
    for replica, hosts in snapshot.running().items():
        if replica.index < wanted.get(replica.service, 0):
            running[replica.service].append((replica.index, hosts[0] if len(hosts) == 1 else hosts))
    placed: dict[str, list[tuple[int, Any]]] = {name: [] for name in wanted}
    for replica, host in snapshot.placement.assignments.items():
        if replica.index < wanted.get(replica.service, 0):
            placed[replica.service].append((replica.index, host))
    where = {name: {f"{name}/{i}": h for i, h in sorted(found)} for name, found in running.items()}
    assigned = {name: {f"{name}/{i}": h for i, h in sorted(found)} for name, found in placed.items()}
    unplaced: dict[str, dict[str, str]] = {name: {} for name in wanted}
    for replica, why in snapshot.unplaced.items():
        if replica.service in unplaced:
            unplaced[replica.service][str(replica)] = why
    out = []
    for s in declared:
        up = len(where[s.name])
        out.append({
            "name": s.name,
            "replicas": s.replicas,
            "running": up,
            "health": "healthy" if up == s.replicas else ("down" if not up else "degraded"),
            "where": where[s.name],
            "assigned": assigned[s.name],
            "unplaced": unplaced[s.name],
            "definition": dict(definitions.get(s.name, {})),
            **({"autoscale": _autoscale(snapshot, s, last_decisions.get(s.name))} if s.autoscale else {}),
        })  # fmt: skip
    return out


def _autoscale(snapshot: Snapshot, s: Service, last: str | None) -> dict[str, Any]:
    assert s.autoscale is not None
    ratio = measured_ratio(snapshot, s)
    return {
        "min": s.autoscale.min,
        "max": s.autoscale.max,
        "cpu_target": s.autoscale.cpu_target,
        "cpu_ratio": None if ratio is None else round(ratio, 3),  # now; decisions average over the window
        "last_decision": last,
    }


def plan(snapshot: Snapshot, p: Plan, pid: str, status: str) -> dict[str, Any]:
    capacities = {
        h.name: h.usable(obs.capacity if (obs := snapshot.hosts.get(h.name)) else None) for h in snapshot.config.hosts
    }
    return {"id": pid, "status": status, **plan_document(p, snapshot.config, capacities)}


def failover(snapshot: Snapshot) -> dict[str, Any]:
    basis = basis_of(snapshot.config, snapshot.hosts, snapshot.placement)
    doc = failover_document(snapshot.config.name, snapshot.at, basis, snapshot.failover)
    doc["survives_any_host"] = all(p.survives for p in snapshot.failover if p.scope == "host")
    return doc
