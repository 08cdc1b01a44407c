"""Fleet benchmark: N demo hosts streamed at the cluster's poll interval, measured from the client side.

    python benchmarks/fleet.py --hosts 500 --seconds 60

The demo servers run in other processes (`loadmaster demo --serve`), so their CPU
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
    for line in proc.stdout:
        if line.startswith("serving "):
            return
        if time.monotonic() > deadline:
            break
    raise SystemExit(f"demo server did not come up (exit {proc.poll()})")


def _victim_file(directory: Path, name: str, port: int) -> Path:
    path = directory / f"{name}.toml"
    path.write_text(
        f'[cluster]\nname = "{name}"\ndemo = true\n\n'
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
    parser.add_argument("--hosts", type=int, default=500, help="demo hosts in all (at least 9)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the measurement window")
    parser.add_argument("-c", "--config", default=str(ROOT / "cluster.toml"), help="demo cluster file to scale")
    args = parser.parse_args()
    base = config_file.load(args.config)
    declared = sum(1 for h in base.hosts if h.demo)
    if args.hosts < declared + len(VICTIMS):
        raise SystemExit(f"--hosts must be at least {declared + len(VICTIMS)} ({declared} in the file + 2 victims)")
    main_hosts = args.hosts - len(VICTIMS)
    served = demo_config(base, main_hosts - declared)
    with tempfile.TemporaryDirectory(prefix="lm-fleet-bench-") as tmp:
        work = Path(tmp)
        procs: dict[str, subprocess.Popen[str]] = {}
        try:
            procs["main"] = _serve(["-c", args.config, "--hosts", str(main_hosts)], work / "main")
            port = max(h.port for h in served.hosts)
            victims = []
            for i, name in enumerate(VICTIMS, start=1):
                victims.append(config_file.load(_victim_file(work, name, port + i)))
                procs[name] = _serve(["-c", str(work / f"{name}.toml")], work / name)
            for proc in procs.values():
                _wait_serving(proc, 120.0)
            cfg = dataclasses.replace(served, hosts=(*served.hosts, *(v.hosts[0] for v in victims)))
            known = work / "known_hosts"
            known.write_text("".join((work / n / "known_hosts").read_text() for n in ("main", *VICTIMS)))
            keys = [str(work / n / "client_key") for n in ("main", *VICTIMS)]
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


if __name__ == "__main__":
    main()
