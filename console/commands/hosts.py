"""`loadmaster hosts [--json]`: connect to every host once; state, capacity, usage, replicas."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import replace
from typing import Any

from console.commands.options import add_config, load_config
from console.commands.runtime import fleet_for
from core.engine.duplicates import duplicate_hosts
from core.engine.ended import signal_name
from core.model import ClusterConfig, HostObservation, HostState, ReplicaStatus
from core.sanitize import printable
from core.units import human_cpu, human_size


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "hosts",
        help="connect to every host once and print state, capacity, usage and replicas",
        description="Connect to every host in the cluster file once and print its state, capacity, usage "
        "and replicas. Exits 1 when a host is not up.",
    )
    add_config(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--wait", type=float, metavar="SECONDS", help="give up on silent hosts after this long")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    wait = args.wait if args.wait is not None else cfg.defaults.connect_timeout + 2 * cfg.poll_interval
    observations, notices = asyncio.run(_observe(cfg, wait))
    duplicates = duplicate_hosts(cfg, observations)
    for name, why in duplicates.items():  # another entry's machine: its replicas are that host's, shown there
        observations[name] = replace(observations[name], replicas=(), error=f"excluded: {why}")
    if args.json:
        print(json.dumps([_as_json(o) for o in observations.values()], indent=2))
    else:
        for notice in notices:
            print(f"note: {printable(notice)}")
        _print_table(observations)
    return 0 if all(o.state is HostState.UP for o in observations.values()) and not duplicates else 1


async def _observe(cfg: ClusterConfig, wait: float) -> tuple[dict[str, HostObservation], list[str]]:
    """Connect, then wait until each host has answered twice (cpu% needs two frames) or failed."""
    fleet = fleet_for(cfg)
    fleet.log_notices = False  # printed once, as `note:` lines, by `run`
    await fleet.start()
    deadline = time.monotonic() + wait
    try:
        while time.monotonic() < deadline:
            if all(_settled(o) for o in fleet.observations().values()):
                break
            await asyncio.sleep(0.1)
        return dict(fleet.observations()), list(fleet.notices)
    finally:
        await fleet.close()


def _settled(o: HostObservation) -> bool:
    if o.state is HostState.UP:
        return o.cpu_percent is not None
    return o.state is not HostState.UNKNOWN


def _as_json(o: HostObservation) -> dict[str, Any]:
    return {
        "host": o.host,
        "state": o.state.value,
        "error": o.error,
        "capacity": o.capacity.as_dict() if o.capacity else None,
        "cpu_percent": o.cpu_percent,
        "mem_total": o.mem_total,
        "mem_available": o.mem_available,
        "load1": o.load1,
        "ncpu": o.ncpu,
        "uptime": o.uptime,
        "last_seen": o.last_seen,
        "enforcement": o.enforcement,
        # which machine and state directory its probe runs with: two hosts with one boot_id and directory are one
        "identity": {
            "machine_id": o.identity.machine_id,
            "boot_id": o.identity.boot_id,
            "directory": o.identity.directory,
            "state_dir": o.identity.state_dir,
        }
        if o.identity
        else None,
        "replicas": [
            {
                "replica": str(r.replica),
                "pid": r.pid,
                "running": r.running,
                "generation": r.generation,
                "cpu_percent": r.cpu_percent,
                "rss": r.rss,
                "oom_killed": r.oom_killed,
                "exit_code": r.ended_by[0],  # a replica that ended: its exit code, or the signal that ended it
                "signal": signal_name(r.ended_by[1]) if r.ended_by[1] is not None else None,
            }
            for r in o.replicas
        ],
    }


def _print_table(observations: dict[str, HostObservation]) -> None:
    rows = [("HOST", "STATE", "CPU", "CPU%", "MEM", "MEM USED", "LIMITS", "REPLICAS")]
    for o in observations.values():
        cap = o.capacity
        used = o.mem_total - o.mem_available if o.mem_total is not None and o.mem_available is not None else None
        running = [
            printable(r.replica) + ("" if r.running else " (oom-killed)" if r.oom_killed else f" ({_ended(r)})")
            for r in o.replicas
        ]
        rows.append(
            (
                o.host,
                o.state.value,
                human_cpu(cap.cpu) if cap else "-",
                f"{o.cpu_percent:.0f}%" if o.cpu_percent is not None else "-",
                human_size(cap.mem) if cap else "-",
                human_size(used) if used is not None else "-",
                o.enforcement or "-",
                ", ".join(running) if o.state is HostState.UP and not o.error else printable(o.error or ""),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    unlimited = [o.host for o in observations.values() if o.enforcement == "none"]
    if unlimited:
        print(f"warning: no cpu or memory limits can be enforced on {', '.join(unlimited)} (LIMITS none)")


def _ended(r: ReplicaStatus) -> str:
    code, number = r.ended_by
    return f"exit {code}" if code is not None else signal_name(number) if number is not None else "exited"
