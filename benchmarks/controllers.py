"""Two controllers on one cluster, started together: one acts, the other stands by, nothing doubles.

    python benchmarks/controllers.py --runs 20

Each run starts a fresh demo fleet (in this process: asyncssh servers on loopback whose
replicas are real `sleep` processes) and, at the same instant, two daemons
`loadmaster run --headless --auto-apply` as separate processes on one cluster file. Even
runs give them one home (one journal, as two daemons on one machine); odd runs two homes
(two journals, as two machines). Once every replica runs and has held for a few seconds,
the run counts, from the processes themselves (tests/faults/census.py: sessions per log file):
- duplicated: replica copies beyond one, plus copies of replicas nobody declared;
- foreign: live replica records whose fencing epoch is not one a controller acted under
  (started by a controller that did not hold the cluster);
- acting: daemons that logged `action.started` (both_acted counts runs where two did);
- standby_s: for the daemon that did not act, seconds from its `daemon.started` line to its
  `controller.standby` line (it is read-only from then on).
Prints a JSON summary on its last line: runs, duplicated, foreign, standby_max_s (target:
0 duplicated, and the second read-only within failure_timeout every run), and detail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil

from core import config as config_io
from core.hostlink import records
from core.hostlink.demo import HOME_MARK, DemoFleet
from tests.faults.census import census, problems
from tests.sshd import free_port

FAILURE_TIMEOUT = 3.0


def cluster_toml(name: str, hosts: int, tag: int) -> str:
    lines = [
        "[cluster]", f'name = "{name}"', "demo = true", 'poll_interval = "500ms"',
        f'failure_timeout = "{FAILURE_TIMEOUT:g}s"', "", "[policy]", "auto_apply = true", 'settle = "0s"',
        'solver_time_limit = "2s"', "solver_workers = 1", "",
    ]  # fmt: skip
    for i in range(1, hosts + 1):
        lines += ["[[hosts]]", f'name = "h{i}"', 'address = "127.0.0.1"', f"port = {free_port('127.0.0.1')}",
                  'capacity = { cpu = 4, mem = "8GiB" }', ""]  # fmt: skip
    lines += ["[[services]]", 'name = "web"', f'command = "sleep {tag}1"', "replicas = 6", "cpu = 1",
              'mem = "512MiB"', "max_per_host = 2", "",
              "[[services]]", 'name = "db"', f'command = "sleep {tag}2"', "replicas = 2", "cpu = 1",
              'mem = "1GiB"', "max_per_host = 1", ""]  # fmt: skip
    return "\n".join(lines)


def daemon(config: Path, home: Path, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, HOME=str(home))
    argv = [sys.executable, "-m", "console.cli", "run", "--headless", "--auto-apply", "-c", str(config)]
    argv += ["--log", str(log)]
    with open(log.with_suffix(".err"), "wb") as err:
        return subprocess.Popen(argv, env=env, cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.DEVNULL,
                                stderr=err)  # fmt: skip


def events(log: Path) -> list[dict[str, object]]:
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def processes(demo: DemoFleet) -> dict[str, list[int]]:
    """Host → pids of the processes its demo server started (marked in their environment)."""
    homes = {str(demo.workdir / "hosts" / h.name / "home"): h.name for h in demo.hosts}
    out: dict[str, list[int]] = {name: [] for name in homes.values()}
    for proc in psutil.process_iter():
        try:
            home = proc.environ().get(HOME_MARK)
        except psutil.Error:
            continue
        if home in homes:
            out[homes[home]].append(proc.pid)
    return out


def live_epochs(demo: DemoFleet, name: str) -> list[int | None]:
    out = []
    for h in demo.hosts:
        state = demo.workdir / "hosts" / h.name / "home" / ".loadmaster" / name
        out += [s.epoch for s in records.samples(state) if s.alive]
    return out


async def one_run(run: int, hosts: int, work: Path) -> dict[str, object]:
    name = f"ctl{run}"
    tag = 70000 + run * 10
    homes = [work / "home-a", work / "home-a"] if run % 2 == 0 else [work / "home-a", work / "home-b"]
    config = work / "cluster.toml"
    config.write_text(cluster_toml(name, hosts, tag))
    cfg = config_io.load(config)
    demo = DemoFleet(cfg, homes[0] / ".loadmaster" / "demo" / name)
    await demo.start()
    if homes[1] != homes[0]:  # the second machine reaches the same demo hosts with the same keys
        (homes[1] / ".loadmaster" / "demo").mkdir(parents=True)
        (homes[1] / ".loadmaster" / "demo" / name).symlink_to(demo.workdir)
    logs = [work / "a.log", work / "b.log"]
    pair = [daemon(config, homes[i], logs[i]) for i in range(2)]
    desired = [f"{s.name}/{i}" for s in cfg.services for i in range(s.replicas)]
    try:
        deadline = time.monotonic() + 60
        held_since = None
        while time.monotonic() < deadline:
            wrong = problems(census(processes(demo)), [r for s in cfg.services for r in s.replica_ids()])
            if not wrong:
                held_since = held_since or time.monotonic()
                if time.monotonic() - held_since >= 4:
                    break
            else:
                held_since = None
            await asyncio.sleep(0.25)
        copies = census(processes(demo))
        wanted = {r for s in cfg.services for r in s.replica_ids()}
        duplicated = sum(max(0, len(c) - 1) for c in copies.values()) + sum(
            len(c) for r, c in copies.items() if r not in wanted
        )
        lost = len(wanted - set(copies))
        seen = [events(log) for log in logs]
        acting = [i for i in range(2) if any(e["event"] == "action.started" for e in seen[i])]
        epochs = {e.get("epoch") for s in seen for e in s if e["event"] == "controller.acting"}
        foreign = sum(1 for epoch in live_epochs(demo, name) if epoch not in epochs)
        standby_s = None
        for i in range(2):
            started = [e["at"] for e in seen[i] if e["event"] == "daemon.started"]
            standby = [e["at"] for e in seen[i] if e["event"] == "controller.standby"]
            if i not in acting and started and standby:
                standby_s = round(float(standby[0]) - float(started[0]), 2)  # type: ignore[arg-type]
        return {
            "run": run, "journals": len(set(homes)), "replicas": len(desired), "lost": lost,
            "duplicated": duplicated, "foreign": foreign, "acting": len(acting), "standby_s": standby_s,
        }  # fmt: skip
    finally:
        for proc in pair:
            proc.send_signal(signal.SIGTERM)
        for proc in pair:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        await demo.stop()


async def main(args: argparse.Namespace) -> dict[str, object]:
    results = []
    for run in range(args.runs):
        work = Path(tempfile.mkdtemp(prefix=f"lm-controllers-{run}-"))
        try:
            result = await one_run(run, args.hosts, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(json.dumps(result), flush=True)
        results.append(result)
    standby = [r["standby_s"] for r in results if r["standby_s"] is not None]
    return {
        "runs": len(results),
        "hosts": args.hosts,
        "replicas": results[0]["replicas"] if results else 0,
        "failure_timeout_s": FAILURE_TIMEOUT,
        "duplicated": sum(int(r["duplicated"]) for r in results),  # type: ignore[call-overload]
        "foreign": sum(int(r["foreign"]) for r in results),  # type: ignore[call-overload]
        "lost": sum(int(r["lost"]) for r in results),  # type: ignore[call-overload]
        "both_acted": sum(1 for r in results if r["acting"] != 1),
        "standby_runs": len(standby),
        "standby_max_s": max(standby) if standby else None,  # type: ignore[type-var]
        "standby_median_s": statistics.median(standby) if standby else None,  # type: ignore[type-var]
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--hosts", type=int, default=4)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
