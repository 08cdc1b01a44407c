"""Fleet benchmark: N demo hosts streamed at the cluster's poll interval, measured from the client side.

    python benchmarks/fleet.py --hosts 500 --seconds 60

The demo servers run in other processes (`loadmaster demo --serve`, ports from
--base-port), so their CPU does not count against the client; this process holds
the `Fleet`. Four of the N hosts are there to be faulted after the measurement:
one served by a process of its own that is killed (a dead host: its server ends),
one whose process is SIGSTOPped (a hung host), and two served in this process that
are crashed and cut off through DemoFleet's API (the one the console's demo keys use).

Prints a JSON summary on its last line: hosts, p99_staleness_s, cpu_core_fraction,
mem_per_host_mib, detect_dead_s, detect_hung_s, cpu_s_per_100_polls, detect_crash_s,
detect_cut_off_s, and context.
Targets (issue 4): p99 staleness <= 2 s, cpu < 0.5 core, < 2 MiB per host,
dead and hung hosts noticed within failure_timeout + one poll.

Health checks' cost (issue 11: at most +10% client cpu at 500 hosts × 4 replicas, interval 5 s):

    python benchmarks/fleet.py --hosts 500 --replicas 4 --checks both --check-interval 5

starts 4 replicas (`sleep` processes) on every host of the main fleet, then measures the same window twice
with the same replicas: without checks, then with a tcp check on every replica (the hosts run the checks;
their results travel in the frames the client parses). The JSON line then holds both summaries and
check_cpu_increase_pct (cpu per second) and check_cpu_per_poll_increase_pct (cpu per 100 frames received).
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
from core.hostlink.demo import DemoFleet, demo_config
from core.hostlink.fleet import Fleet
from core.model import CheckKind, ClusterConfig, HealthCheck, Host, HostObservation, HostState, Resources, Service

ROOT = Path(__file__).resolve().parent.parent
VICTIMS = ("victim-dead", "victim-hung")  # served by processes of their own: killed, SIGSTOPped
IN_PROCESS = ("api-crash", "api-cut-off")  # served here: DemoFleet.crash, DemoFleet.cut_off


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


async def _start_replicas(cfg: ClusterConfig, work: Path, per_host: int, hosts: list[str]) -> float:
    """`per_host` replicas of the service `r` on each of `hosts`; returns the seconds it took."""
    service = cfg.services[0]
    keys = [str(work / "fleet" / "client_key")]
    fleet = Fleet(cfg, known_hosts=str(work / "fleet" / "known_hosts"), client_keys=keys)
    await fleet.start()
    started = time.monotonic()
    try:
        if await _wait_for(fleet, hosts, {HostState.UP}, 120.0) is None:
            raise SystemExit("the main fleet did not come up to start replicas")
        gate = asyncio.Semaphore(64)

        async def one(host: str, index: int) -> None:
            async with gate:
                await fleet.start_replica(host, service, index, "bench")

        await asyncio.gather(*(one(h, i * per_host + k) for i, h in enumerate(hosts) for k in range(per_host)))
        return time.monotonic() - started
    finally:
        await fleet.close()


def _with_replicas(cfg: ClusterConfig, count: int, check: HealthCheck | None) -> ClusterConfig:
    service = Service("r", "exec sleep 1000000", count, Resources(10, 1 << 20), check=check)
    return dataclasses.replace(cfg, services=(service,))


async def _measure(cfg: ClusterConfig, work: Path, seconds: float, procs: dict, *, fault: bool = True) -> dict:
    me = psutil.Process()
    frames = 0
    # Two hosts served in this process, faulted through DemoFleet's own API (what tests and the
    # console's demo keys use); they add two frames a second to the client's load, next to nothing.
    in_process = DemoFleet(_timing_only(cfg, IN_PROCESS, max(h.port for h in cfg.hosts) + 1), work / "in-process")
    await in_process.start()
    cfg = dataclasses.replace(cfg, hosts=(*cfg.hosts, *in_process.config.hosts))
    served = ("fleet", *VICTIMS)
    known = work / "known_hosts"
    files = [*(work / n / "known_hosts" for n in served), Path(in_process.known_hosts)]
    known.write_text("".join(f.read_text() for f in files))
    keys = [*(str(work / n / "client_key") for n in served), in_process.client_key]

    def on_change(o: HostObservation) -> None:
        nonlocal frames
        if o.state is HostState.UP and o.last_seen == o.at:
            frames += 1

    rss_before = me.memory_info().rss
    fleet = Fleet(cfg, known_hosts=str(known), client_keys=keys, on_change=on_change)
    await fleet.start()
    names = [h.name for h in cfg.hosts]
    connect_s = await _wait_for(fleet, names, {HostState.UP}, 120.0)
    bad = {n: (o.state.value, o.error) for n, o in fleet.observations().items() if o.state is not HostState.UP}
    # On a loaded 2-core machine a few of 500 handshakes time out; the window measures those that came up
    # (hosts_up says how many), and cpu_s_per_100_polls compares windows whatever their frame counts.
    if connect_s is None and len(bad) > len(names) // 50:
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
    checked = sum(1 for o in fleet.observations().values() for r in o.replicas if r.health is not None)
    if not fault:  # another measurement follows on the same hosts
        await fleet.close()
        await in_process.stop()
        return {"hosts": len(names), "hosts_up": len(names) - len(bad), "seconds": round(wall1 - wall0, 1),
                "polls": polls, "replicas_with_health": checked, "cpu_core_fraction": round(cpu / (wall1 - wall0), 3),
                "cpu_s_per_100_polls": round(100 * cpu / polls, 4) if polls else None}  # fmt: skip

    os.kill(procs["victim-dead"].pid, signal.SIGKILL)
    os.kill(procs["victim-hung"].pid, signal.SIGSTOP)
    await in_process.crash(IN_PROCESS[0])
    await in_process.cut_off(IN_PROCESS[1])
    waits = await asyncio.gather(
        *(_wait_for(fleet, [name], {HostState.DOWN}, 30.0) for name in (*VICTIMS, *IN_PROCESS))
    )
    os.kill(procs["victim-hung"].pid, signal.SIGCONT)
    await fleet.close()
    await in_process.stop()
    return {
        "hosts": len(names),
        "hosts_up": len(names) - len(bad),
        "seconds": round(wall1 - wall0, 1),
        "replicas_with_health": checked,
        "poll_interval_s": cfg.poll_interval,
        "failure_timeout_s": cfg.failure_timeout,
        "connect_all_s": round(connect_s, 2) if connect_s is not None else None,
        "p50_staleness_s": round(_percentile(staleness, 0.50), 3),
        "p99_staleness_s": round(_percentile(staleness, 0.99), 3),
        "max_staleness_s": round(max(staleness), 3),
        "polls": polls,
        "cpu_core_fraction": round(cpu / (wall1 - wall0), 3),
        "cpu_s_per_100_polls": round(100 * cpu / polls, 4) if polls else None,
        "mem_per_host_mib": round((rss_after - rss_before) / len(names) / 2**20, 3),
        "detect_dead_s": _rounded(waits[0]),
        "detect_hung_s": _rounded(waits[1]),
        "detect_crash_s": _rounded(waits[2]),
        "detect_cut_off_s": _rounded(waits[3]),
    }


def _rounded(seconds: float | None) -> float | None:
    return round(seconds, 2) if seconds is not None else None


def _timing_only(timing: ClusterConfig, names: tuple[str, ...], port: int) -> ClusterConfig:
    hosts = tuple(
        Host(n, "127.0.0.1", port + i, capacity=Resources(4000, 8 << 30), demo=True) for i, n in enumerate(names)
    )
    return dataclasses.replace(timing, name="in-process", hosts=hosts, services=(), demo=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=500, help="demo hosts in all (at least 5)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the measurement window")
    parser.add_argument("--base-port", type=int, default=15000, help="first host port (below replica ports)")
    parser.add_argument("-c", "--config", default=str(ROOT / "cluster.toml"), help="poll and failure timing from here")
    parser.add_argument("--replicas", type=int, default=0, help="replicas (sleep processes) per host of the main fleet")
    parser.add_argument(
        "--checks", choices=("off", "on", "both"), default="off",
        help="a tcp check on every replica; both: measure without, then with (needs --replicas)",
    )  # fmt: skip
    parser.add_argument("--check-interval", type=float, default=5.0, help="the check's interval in seconds")
    args = parser.parse_args()
    if args.checks != "off" and args.replicas < 1:
        raise SystemExit("--checks needs --replicas N (checks run on replicas)")
    least = 1 + len(VICTIMS) + len(IN_PROCESS)
    if args.hosts < least:
        raise SystemExit(f"--hosts must be at least {least} (the fleet and {least - 1} hosts to fault)")
    timing = config_file.load(args.config)
    ports = range(args.base_port, args.base_port + args.hosts)
    taken = [p for p in ports if not _free(p)]
    if taken:
        raise SystemExit(f"ports {taken[:5]} are in use; pick another --base-port")
    with tempfile.TemporaryDirectory(prefix="lm-fleet-bench-") as tmp:
        work = Path(tmp)
        names = ("fleet", *VICTIMS)
        main_hosts = args.hosts - len(VICTIMS) - len(IN_PROCESS)
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
            if args.replicas < 1:
                result = asyncio.run(_measure(cfg, work, args.seconds, procs))
            else:
                main_names = [h.name for h in served.hosts]
                count = args.replicas * len(main_names)
                # tcp on a port every demo host sees listening (they share this machine's sockets): healthy
                check = HealthCheck(CheckKind.TCP, port=args.base_port, interval=args.check_interval,
                                    timeout=min(2.0, args.check_interval), grace=0.0)  # fmt: skip
                plain = _with_replicas(cfg, count, None)
                took = asyncio.run(_start_replicas(plain, work, args.replicas, main_names))
                modes = {"off": [None], "on": [check], "both": [None, check]}[args.checks]
                runs = [
                    asyncio.run(
                        _measure(_with_replicas(cfg, count, c), work, args.seconds, procs, fault=i == len(modes) - 1)
                    )
                    for i, c in enumerate(modes)
                ]
                result = {"replicas": count, "replicas_started_s": round(took, 1),
                          "check_interval_s": args.check_interval, **runs[-1]}  # fmt: skip
                if len(runs) == 2:
                    result["without_checks"] = runs[0]
                    for key, name in (("cpu_core_fraction", "check_cpu_increase_pct"),
                                      ("cpu_s_per_100_polls", "check_cpu_per_poll_increase_pct")):  # fmt: skip
                        without, with_ = runs[0][key], runs[1][key]
                        result[name] = round(100 * (with_ - without) / without, 1) if without and with_ else None
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
