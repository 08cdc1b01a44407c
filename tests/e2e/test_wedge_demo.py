"""Issue 11, build 6: the demo's replica server on the embedded demo fleet — it serves, spends a little cpu
(the probe measures it), and once wedged (`loadmaster demo --wedge`, or the engine's demo control the console
calls) it fails its http check and the controller restarts it, healthy again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.engine.events import Event, EventKind
from core.errors import LoadmasterError
from core.model import CheckKind, Health, HealthCheck, ReplicaId, Resources, Service
from tests.conftest import demo_cluster
from tests.e2e.test_failover_demo import auto_engine, until
from tests.e2e.test_health_demo import status_of

# slack for a loaded machine
CHECK = HealthCheck(CheckKind.HTTP, interval=1.0, timeout=1.0, grace=5.0, unhealthy_after=2)
API = Service("api", 'exec python3 "$LOADMASTER_DEMO_REPLICA" {port} --cpu 0.05', 1, Resources(100, 64 << 20),
              check=CHECK)  # fmt: skip
SLEEPER = Service("db", "exec sleep 600", 1, Resources(100, 64 << 20))
A0 = ReplicaId("api", 0)

ROOT = Path(__file__).resolve().parents[2]


def cli_file(tmp_path: Path, port: int) -> Path:
    """A cluster file naming the same cluster as `demo_cluster` (what `--wedge` needs: name, state_dir)."""
    path = tmp_path / "cluster.toml"
    path.write_text(f"""
[cluster]
name = "t"
demo = true

[[hosts]]
name = "h1"
address = "127.0.0.1"
port = {port}
capacity = {{ cpu = 2, mem = "4GiB" }}

[[services]]
name = "api"
command = "exec python3 \\"$LOADMASTER_DEMO_REPLICA\\" {{port}}"
cpu = "100m"
mem = "64MiB"
""")
    return path


async def test_the_demo_replica_serves_spends_cpu_and_a_wedge_gets_it_restarted(demo_fleet, tmp_path):
    config = demo_cluster(2, services=(API, SLEEPER))
    engine, demo = await auto_engine(demo_fleet, config, tmp_path)
    events = engine.subscribe()
    seen: list[Event] = []
    try:
        await until(lambda: (s := status_of(engine, A0)) is not None and s.health is Health.HEALTHY, 20)
        # a little cpu, measured by the host's probe from /proc like any replica's
        await until(lambda: (s := status_of(engine, A0)) is not None and (s.cpu_percent or 0) > 0.5, 15)
        before = status_of(engine, A0)
        assert before is not None and before.pid is not None
        # the CLI, from another process, beside the running fleet
        file = cli_file(tmp_path, demo.config.hosts[0].port)
        out = subprocess.run(
            [sys.executable, "-m", "console.cli", "demo", "-c", str(file), "--workdir", str(demo.workdir),
             "--wedge", "api/0"],
            capture_output=True, text=True, timeout=60, cwd=ROOT, env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert f"api/0 wedged on {before.host} (pid {before.pid})" in out.stdout
        await until(lambda: any(e.kind is EventKind.REPLICA_UNHEALTHY for e in drain(events, seen)), 30)
        assert any("http-5xx" in e.message for e in seen if e.kind is EventKind.REPLICA_UNHEALTHY)
        await until(lambda: (s := status_of(engine, A0)) is not None and s.pid != before.pid, 30)
        await until(lambda: (s := status_of(engine, A0)) is not None and s.health is Health.HEALTHY, 30)
        # the engine's demo control (what the console's key calls) does the same
        again = status_of(engine, A0)
        assert again is not None
        assert await engine.wedge_demo_replica(A0) == again.host
        await until(lambda: (s := status_of(engine, A0)) is not None and s.pid != again.pid, 30)
        assert any(e.kind is EventKind.DEMO_WEDGED for e in drain(events, seen))
        # only the demo server can be wedged: a sleep replica is refused, by name
        with pytest.raises(LoadmasterError, match=r"db/0 runs the demo replica server on no demo host.*: api"):
            await engine.wedge_demo_replica(ReplicaId("db", 0))
        bad = subprocess.run(
            [sys.executable, "-m", "console.cli", "demo", "-c", str(file), "--workdir", str(demo.workdir),
             "--wedge", "api"],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
        assert bad.returncode != 0 and "'api' is not a replica id (use service/index" in bad.stderr
    finally:
        await engine.close()


def drain(queue, into: list[Event]) -> list[Event]:
    while not queue.empty():
        into.append(queue.get_nowait())
    return into
