"""`loadmaster status [--json]`: hosts and services once, for scripts and cron."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from console.commands.controllers import controllers_document, render_controllers
from console.commands.options import add_config, load_config
from console.commands.runtime import demo_hint, open_engine
from core.engine.api import Snapshot
from core.engine.planfile import utilization
from core.model import HostState, ReplicaId
from core.sanitize import printable
from core.units import human_cpu, human_size


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="print hosts and services once")
    add_config(p)
    p.add_argument("--json", action="store_true", help="one JSON document instead of tables")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    snap = asyncio.run(_snapshot(args))
    doc = status_document(snap)
    if snap.config.store.clustered:  # every daemon, leader and standbys, from the store
        doc["cluster_controllers"] = asyncio.run(controllers_document(snap.config))
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(render(doc))
        hint = demo_hint(snap)
        if hint:
            print(hint)
    why = unhealthy(doc)
    if why:  # a script or cron sees the exit status; a person sees why
        print(f"loadmaster status: exit 1: {why}", file=sys.stderr)
    return 1 if why else 0


def unhealthy(doc: dict[str, Any]) -> str:
    """Why `status` exits non-zero (hosts not up, services short of their replicas), or "" when all is well."""
    down = [f"{h['name']} ({h['state']})" for h in doc["hosts"] if h["state"] != "up"]
    short = [f"{s['name']} {s['running']}/{s['desired']}" for s in doc["services"] if s["running"] < s["desired"]]
    parts = []
    if down:
        parts.append(f"{len(down)} host{'s' if len(down) != 1 else ''} not up: {', '.join(down)}")
    if short:
        parts.append(f"{len(short)} service{'s' if len(short) != 1 else ''} short of replicas: {', '.join(short)}")
    return printable("; ".join(parts))


async def _snapshot(args: argparse.Namespace) -> Snapshot:
    cfg = load_config(args)
    async with open_engine(cfg, read_only=True) as engine:
        # cpu% needs two frames from a host; wait for them, but not for silent hosts
        deadline = time.monotonic() + 2 * cfg.poll_interval + 0.5
        while time.monotonic() < deadline and any(
            o.state is HostState.UP and o.cpu_percent is None for o in engine.snapshot().hosts.values()
        ):
            await asyncio.sleep(0.1)
        return engine.snapshot()


def status_document(snap: Snapshot) -> dict[str, Any]:
    cfg = snap.config
    requested = utilization(cfg, snap.placement)
    hosts = []
    for h in cfg.hosts:
        obs = snap.hosts[h.name]
        cap = h.usable(obs.capacity)
        on = snap.placement.on_host(h.name)
        hosts.append({
            "name": h.name,
            "state": obs.state.value,
            "labels": dict(h.labels),
            "capacity": cap.as_dict(),
            "requested": requested[h.name].as_dict(),
            "cpu_percent": obs.cpu_percent,
            "mem_available": obs.mem_available,
            "replicas": [str(r) for r in on],
            # per replica: what its service's check says (absent without a check)
            "health": {str(r.replica): r.health.value for r in obs.replicas if r.running and r.health is not None},
            "warnings": list(obs.warnings),
            "error": obs.error,
            "enforcement": obs.enforcement,
        })  # fmt: skip
    services = []
    for s in cfg.services:
        where = snap.placement.assignments
        running = [r for r in s.replica_ids() if r in where and _up(snap, where[r])]
        services.append({
            "name": s.name,
            "desired": s.replicas,
            "running": len(running),
            # min_healthy counts these: passing the check (without a check: running)
            "healthy": sum(1 for r in running if _healthy(snap, r, where[r])),
            "hosts": sorted({snap.placement.assignments[r] for r in running}),
        })  # fmt: skip
    foreign = [{"replica": str(r.replica), "host": r.host, "pid": r.pid} for r in snap.foreign]
    return {"cluster": cfg.name, "at": round(snap.at, 3), "controller": _controller(snap), "hosts": hosts,
            "services": services, "foreign": foreign,
            "retrying": [{"replica": str(r), "state": why} for r, why in sorted(snap.retrying.items())],
            "rollouts_halted": [{"service": n, "why": w} for n, w in sorted(snap.rollouts_halted.items())]}  # fmt: skip


def _controller(snap: Snapshot) -> dict[str, Any] | None:
    """Who holds the cluster, as the hosts' fences say (status itself never claims it)."""
    c = snap.controller
    if c is None or c.holder is None:
        return None
    age = c.holder_age
    return {
        "holder": c.holder.holder,
        "epoch": c.holder.epoch,
        "renewed_s_ago": None if age is None else round(age, 1),
        "live": age is not None and age < snap.config.failure_timeout,
    }


def _healthy(snap: Snapshot, replica: ReplicaId, host: str) -> bool:
    return any(r.replica == replica and r.healthy for r in snap.hosts[host].replicas)


def _up(snap: Snapshot, host: str) -> bool:
    obs = snap.hosts.get(host)
    return obs is not None and obs.state.reachable


def render(doc: dict[str, Any]) -> str:
    lines = [f"cluster {doc['cluster']}"]
    held = doc.get("controller")
    if held is None:
        lines.append("controller: none holds the cluster")
    else:
        when = "never renewed" if held["renewed_s_ago"] is None else f"renewed {held['renewed_s_ago']} s ago"
        state = "" if held["live"] else " — gone (a controller that starts takes over)"
        holder = printable(held["holder"])  # read from the hosts' fence files
        lines.append(f"controller: {holder} holds the cluster (epoch {held['epoch']}, {when}){state}")
    if "cluster_controllers" in doc:
        lines += render_controllers(doc["cluster_controllers"])
    lines.append("")
    header = f"{'HOST':<14}{'STATE':<14}{'CPU req/cap':<16}{'MEM req/cap':<22}{'CPU%':>6}  REPLICAS"
    lines.append(header)
    for h in doc["hosts"]:
        cpu = f"{human_cpu(h['requested']['cpu'])}/{human_cpu(h['capacity']['cpu'])}"
        mem = f"{human_size(h['requested']['mem'])}/{human_size(h['capacity']['mem'])}"
        pct = "-" if h["cpu_percent"] is None else f"{h['cpu_percent']:.0f}"
        lines.append(f"{h['name']:<14}{h['state']:<14}{cpu:<16}{mem:<22}{pct:>6}  {len(h['replicas'])}")
        if h["error"]:
            lines.append(f"{'':<14}{printable(h['error'])}")
    lines += ["", f"{'SERVICE':<14}{'RUNNING':<10}HOSTS"]
    for s in doc["services"]:
        lines.append(f"{s['name']:<14}{s['running']}/{s['desired']:<8}{', '.join(s['hosts'])}")
    if doc.get("foreign"):
        lines += ["", "foreign (running, but never started by this cluster's controllers; left alone):"]
        lines += [f"  {printable(f['replica'])} on {f['host']} (pid {f['pid']})" for f in doc["foreign"]]
    if doc.get("rollouts_halted"):
        lines += ["", "rolling updates stopped (fix the service's definition and reload to go on):"]
        lines += [f"  {r['service']}: {printable(r['why'])}" for r in doc["rollouts_halted"]]
    if doc.get("retrying"):
        lines += ["", "failed actions:"]
        lines += [f"  {printable(r['replica'])} {printable(r['state'])}" for r in doc["retrying"]]
    return "\n".join(lines)
