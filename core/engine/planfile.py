"""Plans as files: JSON (the reference), TOML (the same document) and CSV (one row per action).

A plan file carries its basis so that `loadmaster apply` can refuse it once
the fleet or the config has moved on, and say what moved.
"""

from __future__ import annotations

import csv
import io
import json
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from core.engine.basis import fingerprint
from core.errors import LoadmasterError
from core.model import (
    Action,
    ActionKind,
    Basis,
    ClusterConfig,
    FailoverPlan,
    Placement,
    Plan,
    ReplicaId,
    Resources,
    SolverStatus,
)
from core.private import write_private

SCHEMA = "loadmaster.plan/1"
FAILOVER_SCHEMA = "loadmaster.failover/1"
FORMATS = ("json", "csv", "toml")
CSV_FIELDS = ("service", "replica", "from", "to", "action")


class PlanFileError(LoadmasterError):
    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")


def _placement_doc(placement: Mapping[ReplicaId, str]) -> dict[str, str]:
    return {str(r): h for r, h in sorted(placement.items())}


def _basis_doc(basis: Basis) -> dict[str, Any]:
    return {
        "fingerprint": fingerprint(basis),
        "hosts": dict(sorted(basis.hosts.items())),
        "services": dict(sorted(basis.services.items())),
        "generations": dict(sorted(basis.generations.items())),
        "placement": _placement_doc(basis.placement),
    }


def _action_doc(action: Action) -> dict[str, str]:
    doc = {"action": action.kind.value, "service": action.replica.service, "replica": str(action.replica)}
    if action.from_host is not None:
        doc["from"] = action.from_host
    if action.to_host is not None:
        doc["to"] = action.to_host
    return doc


def utilization(config: ClusterConfig, placement: Placement) -> dict[str, Resources]:
    """Requested resources per host under `placement` (every host in the config, idle ones too)."""
    per_service = {s.name: s.resources for s in config.services}
    used = {h.name: Resources() for h in config.hosts}
    for replica, host in placement.assignments.items():
        if host in used and replica.service in per_service:
            used[host] = used[host] + per_service[replica.service]
    return used


def plan_document(plan: Plan, config: ClusterConfig, capacities: Mapping[str, Resources]) -> dict[str, Any]:
    if plan.assumed is None:
        raise ValueError("a plan without its basis cannot be exported")
    before, after = utilization(config, plan.current), utilization(config, plan.target)
    return {
        "schema": SCHEMA,
        "cluster": plan.cluster,
        "created_at": datetime.fromtimestamp(plan.created_at, UTC).isoformat(timespec="seconds"),
        "reason": plan.reason,
        "basis": _basis_doc(plan.assumed),
        "solver": {
            "status": plan.status.value,
            "hosts_used": plan.hosts_used,
            "lower_bound": plan.lower_bound,
            "gap": round(plan.gap, 6),
        },
        "actions": [_action_doc(a) for a in plan.actions],
        "target": _placement_doc(plan.target.assignments),
        "unplaced": {str(r): why for r, why in sorted(plan.unplaced.items())},
        "utilization": {
            h.name: {
                "capacity": capacities.get(h.name, Resources()).as_dict(),
                "before": before[h.name].as_dict(),
                "after": after[h.name].as_dict(),
            }
            for h in config.hosts
        },
    }


def failover_document(cluster: str, created_at: float, basis: Basis, plans: tuple[FailoverPlan, ...]) -> dict[str, Any]:
    return {
        "schema": FAILOVER_SCHEMA,
        "cluster": cluster,
        "created_at": datetime.fromtimestamp(created_at, UTC).isoformat(timespec="seconds"),
        "basis": _basis_doc(basis),
        "plans": [
            {
                "scope": p.scope,
                "target": p.target,
                "lost_hosts": list(p.lost_hosts),
                "survives": p.survives,
                "status": p.status.value,
                "degraded": list(p.degraded),
                "moves": _placement_doc(p.moves),
                "unplaced": {str(r): why for r, why in sorted(p.unplaced.items())},
                "others_moved": p.others_moved,
            }
            for p in plans
        ],
    }


def render(document: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(document, indent=2) + "\n"
    if fmt == "toml":
        return tomli_w.dumps(document)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        for action in document.get("actions", []):
            writer.writerow({k: action.get(k, "") for k in CSV_FIELDS})
        for plan in document.get("plans", []):
            for replica, host in plan["moves"].items():
                row = {"service": ReplicaId.parse(replica).service, "replica": replica, "to": host}
                writer.writerow({**row, "from": ",".join(plan["lost_hosts"]), "action": "move"})
        return out.getvalue()
    raise ValueError(f"unknown format {fmt!r} (use one of: {', '.join(FORMATS)})")


def write(document: dict[str, Any], path: str | Path, fmt: str | None = None) -> str:
    """Write atomically (temp file + rename) so a reader never sees half a plan; 0600, like the journal."""
    target = Path(path)
    fmt = fmt or format_of(target)
    write_private(target, render(document, fmt))
    return fmt


def format_of(path: Path) -> str:
    suffix = path.suffix.lstrip(".").lower()
    return suffix if suffix in FORMATS else "json"


def read_plan(path: str | Path) -> Plan:
    """Read a JSON or TOML plan file back into a Plan (CSV holds actions only and cannot be applied)."""
    p = Path(path)
    name = str(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise PlanFileError(name, "not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanFileError(name, f"cannot be read: {exc}") from None
    fmt = format_of(p)
    if fmt == "csv":
        raise PlanFileError(name, "a CSV plan lists actions only; apply the JSON or TOML export")
    try:
        doc = tomllib.loads(text) if fmt == "toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PlanFileError(name, f"is not valid {fmt.upper()}: {exc}") from None
    try:
        return plan_from_document(doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanFileError(name, f"is not a loadmaster plan ({SCHEMA}): {exc}") from None


def plan_from_document(doc: Mapping[str, Any]) -> Plan:
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"schema is {doc.get('schema')!r}, expected {SCHEMA!r}")
    b = doc["basis"]
    assumed = Basis(
        hosts=dict(b["hosts"]),
        services={k: int(v) for k, v in b["services"].items()},
        generations=dict(b["generations"]),
        placement={ReplicaId.parse(r): h for r, h in b["placement"].items()},
    )
    if fingerprint(assumed) != b["fingerprint"]:
        raise ValueError("basis fingerprint does not match its contents (the file was edited)")
    actions = tuple(
        Action(ActionKind(a["action"]), ReplicaId.parse(a["replica"]), a.get("from"), a.get("to"))
        for a in doc["actions"]
    )
    solver = doc["solver"]
    return Plan(
        cluster=doc["cluster"],
        basis=b["fingerprint"],
        created_at=datetime.fromisoformat(doc["created_at"]).timestamp(),
        current=Placement(assumed.placement),
        target=Placement({ReplicaId.parse(r): h for r, h in doc["target"].items()}),
        actions=actions,
        status=SolverStatus(solver["status"]),
        hosts_used=int(solver["hosts_used"]),
        lower_bound=int(solver["lower_bound"]),
        gap=float(solver["gap"]),
        unplaced={ReplicaId.parse(r): why for r, why in doc.get("unplaced", {}).items()},
        reason=doc.get("reason", "rebalance"),
        assumed=assumed,
    )
