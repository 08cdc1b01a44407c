"""The CLI against a served demo fleet: plan → apply → replicas run; stale plans; kill -9 mid-apply."""

from __future__ import annotations

import json
import signal
import time

from .served import ServedFleet


def test_plan_apply_runs_every_replica_where_the_plan_says(tmp_path):
    with ServedFleet(tmp_path) as fleet:
        out = fleet.run("plan", "-o", str(tmp_path / "plan.json"))
        assert out.returncode == 0, out.stderr
        assert "6 actions; solver OPTIMAL" in out.stdout and "gap" not in out.stdout  # issue 12 item 12's words
        plan = json.loads((tmp_path / "plan.json").read_text())
        assert len(plan["actions"]) == 6 and plan["solver"]["status"] == "OPTIMAL"
        applied = fleet.run("apply", str(tmp_path / "plan.json"))
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "[6/6]" in applied.stdout
        fleet.wait_processes(web=4, db=2)
        status = json.loads(fleet.run("status", "--json").stdout)
        where = {r: h["name"] for h in status["hosts"] for r in h["replicas"]}
        assert where == plan["target"]
        failover = fleet.run("plan", "--failover", "-o", str(tmp_path / "failover.json"))
        assert failover.returncode == 0, failover.stderr
        doc = json.loads((tmp_path / "failover.json").read_text())
        assert doc["schema"] == "loadmaster.failover/1"
        assert [(p["scope"], p["target"]) for p in doc["plans"]] == [
            *(("host", f"h{i}") for i in range(1, 5)),
            ("zone", "z1"),
            ("zone", "z2"),
        ]
        for p in doc["plans"]:
            lost = set(p["lost_hosts"])
            assert all(host not in lost for host in p["moves"].values())
            assert set(p["moves"]) | set(p["unplaced"]) == {r for r, h in plan["target"].items() if h in lost}
        # applying the same file again: the fleet moved on, so it is refused with the reason
        again = fleet.run("apply", str(tmp_path / "plan.json"))
        assert again.returncode == 3
        assert "plan is stale" in again.stderr and "now runs on" in again.stderr
        fleet.wait_processes(web=4, db=2)


def test_stale_plan_names_the_changed_service(tmp_path):
    with ServedFleet(tmp_path) as fleet:
        assert fleet.run("plan", "-o", str(tmp_path / "plan.json")).returncode == 0
        fleet.config.write_text(fleet.config.read_text().replace("replicas = 4", "replicas = 5"))
        out = fleet.run("apply", str(tmp_path / "plan.json"))
        assert out.returncode == 3
        assert "web has 5 replicas in the cluster file, the plan assumed 4" in out.stderr
        dry = fleet.run("apply", "--dry-run", "--force", str(tmp_path / "plan.json"))
        assert dry.returncode == 0 and "would start" in dry.stdout
        assert fleet.processes("web") == 0


def test_kill_9_mid_apply_then_restart_converges_without_duplicates(tmp_path):
    with ServedFleet(tmp_path, hosts=4, web=8, db=2) as fleet:
        assert fleet.run("plan", "-o", str(tmp_path / "plan.json")).returncode == 0
        apply = fleet.popen("apply", str(tmp_path / "plan.json"))
        assert apply.stdout is not None
        for line in apply.stdout:
            if line.startswith("[1/"):
                apply.send_signal(signal.SIGKILL)
                break
        apply.wait(timeout=10)
        assert apply.returncode == -signal.SIGKILL
        running_at_kill = fleet.processes("web") + fleet.processes("db")
        assert 1 <= running_at_kill < 10, running_at_kill
        # the daemon's start rolls the journaled plan forward, then reconciles
        daemon = fleet.popen("run", "--headless")
        try:
            fleet.wait_processes(web=8, db=2, timeout=40)
            time.sleep(2)  # a duplicate start would show up here
            assert (fleet.processes("web"), fleet.processes("db")) == (8, 2)
        finally:
            daemon.send_signal(signal.SIGTERM)
            out, err = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, err
        events = [json.loads(line) for line in out.splitlines()]
        assert any("resuming plan" in e["message"] for e in events)


def test_a_stale_plan_is_refused_before_the_journal_rolls_forward(tmp_path):
    """Defect 3: after a kill -9 mid-apply, `apply stale.json` rolled the journal's unfinished plan
    forward (changing the fleet), and only then said the plan was stale."""
    with ServedFleet(tmp_path, hosts=4, web=8, db=2) as fleet:
        assert fleet.run("plan", "-o", str(tmp_path / "plan.json")).returncode == 0
        apply = fleet.popen("apply", str(tmp_path / "plan.json"))
        assert apply.stdout is not None
        for line in apply.stdout:
            if line.startswith("[1/"):
                apply.send_signal(signal.SIGKILL)
                break
        apply.wait(timeout=10)
        time.sleep(1)  # what was in flight lands
        at_kill = fleet.processes("web") + fleet.processes("db")
        assert 1 <= at_kill < 10, at_kill
        again = fleet.run("apply", str(tmp_path / "plan.json"))  # stale: some replicas run now
        assert again.returncode == 3, again.stdout + again.stderr
        assert "plan is stale" in again.stderr and "rolled forward" not in again.stdout
        time.sleep(1)
        assert fleet.processes("web") + fleet.processes("db") == at_kill  # the fleet was not touched
        check = fleet.run("journal", "check")
        assert "unfinished: 1 plans" in check.stdout, check.stdout + check.stderr
