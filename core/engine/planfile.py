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
from core.nesting import deeper_than
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
    """Read a JSON or TOML plan file back into a Plan (CSV holds actions only and cannot be applied).

    Every field is checked for its type and range (a hand-edited or hostile file is normal), so a
    bad file is one PlanFileError naming the field, never a traceback.
    """
    p = Path(path)
    name = str(path)
    try:
        if p.stat().st_size > MAX_PLAN_BYTES:
            raise PlanFileError(name, f"is larger than {MAX_PLAN_BYTES >> 20} MiB; it is not a plan loadmaster wrote")
        text = p.read_text()
    except FileNotFoundError:
        raise PlanFileError(name, "not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanFileError(name, f"cannot be read: {exc}") from None
    fmt = format_of(p)
    if fmt == "csv":
        raise PlanFileError(name, "a CSV plan lists actions only; apply the JSON or TOML export")
    try:
        doc = (
            tomllib.loads(text) if fmt == "toml" else json.loads(text, parse_float=_finite, parse_constant=_no_constant)
        )
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PlanFileError(name, f"is not valid {fmt.upper()}: {exc}") from None
    except RecursionError:
        raise PlanFileError(name, f"nests too deeply to be a plan (a plan nests {MAX_DEPTH} levels at most)") from None
    except ValueError as exc:  # a number JSON can write but no plan holds (1e400, NaN)
        raise PlanFileError(name, f"is not a loadmaster plan ({SCHEMA}): {exc}") from None
    try:
        return plan_from_document(doc)
    except ValueError as exc:
        raise PlanFileError(name, f"is not a loadmaster plan ({SCHEMA}): {exc}") from None


MAX_PLAN_BYTES = 64 << 20
MAX_DEPTH = 4  # plan → utilization → host → capacity


def _finite(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is not a finite number")
    return value


def _no_constant(text: str) -> float:
    raise ValueError(f"{text} is not a number a plan holds")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number"}.get(type(value), type(value).__name__)  # fmt: skip


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be an object, not {_kind(value)}")
    return value


def _field(table: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in table:
        raise ValueError(f"{where}.{key} is missing" if where else f"{key} is missing")
    return table[key]


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a string, not {_kind(value)}")
    return value


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**53:
        raise ValueError(f"{where} must be a whole number from 0 to 2^53, not {_kind(value)} {value!r:.40}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
        raise ValueError(f"{where} must be a number of 0 or more, not {_kind(value)} {value!r:.40}")
    return float(value)


def _replica(value: Any, where: str) -> ReplicaId:
    try:
        return ReplicaId.parse(_str(value, where))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _strings(value: Any, where: str) -> dict[str, str]:
    return {_str(k, where): _str(v, f"{where}.{k}") for k, v in _table(value, where).items()}


def _placement(value: Any, where: str) -> dict[ReplicaId, str]:
    return {_replica(r, f"{where} key"): _str(h, f"{where}.{r}") for r, h in _table(value, where).items()}


def _action(value: Any, where: str) -> Action:
    a = _table(value, where)
    verb = _str(_field(a, "action", where), f"{where}.action")
    try:
        kind = ActionKind(verb)
    except ValueError:
        raise ValueError(f"{where}.action {verb!r} is not one of: {', '.join(k.value for k in ActionKind)}") from None
    src = _str(a["from"], f"{where}.from") if "from" in a else None
    dst = _str(a["to"], f"{where}.to") if "to" in a else None
    return Action(kind, _replica(_field(a, "replica", where), f"{where}.replica"), src, dst)


def plan_from_document(doc: Any) -> Plan:
    """The Plan a document describes; raises ValueError naming the first field that is wrong."""
    top = _table(doc, "the document")
    if deeper_than(doc, MAX_DEPTH):
        raise ValueError(f"it nests more than {MAX_DEPTH} levels deep")
    if top.get("schema") != SCHEMA:
        raise ValueError(f"schema is {top.get('schema')!r}, expected {SCHEMA!r}")
    b = _table(_field(top, "basis", ""), "basis")
    assumed = Basis(
        hosts=_strings(_field(b, "hosts", "basis"), "basis.hosts"),
        services={
            _str(k, "basis.services"): _int(v, f"basis.services.{k}")
            for k, v in _table(_field(b, "services", "basis"), "basis.services").items()
        },
        generations=_strings(_field(b, "generations", "basis"), "basis.generations"),
        placement=_placement(_field(b, "placement", "basis"), "basis.placement"),
    )
    if fingerprint(assumed) != _str(_field(b, "fingerprint", "basis"), "basis.fingerprint"):
        raise ValueError("basis fingerprint does not match its contents (the file was edited)")
    actions_doc = _field(top, "actions", "")
    if not isinstance(actions_doc, list):
        raise ValueError(f"actions must be an array, not {_kind(actions_doc)}")
    actions = tuple(_action(a, f"actions[{i}]") for i, a in enumerate(actions_doc))
    solver = _table(_field(top, "solver", ""), "solver")
    created = _str(_field(top, "created_at", ""), "created_at")
    try:
        created_at = datetime.fromisoformat(created).timestamp()
    except (ValueError, OverflowError):
        raise ValueError(f"created_at {created!r:.40} is not an ISO 8601 time") from None
    status = _str(_field(solver, "status", "solver"), "solver.status")
    try:
        solver_status = SolverStatus(status)
    except ValueError:
        raise ValueError(
            f"solver.status {status!r:.40} is not one of: {', '.join(s.value for s in SolverStatus)}"
        ) from None
    unplaced = _table(top.get("unplaced", {}), "unplaced")
    return Plan(
        cluster=_str(_field(top, "cluster", ""), "cluster"),
        basis=fingerprint(assumed),
        created_at=created_at,
        current=Placement(assumed.placement),
        target=Placement(_placement(_field(top, "target", ""), "target")),
        actions=actions,
        status=solver_status,
        hosts_used=_int(_field(solver, "hosts_used", "solver"), "solver.hosts_used"),
        lower_bound=_int(_field(solver, "lower_bound", "solver"), "solver.lower_bound"),
        gap=_number(_field(solver, "gap", "solver"), "solver.gap"),
        unplaced={_replica(r, "unplaced key"): _str(why, f"unplaced.{r}") for r, why in unplaced.items()},
        reason=_str(top.get("reason", "rebalance"), "reason"),
        assumed=assumed,
    )
