"""Clustered mode from the command line, with real processes: two `loadmaster run --headless` daemons on a
demo fleet and a 3-member etcd; `config push/pull` (compare-and-swap, invalid pushes refused with every
error as `validate` prints them, every daemon adopts a push), `status` listing the controllers,
`leader step-down` and SIGUSR1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core import config as config_io
from core.hostlink.demo import DemoFleet
from core.store.etcd import EtcdClient
from core.store.localetcd import LocalEtcd
from tests.sshd import free_port

ROOT = Path(__file__).resolve().parents[2]


def cluster_toml(name: str, store: str, web: int = 3) -> str:
    lines = ["[cluster]", f'name = "{name}"', "demo = true", 'poll_interval = "300ms"', 'failure_timeout = "4s"',
             f'store = "{store}"', "", "[policy]", "auto_apply = true", 'settle = "0s"', "solver_workers = 1",
             ""]  # fmt: skip
    for i in range(1, 4):
        lines += ["[[hosts]]", f'name = "h{i}"', 'address = "127.0.0.1"', f"port = {free_port('127.0.0.1')}",
                  'capacity = { cpu = 4, mem = "8GiB" }', ""]  # fmt: skip
    lines += ["[[services]]", 'name = "web"', 'command = "sleep 6051"', f"replicas = {web}", 'cpu = "250m"',
              'mem = "64MiB"', ""]  # fmt: skip
    return "\n".join(lines)


async def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """In a thread: the demo fleet's SSH servers run on this test's event loop, and a command that blocked it
    (`status` reads every host) stalled them past the daemons' keepalive — every host went down for 20 s."""
    env = dict(os.environ, HOME=str(home))
    return await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "console.cli", *args], env=env, cwd=ROOT,
                                   capture_output=True, text=True, timeout=60)  # fmt: skip


def lines(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text().splitlines() if log.exists() else []:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.1)


def acting(log: Path) -> list[float]:
    return [float(e["at"]) for e in lines(log) if e.get("event") == "controller.acting"]


async def test_push_pull_status_step_down_with_two_daemons(etcd: LocalEtcd, tmp_path: Path) -> None:
    name = f"cli{os.getpid()}"
    home = tmp_path / "home"
    path = tmp_path / "cluster.toml"
    path.write_text(cluster_toml(name, etcd.url))
    cfg = config_io.load(path)
    demo = DemoFleet(cfg, home / ".loadmaster" / "demo" / name)
    await demo.start()
    procs: list[subprocess.Popen[bytes]] = []
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    try:
        first = await cli(home, "config", "push", str(path))
        assert first.returncode == 0, first.stderr
        env = dict(os.environ, HOME=str(home))
        for log in logs:
            argv = [sys.executable, "-m", "console.cli", "run", "--headless", "-c", str(path), "--log", str(log)]
            with open(log.with_suffix(".err"), "wb") as err:
                procs.append(subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err))
        await until(lambda: sum(bool(acting(log)) for log in logs) == 1, 60, "one daemon leads")
        leader = 0 if acting(logs[0]) else 1

        status = await cli(home, "status", "-c", str(path))
        assert "controllers (2):" in status.stdout, status.stdout + status.stderr
        ids = [next(e["controller"] for e in lines(log) if e.get("event") == "store.connected") for log in logs]
        assert f"standby (leader: {ids[leader]})" in status.stdout

        # `drain` from the command line reaches the leader through the store (it is no controller itself)
        drained = await cli(home, "drain", "h1", "-c", str(path))
        assert drained.returncode == 0 and "h1 draining" in drained.stdout, drained.stdout + drained.stderr
        await until(lambda: any(e.get("event") == "host.drained" for e in lines(logs[leader])), 60, "h1 drained")
        assert (await cli(home, "uncordon", "h1", "-c", str(path))).returncode == 0
        client = EtcdClient(etcd.endpoints)
        assert await client.get(cfg.store.key_prefix(name) + "holds/h1") is None  # every controller reads it
        await client.close()

        # An invalid push is refused with every error, exactly as validate prints them.
        bad = tmp_path / "bad.toml"
        bad.write_text(
            path.read_text().replace('cpu = "250m"', 'cpu = "lots"').replace("replicas = 3", "replicas = -1")
        )
        refused, validate = await cli(home, "config", "push", str(bad)), await cli(home, "validate", "-c", str(bad))
        assert refused.returncode == validate.returncode == 1
        assert refused.stderr == validate.stderr and refused.stderr.count(str(bad)) == 2
        # A push based on an old revision is a conflict naming the stored one.
        stale = await cli(home, "config", "push", str(path), "--if-revision", "1")
        assert stale.returncode == 5 and "changed since it was read" in stale.stderr
        # pull, edit, push (the revision the pull saw): both daemons adopt it.
        pulled = tmp_path / "pulled.toml"
        assert (await cli(home, "config", "pull", str(pulled), "-c", str(path))).returncode == 0
        assert pulled.read_text() == path.read_text()
        pulled.write_text(pulled.read_text().replace("replicas = 3", "replicas = 5"))
        pushed = await cli(home, "config", "push", str(pulled))
        assert pushed.returncode == 0, pushed.stderr
        for log in logs:
            await until(lambda log=log: any("web scaled 3 → 5" in e.get("message", "") for e in lines(log)), 20,
                        f"{log.name} adopts the push")  # fmt: skip

        # leader step-down: the other daemon leads; SIGUSR1 to that one: the first leads again.
        other = 1 - leader
        down = await cli(home, "leader", "step-down", "-c", str(path))
        assert down.returncode == 0 and ids[leader] in down.stdout, down.stdout + down.stderr
        await until(lambda: bool(acting(logs[other])), 30, "the other daemon leads")
        since = time.time()
        procs[other].send_signal(signal.SIGUSR1)
        await until(lambda: any(t >= since for t in acting(logs[leader])), 30, "the first leads again")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        await demo.stop()
