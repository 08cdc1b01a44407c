import csv
import io
import json
from pathlib import Path

import jsonschema
import pytest

from core.engine.basis import basis_of, fingerprint, what_changed
from core.engine.planfile import PlanFileError, plan_document, read_plan, render, write
from core.model import (
    Basis,
    HostObservation,
    HostState,
    Placement,
    Plan,
    ReplicaId,
    SolverStatus,
    diff_actions,
)

SCHEMA = json.loads((Path(__file__).parents[2] / "core/engine/plan.schema.json").read_text())
W = [ReplicaId("web", i) for i in range(3)]
DB0 = ReplicaId("db", 0)


def make_plan(config):
    current = Placement({W[0]: "a", W[1]: "a", DB0: "b"})
    target = Placement({W[0]: "a", W[1]: "b", W[2]: "c", DB0: "b"})
    hosts = {h.name: HostObservation(h.name, HostState.UP, 0.0) for h in config.hosts}
    basis = basis_of(config, hosts, current)
    return Plan(
        cluster=config.name, basis=fingerprint(basis), created_at=1_700_000_000.0, current=current, target=target,
        actions=diff_actions(current, target), status=SolverStatus.OPTIMAL, hosts_used=3, lower_bound=2, gap=1 / 3,
        unplaced={ReplicaId("web", 9): "nowhere"}, reason="rebalance", assumed=basis,
    )  # fmt: skip


def capacities(config):
    return {h.name: h.usable() for h in config.hosts}


@pytest.mark.parametrize("fmt", ["json", "toml"])
def test_round_trip(tmp_path, small_config, fmt):
    plan = make_plan(small_config)
    path = tmp_path / f"plan.{fmt}"
    write(plan_document(plan, small_config, capacities(small_config)), path)
    back = read_plan(path)
    assert back.actions == plan.actions
    assert back.target == plan.target and back.current == plan.current
    assert back.basis == plan.basis and back.assumed == plan.assumed
    assert (back.status, back.hosts_used, back.lower_bound) == (plan.status, 3, 2)
    assert back.gap == pytest.approx(plan.gap)
    assert back.unplaced == plan.unplaced
    assert back.created_at == plan.created_at


def test_json_matches_the_documented_schema(small_config):
    doc = plan_document(make_plan(small_config), small_config, capacities(small_config))
    jsonschema.validate(json.loads(render(doc, "json")), SCHEMA)
    doc["actions"][0]["action"] = "teleport"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


def test_json_carries_utilization_before_and_after(small_config):
    doc = plan_document(make_plan(small_config), small_config, capacities(small_config))
    util = doc["utilization"]
    assert util["a"]["before"]["cpu"] == 2000 and util["a"]["after"]["cpu"] == 1000
    assert util["c"]["before"]["cpu"] == 0 and util["c"]["after"]["cpu"] == 1000
    assert util["a"]["capacity"]["cpu"] == 4000


def test_csv_has_one_row_per_action(small_config):
    plan = make_plan(small_config)
    text = render(plan_document(plan, small_config, capacities(small_config)), "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["action"] for r in rows] == [a.kind.value for a in plan.actions]
    assert rows[0].keys() == {"service", "replica", "from", "to", "action"}
    assert {(r["replica"], r["from"], r["to"]) for r in rows} == {("web/1", "a", "b"), ("web/2", "", "c")}


def test_edited_file_is_refused(tmp_path, small_config):
    path = tmp_path / "plan.json"
    write(plan_document(make_plan(small_config), small_config, capacities(small_config)), path)
    doc = json.loads(path.read_text())
    doc["basis"]["services"]["web"] = 99
    path.write_text(json.dumps(doc))
    with pytest.raises(PlanFileError, match="fingerprint does not match"):
        read_plan(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not valid JSON"), ('{"schema": "other/1"}', "not a loadmaster plan")],
)
def test_bad_files_say_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "plan.json"
    path.write_text(content)
    with pytest.raises(PlanFileError, match=message):
        read_plan(path)


def test_missing_and_csv_files_are_refused(tmp_path):
    with pytest.raises(PlanFileError, match="not found"):
        read_plan(tmp_path / "nope.json")
    (tmp_path / "p.csv").write_text("service,replica\n")
    with pytest.raises(PlanFileError, match="CSV plan lists actions only"):
        read_plan(tmp_path / "p.csv")


def test_what_changed_speaks_of_hosts_services_and_replicas():
    before = Basis({"a": "up", "c": "up"}, {"web": 4}, {"web": "g1"}, {W[0]: "a"})
    after = Basis({"a": "up", "c": "down"}, {"web": 5}, {"web": "g1"}, {W[0]: "c"})
    reasons = what_changed(before, after)
    assert "c is down since the plan was made (it was up)" in reasons
    assert "web has 5 replicas in the cluster file, the plan assumed 4" in reasons
    assert "web/0 now runs on c (the plan assumed a)" in reasons
    assert what_changed(before, before) == []


def test_an_exported_plan_is_private_whatever_the_umask(tmp_path, small_config):
    """Defect 15: plan exports were world-readable under umask 022."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = tmp_path / "plan.json"
        write(plan_document(make_plan(small_config), small_config, capacities(small_config)), path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _exported(tmp_path, small_config):
    path = tmp_path / "plan.json"
    write(plan_document(make_plan(small_config), small_config, capacities(small_config)), path)
    return path, json.loads(path.read_text())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: [d], "the document must be an object, not an array"),
        (lambda d: {**d, "basis": {**d["basis"], "services": []}}, "basis.services must be an object, not an array"),
        (lambda d: {**d, "unplaced": []}, "unplaced must be an object, not an array"),
        (lambda d: {**d, "actions": {}}, "actions must be an array, not an object"),
        (lambda d: {**d, "actions": [{"action": "explode", "replica": "web/1"}]}, "actions[0].action 'explode'"),
        (lambda d: {**d, "actions": [{"action": "start"}]}, "actions[0].replica is missing"),
        (lambda d: {**d, "solver": {**d["solver"], "hosts_used": "3"}}, "solver.hosts_used must be a whole number"),
        (lambda d: {**d, "target": {"web": "a"}}, "target key: 'web' is not a replica id"),
    ],
)
def test_a_malformed_plan_file_names_the_field(tmp_path, small_config, edit, message):
    """Defect 13: a top-level array, basis.services = [], unplaced = [] gave tracebacks."""
    path, doc = _exported(tmp_path, small_config)
    path.write_text(json.dumps(edit(doc)))
    with pytest.raises(PlanFileError) as err:
        read_plan(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_deep_nesting_and_huge_numbers_are_errors_not_tracebacks(tmp_path, small_config):
    path, doc = _exported(tmp_path, small_config)
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(PlanFileError, match="nests too deeply"):
        read_plan(path)
    path.write_text(json.dumps({**doc, "reason": {"a": {"b": {"c": {"d": 1}}}}}))
    with pytest.raises(PlanFileError, match="nests more than 4 levels"):
        read_plan(path)
    path.write_text(json.dumps(doc).replace('"gap": 0.333333', '"gap": 1e400'))
    with pytest.raises(PlanFileError, match="1e400 is not a finite number"):
        read_plan(path)
    path.write_text(json.dumps(doc).replace('"hosts_used": 3', '"hosts_used": 1e400'))
    with pytest.raises(PlanFileError, match="not a finite number"):
        read_plan(path)
    toml = tmp_path / "plan.toml"
    toml.write_text("a = " + "[" * 100_000 + "]" * 100_000)
    with pytest.raises(PlanFileError, match="nests too deeply"):
        read_plan(toml)
