"""Issue 12, item 10 from the command line, on a served demo fleet with real processes:
`loadmaster drain HOST [--cordon-only]`, `uncordon HOST`, `scale SERVICE N`; each refused under --read-only
and journaled."""

from __future__ import annotations

import json
import sqlite3

from .served import ServedFleet


def journaled(fleet: ServedFleet) -> list[dict]:
    name = next(line.split('"')[1] for line in fleet.config.read_text().splitlines() if line.startswith('name = "e2e'))
    db = fleet.root / ".loadmaster" / name / "journal.db"
    return [json.loads(doc) for (doc,) in sqlite3.connect(db).execute("SELECT doc FROM events")]


def test_drain_uncordon_and_scale_from_the_cli(tmp_path):
    with ServedFleet(tmp_path) as fleet:
        assert fleet.run("plan", "-o", str(tmp_path / "plan.json")).returncode == 0
        assert fleet.run("apply", str(tmp_path / "plan.json")).returncode == 0
        fleet.wait_processes(web=4, db=2)
        status = json.loads(fleet.run("status", "--json").stdout)
        busy = next(h["name"] for h in status["hosts"] if h["replicas"])

        refused = fleet.run("drain", busy, "--read-only")
        assert refused.returncode == 1 and "refused, loadmaster runs with --read-only" in refused.stderr

        out = fleet.run("drain", busy)
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"{busy} drained" in out.stdout and "ok   move" in out.stdout
        fleet.wait_processes(web=4, db=2)  # moved, not lost or doubled
        status = json.loads(fleet.run("status", "--json").stdout)
        assert next(h for h in status["hosts"] if h["name"] == busy)["replicas"] == []

        out = fleet.run("uncordon", busy)
        assert out.returncode == 0 and f"{busy} uncordoned" in out.stdout
        out = fleet.run("drain", busy, "--cordon-only")
        assert out.returncode == 0 and f"{busy} cordoned" in out.stdout

        text = fleet.config.read_text()
        fleet.config.write_text(text.replace('name = "web"', '# the front end\nname = "web"'))
        assert fleet.run("scale", "web", "5", "--read-only").returncode == 1
        out = fleet.run("scale", "web", "5")
        assert out.returncode == 0 and "web scaled 4 → 5" in out.stdout, out.stderr
        assert "# the front end" in fleet.config.read_text() and "replicas = 5" in fleet.config.read_text()
        bad = fleet.run("scale", "wbe", "5")
        assert bad.returncode == 1 and 'no service "wbe"' in bad.stderr

        events = [d["event"] for d in journaled(fleet)]
        for kind in ("host.draining", "host.drained", "host.uncordoned", "host.cordoned", "service.scaled"):
            assert kind in events, kind
