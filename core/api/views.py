"""The engine's snapshot as the API's JSON documents (plain dicts, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
    snapshot: Snapshot, declared: tuple[Service, ...], definitions: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Each declared service: desired replicas (from the file), where they run and how they are."""
    running = snapshot.running()
    placed = snapshot.placement.assignments
    out = []
    for s in declared:
        ids = s.replica_ids()
        up = [r for r in ids if r in running]
        unplaced = {str(r): why for r, why in snapshot.unplaced.items() if r.service == s.name}
        out.append({
            "name": s.name,
            "replicas": s.replicas,
            "running": len(up),
            "health": "healthy" if len(up) == s.replicas else ("down" if not up else "degraded"),
            "where": {str(r): running[r] if len(running[r]) > 1 else running[r][0] for r in up},
            "assigned": {str(r): placed[r] for r in ids if r in placed},
            "unplaced": unplaced,
            "definition": dict(definitions.get(s.name, {})),
        })  # fmt: skip
    return out


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
