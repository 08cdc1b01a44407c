"""Is a plan from a file one loadmaster could have made for this config? Checked before anything runs.

A plan file's basis is fingerprinted, but its actions and target are not: an edited or hostile
file could move a replica onto its own host (stopping it), start replicas beyond `replicas`, or
name hosts that do not exist. Every action must have its kind's shape, name hosts and services of
the current config, agree with the plan's own basis (where each replica runs) and with its target.
"""

from __future__ import annotations

from core.errors import InvalidPlan
from core.model import Action, ActionKind, ClusterConfig, Plan


def _shape(a: Action) -> str | None:
    src, dst = a.from_host, a.to_host
    if a.kind is ActionKind.START and (dst is None or src is not None):
        return "a start names a `to` host and no `from`"
    if a.kind is ActionKind.STOP and (src is None or dst is not None):
        return "a stop names a `from` host and no `to`"
    if a.kind is ActionKind.MOVE and (src is None or dst is None):
        return "a move names both a `from` and a `to` host"
    if a.kind is ActionKind.MOVE and src == dst:
        return f"moves {a.replica} from {src} to itself (a move changes host; a restart is `restart`)"
    if a.kind is ActionKind.RESTART and (src is None or src != dst):
        return "a restart names the same `from` and `to` host"
    return None


def problems(plan: Plan, config: ClusterConfig) -> list[str]:
    """What makes `plan` unfit to apply to `config`, one line per problem (empty when none)."""
    file = config.source
    hosts = {h.name for h in config.hosts}
    services = {s.name: s for s in config.services}
    where = plan.current.assignments
    target = plan.target.assignments
    out: list[str] = []
    seen: dict[object, int] = {}
    for n, a in enumerate(plan.actions, 1):
        what = f"action {n} ({a.kind.value} {a.replica})"
        if a.replica in seen:
            out.append(f"{what}: {a.replica} already has action {seen[a.replica]}; one action per replica")
            continue
        seen[a.replica] = n
        shape = _shape(a)
        if shape is not None:
            out.append(f"{what}: {shape}")
            continue
        unknown = [h for h in (a.from_host, a.to_host) if h is not None and h not in hosts]
        if unknown:
            out.append(f"{what}: host {unknown[0]} is not in {file}")
            continue
        if a.kind is not ActionKind.STOP:  # stopping what the file no longer wants is scaling down
            service = services.get(a.replica.service)
            if service is None:
                out.append(f"{what}: service {a.replica.service} is not in {file}")
                continue
            if a.replica.index >= service.replicas:
                out.append(f"{what}: {a.replica} is beyond replicas = {service.replicas} of {service.name} in {file}")
                continue
        if a.kind is ActionKind.START and a.replica in where:
            out.append(f"{what}: {a.replica} already runs on {where[a.replica]} (the plan's basis); a start would "
                       "run it twice")  # fmt: skip
        elif a.kind is not ActionKind.START and where.get(a.replica) != a.from_host:
            runs = where.get(a.replica)
            out.append(f"{what}: {a.replica} runs on {runs or 'no host'} in the plan's basis, not on {a.from_host}")
        elif target.get(a.replica) != a.to_host:
            wanted = target.get(a.replica)
            out.append(
                f"{what}: the plan's target puts {a.replica} on {wanted or 'no host'}, not {a.to_host or 'none'}"
            )
    for replica, host in target.items():
        if host not in hosts:
            out.append(f"target: {replica} on host {host}, which is not in {file}")
    return out


def check(plan: Plan, config: ClusterConfig, source: str) -> None:
    """Refuse (InvalidPlan) a plan from `source` that `config` could not have produced."""
    found = problems(plan, config)
    if plan.cluster != config.name:
        found.insert(0, f"a plan for cluster {plan.cluster!r}, not {config.name!r}")
    if found:
        raise InvalidPlan(source, found)
