"""Demo load: `loadmaster demo --load web=0.9` makes a demo service's replicas burn real cpu, measured from /proc."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import psutil
import pytest

from core import config as config_io
from core.errors import BadLoad
from core.hostlink import demoload
from core.hostlink.demo import DemoFleet
from core.hostlink.fleet import Fleet
from core.model import HostState, Resources, Service
from tests.conftest import demo_cluster
from tests.hostlink.helpers import until, until_state

ROOT = Path(__file__).resolve().parents[2]
LOADGEN = ROOT / "core" / "hostlink" / "loadgen.py"
WEB = Service("web", "demo-load web -- sleep 300", 1, Resources(400, 1 << 24))
API = Service("api", "sleep 300", 1, Resources(1000, 1 << 24))


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def burned(proc: psutil.Process, seconds: float) -> float:
    """Cores `proc` used over `seconds`, as /proc counts them."""
    before = cpu_seconds(proc)
    time.sleep(seconds)
    return (cpu_seconds(proc) - before) / seconds


def test_bad_loads_say_what_to_write() -> None:
    config = demo_cluster(services=(WEB, API))
    with pytest.raises(BadLoad, match=re.escape("write SERVICE=SHARE, e.g. web=0.9")):
        demoload.parse(["web"])
    with pytest.raises(BadLoad, match="'lots' is not a number"):
        demoload.parse(["web=lots"])
    with pytest.raises(BadLoad, match="≥ 0"):
        demoload.parse(["web=-0.5"])
    with pytest.raises(BadLoad, match="≥ 0"):
        demoload.parse(["web=nan"])
    with pytest.raises(BadLoad, match=re.escape("no service 'db' (services that take a load: web)")):
        demoload.load_of(config, "db", 0.5)
    with pytest.raises(BadLoad, match=re.escape("api's command does not run under `demo-load api -- ...`")):
        demoload.load_of(config, "api", 0.5)
    with pytest.raises(BadLoad, match=re.escape("more than the one core a demo replica burns; give at most 2.50")):
        demoload.load_of(config, "web", 3)
    assert demoload.load_of(config, "web", 0.9) == demoload.Load("web", 0.9, 360)


def test_a_write_keeps_the_other_services_loads(tmp_path: Path) -> None:
    other = Service("worker", "exec demo-load worker", 1, Resources(200, 1 << 24))
    config = demo_cluster(services=(WEB, other))
    demoload.write(tmp_path, config, {"web": 0.5, "worker": 1})
    demoload.write(tmp_path, config, {"web": 0.25})
    assert demoload.read(tmp_path) == {
        "web": demoload.Load("web", 0.25, 100),
        "worker": demoload.Load("worker", 1.0, 200),
    }
    with pytest.raises(BadLoad):
        demoload.write(tmp_path, config, {"web": 0.1, "api": 0.5})  # one bad: none written
    assert demoload.read(tmp_path)["web"].share == 0.25
    assert [p.name for p in tmp_path.iterdir()] == ["load.json"]  # no temporary file left


def test_the_burner_burns_its_share_follows_the_file_and_ends_with_its_command(tmp_path: Path) -> None:
    config = demo_cluster(services=(WEB,))
    env = {**os.environ, **demoload.install(tmp_path)}
    demoload.write(tmp_path, config, {"web": 0.5})  # 200m of one core
    proc = subprocess.Popen([sys.executable, str(LOADGEN), "web", "--", "sleep", "4"], env=env)
    try:
        me = psutil.Process(proc.pid)
        time.sleep(0.5)
        busy = burned(me, 1.5)
        assert 0.1 < busy < 0.3, f"burned {busy:.2f} cores, want ~0.2"  # less on a loaded machine, never 0
        demoload.write(tmp_path, config, {"web": 0})
        time.sleep(0.8)  # read within REREAD
        assert burned(me, 1.0) < 0.05
        assert proc.wait(timeout=10) == 0  # its command (sleep 4) ended: so does the replica
    finally:
        proc.kill()
        proc.wait()


def test_the_command_runs_from_the_path_demo_hosts_get(tmp_path: Path) -> None:
    env = {**os.environ, **demoload.install(tmp_path)}
    done = subprocess.run(["sh", "-c", "demo-load web -- sh -c 'exit 7'"], env=env, timeout=30)
    assert done.returncode == 7
    assert subprocess.run(["sh", "-c", "demo-load"], env=env, capture_output=True, timeout=30).returncode == 2


async def test_a_demo_replica_burns_the_load_set_and_the_probe_measures_it(
    tmp_path: Path, demo_fleet: Callable[[object], Awaitable[DemoFleet]]
) -> None:
    config = demo_cluster(1, services=(WEB,))
    demo = await demo_fleet(config)
    fleet = Fleet(config, known_hosts=demo.known_hosts, client_keys=[demo.client_key])
    await fleet.start()
    try:
        await until_state(fleet, "h1", HostState.UP, 10)
        await fleet.start_replica("h1", WEB, 0, "g1")

        def cpu() -> float | None:
            reps = fleet.observations()["h1"].replicas
            return reps[0].cpu_percent if reps and reps[0].running else None

        await until(lambda: cpu() is not None, 10, "web/0 running and measured")
        await asyncio.sleep(1.5)
        assert (cpu() or 0) < 3  # no load set: idle
        assert demo.set_load(config, {"web": 0.75}) == [demoload.Load("web", 0.75, 300)]  # 30 % of a core
        await until(lambda: (cpu() or 0) > 15, 10, "web/0 burning its load")
        await asyncio.sleep(2)
        assert 15 < (cpu() or 0) < 40, cpu()
    finally:
        await fleet.close()


def test_cli_sets_the_load_of_a_demo_service(tmp_path: Path) -> None:
    cluster = tmp_path / "cluster.toml"
    text = (ROOT / "cluster.toml").read_text(encoding="utf-8")
    cluster.write_text(text, encoding="utf-8")
    workdir = tmp_path / "demo"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LOADMASTER_")}

    def loadmaster(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "console.cli", "demo", "-c", str(cluster),
                               "--workdir", str(workdir), *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=60, env=environ)  # fmt: skip

    done = loadmaster("--load", "web=0.9")
    assert done.returncode == 0, done.stderr
    web = config_io.load(cluster).service("web")
    assert f"web: each replica burns 0.9 of its request ({round(0.9 * web.resources.cpu)}m cpu)" in done.stdout
    assert json.loads((workdir / "load.json").read_text())["web"] == {"share": 0.9, "millicores": 450}
    bad = loadmaster("--load", "db=0.5")
    assert bad.returncode == 1 and "--load db=0.5: db's command does not run under `demo-load db -- ...`" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_the_demo_console_follows_its_file_so_the_autoscaler_runs_unless_hosts_go_beyond_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`loadmaster demo` hands the console its cluster file (followed, written by :scale and the autoscaler);
    with --hosts beyond the file the fleet is larger than the file, so nothing is followed or written."""
    from console import cli
    from console.commands import demo as demo_command

    cluster = tmp_path / "cluster.toml"
    cluster.write_text((ROOT / "cluster.toml").read_text(encoding="utf-8"), encoding="utf-8")
    paths: list[Path | None] = []

    async def console(fleet: DemoFleet, workdir: Path, *, read_only: bool, path: Path | None) -> int:
        paths.append(path)
        return 0

    monkeypatch.setattr(demo_command, "_console", console)
    common = ["demo", "-c", str(cluster), "--workdir", str(tmp_path / "demo")]
    assert cli.main(common) == 0
    assert cli.main([*common, "--hosts", "12"]) == 0  # the file has 7 demo hosts
    assert paths == [cluster, None]
