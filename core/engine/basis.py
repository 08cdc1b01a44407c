"""The basis of a plan: a fingerprint of what it assumed, and the words for what changed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from core.model import Basis, ClusterConfig, HostObservation, HostState, Placement, Plan, Service


def generation(service: Service) -> str:
    """A short fingerprint of what a running replica was started from.

    Only the fields that change what a process is (command, resources, environment, working directory,
    user) count: a new constraint may move a replica but does not make it a different process, and how it
    is stopped or its logs rotate does not change what runs. Settings at their defaults are left out, so
    a service that sets none of them keeps the fingerprint it had before they existed (no restarts on
    upgrade).
    """
    spec: dict[str, object] = {"command": service.command, "resources": service.resources.as_dict()}
    if service.env:
        spec["env"] = dict(service.env)
    if service.workdir is not None:
        spec["workdir"] = service.workdir
    if service.user is not None:
        spec["user"] = service.user
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def _spec(service: Service) -> str:
    spec = {
        "generation": generation(service),
        "max_per_host": service.max_per_host,
        "spread_over": service.spread_over,
        "require": dict(service.require),
        "avoid": list(service.avoid),
        "priority": service.priority,
        "min_healthy": service.min_healthy,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def _state_word(state: HostState) -> str:
    # A plan only cares whether a host can hold work; cpu% drifting is not staleness.
    return "up" if state.accepts_work else state.value


def basis_of(config: ClusterConfig, hosts: Mapping[str, HostObservation], placement: Placement) -> Basis:
    return Basis(
        hosts={h.name: _state_word(hosts[h.name].state) if h.name in hosts else "unknown" for h in config.hosts},
        services={s.name: s.replicas for s in config.services},
        generations={s.name: _spec(s) for s in config.services},
        placement=dict(placement.assignments),
    )


def fingerprint(basis: Basis) -> str:
    canonical = {
        "hosts": dict(sorted(basis.hosts.items())),
        "services": dict(sorted(basis.services.items())),
        "generations": dict(sorted(basis.generations.items())),
        "placement": {str(r): h for r, h in sorted(basis.placement.items(), key=lambda kv: kv[0].order)},
    }
    return "sha256:" + hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def what_changed(assumed: Basis, now: Basis) -> list[str]:
    """Sentences an operator can act on, one per difference that makes a plan stale."""
    reasons: list[str] = []
    for host in sorted(assumed.hosts.keys() | now.hosts.keys()):
        before, after = assumed.hosts.get(host), now.hosts.get(host)
        if before == after:
            continue
        if after is None:
            reasons.append(f"{host} is no longer in the cluster file")
        elif before is None:
            reasons.append(f"{host} was added to the cluster since the plan was made")
        else:
            reasons.append(f"{host} is {after} since the plan was made (it was {before})")
    for service in sorted(assumed.services.keys() | now.services.keys()):
        before_n, after_n = assumed.services.get(service), now.services.get(service)
        if after_n is None:
            reasons.append(f"{service} is no longer in the cluster file")
        elif before_n is None:
            reasons.append(f"{service} was added to the cluster file since the plan was made")
        elif before_n != after_n:
            reasons.append(f"{service} has {after_n} replicas in the cluster file, the plan assumed {before_n}")
        elif assumed.generations.get(service) != now.generations.get(service):
            reasons.append(f"{service}'s definition changed in the cluster file since the plan was made")
    moved = []
    for replica in sorted(assumed.placement.keys() | now.placement.keys()):
        before_h, after_h = assumed.placement.get(replica), now.placement.get(replica)
        if before_h == after_h:
            continue
        if after_h is None:
            moved.append(f"{replica} no longer runs (the plan assumed it on {before_h})")
        elif before_h is None:
            moved.append(f"{replica} now runs on {after_h} (the plan assumed it was not running)")
        else:
            moved.append(f"{replica} now runs on {after_h} (the plan assumed {before_h})")
    if len(moved) > 5:
        moved = [*moved[:5], f"and {len(moved) - 5} more replicas changed place"]
    return reasons + moved


def stale(plan: Plan, basis: Basis, fingerprint: str) -> list[str]:
    """Why `plan` no longer fits the fleet described by `basis` (empty: it fits)."""
    if plan.basis == fingerprint:
        return []
    if plan.assumed is None:
        return ["the plan does not say what it was computed from"]
    return what_changed(plan.assumed, basis) or ["the fleet changed since the plan was made"]
