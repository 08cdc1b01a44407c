"""Fleet benchmark: N demo hosts streamed at the cluster's poll interval, measured from the client side.

    python benchmarks/fleet.py --hosts 500 --seconds 60

The demo servers run in other processes (`loadmaster demo --serve`, on ports from
--base-port, away from cluster.toml's demo ports), so their CPU
does not count against the client; this process holds only the `Fleet`.
Two of the N hosts are served by single-host processes of their own: one is
killed (a dead host: its server ends) and one is SIGSTOPped (a hung host), to time
how long the fleet takes to call each of them down.

Prints a JSON summary on its last line: hosts, p99_staleness_s, cpu_core_fraction,
mem_per_host_mib, detect_dead_s, detect_hung_s, cpu_s_per_100_polls, and context.
Targets (issue 4): p99 staleness <= 2 s, cpu < 0.5 core, < 2 MiB per host,
dead and hung hosts noticed within failure_timeout + one poll.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from core import config as config_file
from core.hostlink.demo import demo_config
from core.hostlink.fleet import Fleet
from core.model import ClusterConfig, HostObservation, HostState

ROOT = Path(__file__).resolve().parent.parent
VICTIMS = ("victim-dead", "victim-hung")


def _serve(args: list[str], workdir: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "console.cli", "demo", "--serve", "--workdir", str(workdir), *args]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_serving(proc: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        if line.startswith("serving "):
            return
        tail = [*tail[-5:], line]
        if time.monotonic() > deadline:
            break
    raise SystemExit(f"demo server did not come up (exit {proc.poll()}): {''.join(tail)}")


def _cluster_file(directory: Path, name: str, timing: ClusterConfig, port: int) -> Path:
    """A one-host demo cluster file; `--hosts` scales the first one up on the following ports."""
    path = directory / f"{name}.toml"
    path.write_text(
        f'[cluster]\nname = "{name}"\ndemo = true\n'
        f"poll_interval = {timing.poll_interval}\nfailure_timeout = {timing.failure_timeout}\n\n"
        f'[[hosts]]\nname = "{name}"\naddress = "127.0.0.1"\nport = {port}\ncapacity = {{ cpu = 4, mem = "8GiB" }}\n',
        encoding="utf-8",
    )
    return path


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _wait_for(fleet: Fleet, names: list[str], states: set[HostState], timeout: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        obs = fleet.observations()
        if all(obs[n].state in states for n in names):
            return time.monotonic() - start
        await asyncio.sleep(0.02)
    return None


async def _measure(cfg: ClusterConfig, known_hosts: str, keys: list[str], seconds: float, procs: dict) -> dict:
    me = psutil.Process()
    frames = 0

    def on_change(o: HostObservation) -> None:
        nonlocal frames
        if o.state is HostState.UP and o.last_seen == o.at:
            frames += 1

    rss_before = me.memory_info().rss
    fleet = Fleet(cfg, known_hosts=known_hosts, client_keys=keys, on_change=on_change)
    await fleet.start()
    names = [h.name for h in cfg.hosts]
    connect_s = await _wait_for(fleet, names, {HostState.UP}, 120.0)
    if connect_s is None:
        bad = {n: (o.state.value, o.error) for n, o in fleet.observations().items() if o.state is not HostState.UP}
        raise SystemExit(f"not every host came up: {len(bad)} not up, e.g. {list(bad.items())[:3]}")
    await asyncio.sleep(3.0)  # settle: every connection past its handshake and first frames

    staleness: list[float] = []
    cpu0, frames0, wall0 = me.cpu_times(), frames, time.monotonic()
    while time.monotonic() - wall0 < seconds:
        await asyncio.sleep(0.25)
        now = time.time()
        for o in fleet.observations().values():
            staleness.append(now - o.last_seen if o.last_seen is not None else float("inf"))
    cpu1, frames1, wall1 = me.cpu_times(), frames, time.monotonic()
    rss_after = me.memory_info().rss
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    polls = frames1 - frames0

    os.kill(procs["victim-dead"].pid, signal.SIGKILL)
    os.kill(procs["victim-hung"].pid, signal.SIGSTOP)
    waits = await asyncio.gather(
        _wait_for(fleet, ["victim-dead"], {HostState.DOWN}, 30.0),
        _wait_for(fleet, ["victim-hung"], {HostState.DOWN}, 30.0),
    )
    os.kill(procs["victim-hung"].pid, signal.SIGCONT)
    await fleet.close()
    return {
        "hosts": len(names),
        "seconds": round(wall1 - wall0, 1),
        "poll_interval_s": cfg.poll_interval,
        "failure_timeout_s": cfg.failure_timeout,
        "connect_all_s": round(connect_s, 2),
        "p50_staleness_s": round(_percentile(staleness, 0.50), 3),
        "p99_staleness_s": round(_percentile(staleness, 0.99), 3),
        "max_staleness_s": round(max(staleness), 3),
        "polls": polls,
        "cpu_core_fraction": round(cpu / (wall1 - wall0), 3),
        "cpu_s_per_100_polls": round(100 * cpu / polls, 4) if polls else None,
        "mem_per_host_mib": round((rss_after - rss_before) / len(names) / 2**20, 3),
        "detect_dead_s": round(waits[0], 2) if waits[0] is not None else None,
        "detect_hung_s": round(waits[1], 2) if waits[1] is not None else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=500, help="demo hosts in all (at least 3)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the measurement window")
    parser.add_argument("--base-port", type=int, default=24000, help="first port of the hosts (below ephemeral ports)")
    parser.add_argument("-c", "--config", default=str(ROOT / "cluster.toml"), help="poll and failure timing from here")
    args = parser.parse_args()
    if args.hosts < 1 + len(VICTIMS):
        raise SystemExit(f"--hosts must be at least {1 + len(VICTIMS)} (the fleet and {len(VICTIMS)} victims)")
    timing = config_file.load(args.config)
    ports = range(args.base_port, args.base_port + args.hosts)
    taken = [p for p in ports if not _free(p)]
    if taken:
        raise SystemExit(f"ports {taken[:5]} are in use; pick another --base-port")
    with tempfile.TemporaryDirectory(prefix="lm-fleet-bench-") as tmp:
        work = Path(tmp)
        names = ("fleet", *VICTIMS)
        main_hosts = args.hosts - len(VICTIMS)
        firsts = (args.base_port, *(args.base_port + main_hosts + i for i in range(len(VICTIMS))))
        files = {n: _cluster_file(work, n, timing, port) for n, port in zip(names, firsts, strict=True)}
        procs: dict[str, subprocess.Popen[str]] = {}
        try:
            procs["fleet"] = _serve(["-c", str(files["fleet"]), "--hosts", str(main_hosts)], work / "fleet")
            for name in VICTIMS:
                procs[name] = _serve(["-c", str(files[name])], work / name)
            for proc in procs.values():
                _wait_serving(proc, 120.0)
            served = demo_config(config_file.load(files["fleet"]), main_hosts - 1)
            victims = [config_file.load(files[n]).hosts[0] for n in VICTIMS]
            cfg = dataclasses.replace(served, hosts=(*served.hosts, *victims))
            known = work / "known_hosts"
            known.write_text("".join((work / n / "known_hosts").read_text() for n in names))
            keys = [str(work / n / "client_key") for n in names]
            result = asyncio.run(_measure(cfg, str(known), keys, args.seconds, procs))
        finally:
            for proc in procs.values():
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGCONT)
                    proc.terminate()
            for proc in procs.values():
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    print(json.dumps(result))


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


if __name__ == "__main__":
    main()
