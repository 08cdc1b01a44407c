"""Controllers past one machine: 3 etcd members, 3 daemons, one leader; kill it, pause it, count.

    flock /tmp/loadmaster-bench.lock python benchmarks/ha.py [--trials 10] [--hosts 30] [--replicas 120]

A local 3-member etcd cluster (Debian's etcd-server, core/store/localetcd.py), a demo fleet in this
process (asyncssh servers on loopback whose replicas are real `sleep` processes), and three daemons
`loadmaster run --headless --auto-apply` as separate processes, each with its own HOME (as three
machines), on one cluster file whose `[cluster] store` is the etcd cluster.

- takeover (x trials): kill -9 of the leader and, at the same instant, a crash of one demo host that
  runs replicas. takeover_s = from the kill to the new leader's `controller.acting` line (it has claimed
  the hosts and acts). The trial then waits for every replica to run exactly once, counted from the
  processes themselves (tests/faults/census.py): `lost` and `duplicated` sum what is wrong after each
  trial settled (60 s at most). A daemon is started in place of the killed one; the host is restored.
- pause: a push of the desired state that adds replicas; when the leader logs its first
  `action.started` for them, SIGSTOP for 2 × TTL, then SIGCONT. Counted from the old leader's log after
  SIGCONT. Each action the old leader had not finished ends one of three ways: refused by its own guard
  before anything is sent (`refused_locally`: its lease ran out by its clock), sent to a host and refused
  there (`fenced`: its token is older than the new leader's), or sent and carried out. `attempts` counts
  what reached a host after the new leader acted: `fenced` plus `deposed_starts`, the live replicas
  started under the old leader's epoch after that moment (from the hosts' own replica records). The target
  is `fenced` = `attempts`, i.e. `deposed_starts` = 0; `done_after_resume` are actions a host carried out
  before the pause whose answer the old leader read after it.
Prints a JSON summary on its last line.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil

from core import config as config_io
from core.hostlink import records
from core.hostlink.demo import HOME_MARK, DemoFleet
from core.model import ClusterConfig, ReplicaId
from core.store.election import LEADER
from core.store.etcd import EtcdClient
from core.store.localetcd import LocalEtcd
from tests.faults.census import census, problems
from tests.sshd import free_port

FAILURE_TIMEOUT = 3.0
ROOT = Path(__file__).resolve().parent.parent


def cluster_toml(name: str, hosts: int, replicas: int, store: str, tag: int, extra: int = 0) -> str:
    web, db = replicas * 2 // 3, replicas - replicas * 2 // 3
    lines = [
        "[cluster]", f'name = "{name}"', "demo = true", 'poll_interval = "500ms"',
        f'failure_timeout = "{FAILURE_TIMEOUT:g}s"', f'store = "{store}"', "",
        "[policy]", "auto_apply = true", 'settle = "0s"', 'solver_time_limit = "2s"', "solver_workers = 1",
        "max_stops_per_reload = 1000", "",
    ]  # fmt: skip
    for i in range(1, hosts + 1):
        lines += ["[[hosts]]", f'name = "h{i}"', 'address = "127.0.0.1"', f"port = {free_port('127.0.0.1')}",
                  'capacity = { cpu = 4, mem = "8GiB" }', ""]  # fmt: skip
    lines += ["[[services]]", 'name = "web"', f'command = "sleep {tag}1"', f"replicas = {web + extra}",
              'cpu = "250m"', 'mem = "128MiB"', "",
              "[[services]]", 'name = "db"', f'command = "sleep {tag}2"', f"replicas = {db}", 'cpu = "500m"',
              'mem = "256MiB"', "max_per_host = 2", ""]  # fmt: skip
    return "\n".join(lines)


class Daemon:
    def __init__(self, name: str, config: Path, home: Path, work: Path):
        self.name, self.log = name, work / f"{name}.log"
        env = dict(os.environ, HOME=str(home))
        argv = [sys.executable, "-m", "console.cli", "run", "--headless", "--auto-apply", "-c", str(config),
                "--log", str(self.log)]  # fmt: skip
        with open(self.log.with_suffix(".err"), "ab") as err:
            self.proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)

    def events(self) -> list[dict[str, Any]]:
        out = []
        if self.log.exists():
            for line in self.log.read_text().splitlines():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def processes(demo: DemoFleet) -> dict[str, list[int]]:
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


def wanted(cfg: ClusterConfig) -> list[ReplicaId]:
    return [r for s in cfg.services for r in s.replica_ids()]


async def settle(demo: DemoFleet, cfg: ClusterConfig, timeout: float, hold: float = 2.0) -> tuple[int, int, float]:
    """Wait until every replica runs exactly once (for `hold` s); (lost, duplicated, seconds) at the end."""
    start = time.monotonic()
    held = None
    while time.monotonic() - start < timeout:
        if not problems(census(processes(demo)), wanted(cfg)):
            held = held or time.monotonic()
            if time.monotonic() - held >= hold:
                break
        else:
            held = None
        await asyncio.sleep(0.25)
    copies = census(processes(demo))
    want = set(wanted(cfg))
    live = {r: [c for c in cs if not c.stopped] for r, cs in copies.items()}
    duplicated = sum(max(0, len(c) - 1) for c in live.values()) + sum(len(c) for r, c in live.items() if r not in want)
    lost = sum(1 for r in want if not live.get(r))
    return lost, duplicated, round(time.monotonic() - start, 2)


async def leader_pid(client: EtcdClient, prefix: str, timeout: float = 30) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kv = await client.get(prefix + LEADER)
        if kv is not None:
            who = kv.value.decode()
            return int(who.split("-", 1)[0]), who
        await asyncio.sleep(0.1)
    raise RuntimeError("no leader elected in time")


def acting_after(daemons: list[Daemon], since: float, exclude: int) -> tuple[Daemon, dict[str, Any]] | None:
    for d in daemons:
        if d.proc.pid == exclude:
            continue
        for e in d.events():
            if e.get("event") == "controller.acting" and float(e["at"]) >= since:
                return d, e
    return None


async def main(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="lm-ha-"))
    etcd = LocalEtcd(3, root=work / "etcd")
    etcd.start()
    name, tag = "ha", 81000
    config = work / "cluster.toml"
    config.write_text(cluster_toml(name, args.hosts, args.replicas, etcd.url, tag))
    cfg = config_io.load(config)
    homes = [work / f"home-{c}" for c in "abc"]
    demo = DemoFleet(cfg, homes[0] / ".loadmaster" / "demo" / name)
    await demo.start()
    for home in homes[1:]:  # the other machines reach the same demo hosts with the same keys
        (home / ".loadmaster" / "demo").mkdir(parents=True)
        (home / ".loadmaster" / "demo" / name).symlink_to(demo.workdir)
    client = EtcdClient(etcd.endpoints)
    prefix = cfg.store.key_prefix(name)
    daemons = [Daemon(f"d{i}", config, homes[i], work) for i in range(3)]
    trials: list[dict[str, Any]] = []
    result: dict[str, Any] = {}
    try:
        lost, duplicated, took = await settle(demo, cfg, 120)
        print(json.dumps({"phase": "start", "lost": lost, "duplicated": duplicated, "s": took}), flush=True)
        for trial in range(args.trials):
            pid, _ = await leader_pid(client, prefix)
            leader = next(d for d in daemons if d.proc.pid == pid)
            running = processes(demo)
            victim = [h.name for h in demo.hosts if running[h.name]][trial % 5]  # a host that runs replicas
            t0 = time.time()
            os.kill(pid, signal.SIGKILL)
            await demo.crash(victim)
            found = None
            while found is None and time.time() - t0 < 30:
                await asyncio.sleep(0.05)
                found = acting_after(daemons, t0, pid)
            takeover = round(float(found[1]["at"]) - t0, 2) if found else None
            leader.proc.wait()
            lost, duplicated, took = await settle(demo, cfg, 60)
            row = {"trial": trial, "takeover_s": takeover, "host_crashed": victim, "lost": lost,
                   "duplicated": duplicated, "settled_s": took}  # fmt: skip
            print(json.dumps(row), flush=True)
            trials.append(row)
            index = daemons.index(leader)
            daemons[index] = Daemon(f"d{index}-{trial}", config, homes[index], work)
            await demo.restore(victim)
            await asyncio.sleep(1.0)
        pause = await pause_trial(args, demo, cfg, config, client, prefix, daemons, etcd.url, tag, name)
        print(json.dumps({"phase": "pause", **pause}), flush=True)
        takeovers = [t["takeover_s"] for t in trials if t["takeover_s"] is not None]
        result = {
            "etcd_members": 3, "daemons": 3, "hosts": args.hosts, "replicas": args.replicas,
            "failure_timeout_s": FAILURE_TIMEOUT, "trials": len(trials),
            "takeover_median_s": statistics.median(takeovers) if takeovers else None,
            "takeover_max_s": max(takeovers) if takeovers else None,
            "takeover_missing": len(trials) - len(takeovers),
            "lost": sum(t["lost"] for t in trials) + pause["lost"],
            "duplicated": sum(t["duplicated"] for t in trials) + pause["duplicated"],
            **{k: pause[k] for k in ("attempts", "fenced", "refused_locally", "done_after_resume", "deposed_starts")},
            "pause_takeover_s": pause["takeover_s"],
        }  # fmt: skip
    finally:
        for d in daemons:
            d.stop()
        await client.close()
        await demo.stop()
        etcd.close()
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return result


async def pause_trial(
    args: argparse.Namespace, demo: DemoFleet, cfg: ClusterConfig, config: Path, client: EtcdClient, prefix: str,
    daemons: list[Daemon], store: str, tag: int, name: str,
) -> dict[str, Any]:  # fmt: skip
    pid, who = await leader_pid(client, prefix)
    old = next(d for d in daemons if d.proc.pid == pid)
    seen = len(old.events())
    bigger = config.with_name("bigger.toml")
    # The same hosts and ports: only web grows, so the leader has many starts in flight.
    text = config.read_text().replace(
        f"replicas = {args.replicas * 2 // 3}", f"replicas = {args.replicas * 2 // 3 + 40}"
    )
    bigger.write_text(text)
    env = dict(os.environ, HOME=str(config.parent / "home-a"))
    subprocess.run([sys.executable, "-m", "console.cli", "config", "push", str(bigger), "--if-revision",
                    str((await client.get(prefix + "desired")).mod_revision)],  # type: ignore[union-attr]
                   env=env, cwd=ROOT, check=True, capture_output=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(e.get("event") == "action.started" for e in old.events()[seen:]):
            break
        await asyncio.sleep(0.01)
    os.kill(pid, signal.SIGSTOP)
    stopped = time.time()
    old_epoch = _epoch(old)
    await asyncio.sleep(2 * FAILURE_TIMEOUT)
    found = acting_after(daemons, stopped, pid)
    deposed_at = float(found[1]["at"]) if found else stopped + 2 * FAILURE_TIMEOUT
    resumed = time.time()
    mark = len(old.events())
    os.kill(pid, signal.SIGCONT)
    bigger_cfg = config_io.load(bigger)
    lost, duplicated, _ = await settle(demo, bigger_cfg, 60)
    await asyncio.sleep(1.0)
    after = old.events()[mark:]
    failed = [e for e in after if e.get("event") == "action.failed"]
    done = [e for e in after if e.get("event") == "action.done"]
    fenced = sum(1 for e in failed if "fenced" in str(e.get("message", "")).lower())
    local = sum(1 for e in failed if "refused" in str(e.get("message", "")) and "fenced" not in str(e.get("message")))
    deposed = 0
    for h in demo.hosts:
        state = demo.workdir / "hosts" / h.name / "home" / ".loadmaster" / name
        for r in records.read_records(state):
            if r.epoch == old_epoch and r.started_at >= deposed_at:
                deposed += 1
    return {
        "leader": who, "old_epoch": old_epoch, "takeover_s": round(deposed_at - stopped, 2) if found else None,
        "resumed_after_s": round(resumed - stopped, 2), "attempts": fenced + deposed, "fenced": fenced,
        "refused_locally": local, "done_after_resume": len(done), "deposed_starts": deposed, "lost": lost,
        "duplicated": duplicated,
    }  # fmt: skip


def _epoch(d: Daemon) -> int | None:
    """The epoch the daemon last acted under (its `controller.acting` line)."""
    for e in reversed(d.events()):
        if e.get("event") == "controller.acting":
            return int(e["epoch"])
    return None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--hosts", type=int, default=30)
    parser.add_argument("--replicas", type=int, default=120)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) for a look")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
