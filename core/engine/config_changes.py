"""What an edit of the cluster file changed, in the words an operator reads in the event and the header.

Fields are compared generically (`dataclasses.fields`), so a key added to a service or to `[policy]`
later is reported without touching this module.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from core.model import ClusterConfig, Host, Service

# Service keys that decide where replicas may go (a change may move replicas, not restart them).
CONSTRAINTS = frozenset({"max_per_host", "spread_over", "require", "avoid", "priority", "min_healthy"})


def _word(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "unset"
    if isinstance(value, dict | tuple | list) or hasattr(value, "items"):
        return str(dict(value) if hasattr(value, "items") else list(value))
    return str(value)


def _differing(before: object, after: object, skip: frozenset[str] = frozenset()) -> list[str]:
    return [
        f.name
        for f in dataclasses.fields(before)  # type: ignore[arg-type]
        if f.name not in skip and getattr(before, f.name) != getattr(after, f.name)
    ]


def _service(before: Service, after: Service) -> list[str]:
    out = []
    if before.replicas != after.replicas:
        out.append(f"{after.name} scaled {before.replicas} → {after.replicas}")
    changed = _differing(before, after, frozenset({"name", "replicas"}))
    constraints = [k for k in changed if k in CONSTRAINTS]
    if constraints:
        words = ", ".join(f"{k} {_word(getattr(before, k))} → {_word(getattr(after, k))}" for k in constraints)
        out.append(f"{after.name} constraints: {words}")
    definition = [k for k in changed if k not in CONSTRAINTS]
    if definition:
        out.append(f"{after.name} definition changed ({', '.join(definition)}): its replicas restart")
    return out


def _hosts(before: tuple[Host, ...], after: tuple[Host, ...]) -> list[str]:
    old, new = {h.name: h for h in before}, {h.name: h for h in after}
    out = [f"host {n} added" for n in new if n not in old]
    out += [f"host {n} removed" for n in old if n not in new]
    out += [f"host {n} changed ({', '.join(_differing(old[n], new[n]))})" for n in new if n in old and old[n] != new[n]]
    return out


def config_changes(before: ClusterConfig, after: ClusterConfig) -> list[str]:
    """One phrase per change: services added/removed/scaled, constraints, definitions, hosts, policy, cluster."""
    old, new = {s.name: s for s in before.services}, {s.name: s for s in after.services}
    out = [f"service {n} added ({new[n].replicas} replicas)" for n in new if n not in old]
    out += [f"service {n} removed" for n in old if n not in new]
    for name in new:
        if name in old and old[name] != new[name]:
            out += _service(old[name], new[name])
    out += _hosts(before.hosts, after.hosts)
    out += [
        f"policy {k} {_word(getattr(before.policy, k))} → {_word(getattr(after.policy, k))}"
        for k in _differing(before.policy, after.policy)
    ]
    for k in _differing(before, after, frozenset({"hosts", "services", "policy", "source"})):
        was, now = getattr(before, k), getattr(after, k)
        if dataclasses.is_dataclass(now):  # [defaults], [api]: which keys, not two whole tables
            out.append(f"[{k}] changed ({', '.join(_differing(was, now))})")
        else:
            out.append(f"{k} {_word(was)} → {_word(now)}")
    return out
