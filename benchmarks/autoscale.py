"""Autoscale benchmark: load that flaps for 10 minutes on the embedded demo fleet, and how often replicas follow.

    flock /tmp/loadmaster-bench.lock python benchmarks/autoscale.py --minutes 10 --period 30

An auto-applying engine on demo hosts runs `web` under `demo-load web -- sleep …` with
`autoscale = { min, max, cpu_target, window, scale_down_window }`, and the autoscaler beside it writes
its decisions to the cluster file, as `loadmaster run` does. The load is a total demand (in replicas'
worth of requested cpu) that alternates every period/2 between --high and --low; each second the
benchmark spreads it over the replicas that run (`demoload.write`, as `loadmaster demo --load` sets it),
so more replicas each burn less, as real load does. The cpu is real, measured from /proc by the probes.

The measurement window is short (--window, 10 s) so the rule sees the flapping, not an average of it;
the scale-down stabilization window (--scale-down-window, 5 min, the HPA default) is what must hold
replicas steady. Target (issue 14): no more than 2 scale-downs over 10 minutes of period-30 s flapping.
first_up_s: the first scale-up decision after the load first rises (bound: 2 polls + the window).

Prints a JSON summary on its last line: scale_downs, scale_ups, blocked, replicas_seen, decisions, …
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import config as config_io
from core.autoscale import Autoscaler, measured_ratio
from core.engine.engine import Engine
from core.engine.events import EventKind
from core.engine.journal import Journal
from core.hostlink.demo import DemoFleet
from core.hostlink.fleet import Fleet
from tests.sshd import free_port

CLUSTER = """\
[cluster]
name = "autoscale-bench"
demo = true
poll_interval = "1s"
failure_timeout = "3s"

[policy]
auto_apply = true
cooldown = 0
settle = 0

{hosts}
[[services]]
name = "web"
command = "demo-load web -- sleep 100000"
replicas = {start}
cpu = "{cpu}m"
mem = "16MiB"
autoscale = {{ min = {min}, max = {max}, cpu_target = {target}, window = "{window}s", scale_down_window = "{down}s" }}
"""


def cluster_text(args: argparse.Namespace) -> str:
    hosts = "".join(
        f'[[hosts]]\nname = "h{i}"\naddress = "127.0.0.1"\nport = {free_port("127.0.0.1")}\n'
        'capacity = { cpu = 4, mem = "4GiB" }\n\n'
        for i in range(1, args.hosts + 1)
    )
    return CLUSTER.format(hosts=hosts, start=args.start, cpu=args.cpu, min=args.min, max=args.max,
                          target=args.target, window=args.window, down=args.scale_down_window)  # fmt: skip


Demand = Callable[[float], float]  # seconds since the start → demand, in replicas' worth of requested cpu


async def drive(
    args: argparse.Namespace, workdir: Path, demand_at: Demand, seconds: float, stop: Any
) -> dict[str, Any]:
    """Run the demo fleet, engine and autoscaler; spread `demand_at(t)` over the running replicas each second
    until `seconds` have passed or `stop(t, decisions, replicas running)` says so."""
    path = workdir / "cluster.toml"
    path.write_text(cluster_text(args), encoding="utf-8")
    config = config_io.load(path)
    demo = DemoFleet(config, workdir / "demo")
    await demo.start()
    fleet = Fleet(config, known_hosts=demo.known_hosts, client_keys=[demo.client_key])
    engine = Engine(config, fleet, Journal(workdir / "journal.db"), workers=1, demo=demo)
    scaler = Autoscaler(engine, path, time.time)
    running: list[tuple[float, int]] = []
    task: asyncio.Task[None] | None = None
    load1 = os.getloadavg()[0]
    decisions: list[dict[str, Any]] = []
    try:
        await engine.start(first_contact_timeout=15)
        while sum(1 for r in engine.snapshot().running() if r.service == "web") < args.start:
            await asyncio.sleep(0.2)
        task = asyncio.create_task(scaler.run(config.poll_interval))
        start = time.time()
        while (t := time.time() - start) < seconds:
            demand = demand_at(t)
            replicas = sum(1 for r in engine.snapshot().running() if r.service == "web")
            running.append((round(t, 1), replicas))
            if args.verbose:
                snap = engine.snapshot()
                ratio = measured_ratio(snap, snap.config.service("web"))
                print(f"{t:6.1f}s demand {demand} replicas {replicas} ratio {ratio}", file=sys.stderr)
            share = min(demand / max(replicas, 1), 1000 / args.cpu)  # one replica burns at most one core
            demo.set_load(engine.snapshot().config, {"web": round(share, 4)})
            decisions = [
                {"t": round(e.at - start, 1), "kind": e.kind.value, "from": e.data.get("from"),
                 "to": e.data.get("to"), "ratio": e.data.get("ratio")}
                for e in engine.recent_events() if e.kind.value.startswith("autoscale.")
            ]  # fmt: skip
            if stop(t, decisions, replicas):
                break
            await asyncio.sleep(1.0)
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await engine.close(grace=10)
        await demo.stop()
    return {
        "decisions": decisions,
        "running": running,
        "poll_s": config.poll_interval,
        "context": {"cpus": os.cpu_count(), "load1_at_start": round(load1, 2),
                    "load1_at_end": round(os.getloadavg()[0], 2)},
    }  # fmt: skip


def settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "cpu_request_m": args.cpu,
        "cpu_target": args.target,
        "window_s": args.window,
        "scale_down_window_s": args.scale_down_window,
        "min": args.min,
        "max": args.max,
        "start_replicas": args.start,
    }


async def flapping(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """--high and --low demand, alternating every period/2, for --minutes."""

    def demand_at(t: float) -> float:
        return args.high if int(t // (args.period / 2)) % 2 == 0 else args.low

    got = await drive(args, workdir, demand_at, args.minutes * 60, lambda t, d, n: False)
    decisions = got["decisions"]
    ups = [d for d in decisions if d["kind"] == EventKind.AUTOSCALE_UP.value]
    downs = [d for d in decisions if d["kind"] == EventKind.AUTOSCALE_DOWN.value]
    counts = [n for _, n in got["running"]]
    return {
        "mode": "flapping",
        "minutes": args.minutes,
        "period_s": args.period,
        "demand_high": args.high,
        "demand_low": args.low,
        **settings(args),
        "scale_ups": len(ups),
        "scale_downs": len(downs),
        "blocked": sum(d["kind"] == EventKind.AUTOSCALE_BLOCKED.value for d in decisions),
        "first_up_s": ups[0]["t"] if ups else None,
        "first_up_bound_s": 2 * got["poll_s"] + args.window,
        "replicas_running_min": min(counts, default=0),
        "replicas_running_max": max(counts, default=0),
        "replicas_final": counts[-1] if counts else 0,
        "decisions": decisions,
        "scale_downs_ok": len(downs) <= 2,
        "context": got["context"],
    }


async def step(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Each replica at --step-low of its request (as demand over the starting replicas) for a window, then
    --step-high until the scale-up has placed its replicas and settled (no scale-up for a window), then
    --step-low until the first scale-down. placed_after_rise_s: the last scale-up's replicas all run."""
    low, high = args.step_low * args.start, args.step_high * args.start
    rise = args.window + 10.0  # a whole window of low load is measured first
    marks: dict[str, float] = {}

    def demand_at(t: float) -> float:
        return high if rise <= t < marks.get("drop", float("inf")) else low

    def stop(t: float, decisions: list[dict[str, Any]], replicas: int) -> bool:
        ups = [d for d in decisions if d["kind"] == EventKind.AUTOSCALE_UP.value and d["t"] >= rise]
        if ups and "drop" not in marks:
            marks.setdefault("up", ups[0]["t"])
            if replicas < ups[-1]["to"]:
                marks.pop("placed", None)  # (another scale-up since)
            else:
                marks.setdefault("placed", t)
                if t - ups[-1]["t"] >= args.window + 2:  # settled: no scale-up for a window
                    marks["drop"] = t + 1  # the load drops at the next second
        drop = marks.get("drop", float("inf"))
        return any(d["kind"] == EventKind.AUTOSCALE_DOWN.value and d["t"] >= drop for d in decisions)

    got = await drive(args, workdir, demand_at, rise + args.scale_down_window + 600, stop)
    decisions = got["decisions"]
    drop = marks.get("drop", float("inf"))
    downs = [d for d in decisions if d["kind"] == EventKind.AUTOSCALE_DOWN.value and d["t"] >= drop]
    early = [d for d in decisions if d["kind"] == EventKind.AUTOSCALE_DOWN.value and d["t"] < drop]
    bound = 2 * got["poll_s"] + args.window
    up_after = round(marks["up"] - rise, 1) if "up" in marks else None
    down_after = round(downs[0]["t"] - marks["drop"], 1) if downs else None
    return {
        "mode": "step",
        "load_low": args.step_low,
        "load_high": args.step_high,
        **settings(args),
        "first_up_after_rise_s": up_after,
        "first_up_bound_s": bound,
        "first_up_ok": up_after is not None and up_after <= bound,
        "placed_after_rise_s": round(marks["placed"] - rise, 1) if "placed" in marks else None,
        "first_down_after_drop_s": down_after,
        "first_down_ok": down_after is not None and down_after >= args.scale_down_window - got["poll_s"],
        "downs_before_drop": len(early),
        "decisions": decisions,
        "context": got["context"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--period", type=float, default=30.0, help="seconds of one high + one low half")
    parser.add_argument("--high", type=float, default=3.6, help="demand while high, in replicas' worth of request")
    parser.add_argument("--low", type=float, default=0.8, help="demand while low")
    parser.add_argument("--step", action="store_true", help="the step run instead: low, high, low again")
    parser.add_argument("--step-low", type=float, default=0.2, help="--step: load per starting replica, low")
    parser.add_argument("--step-high", type=float, default=0.9, help="--step: load per starting replica, high")
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--start", type=int, default=4, help="replicas at the start")
    parser.add_argument("--cpu", type=int, default=100, help="each replica's cpu request, millicores")
    parser.add_argument("--min", type=int, default=2)
    parser.add_argument("--max", type=int, default=10)
    parser.add_argument("--target", type=float, default=0.5)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--scale-down-window", type=float, default=300.0)
    parser.add_argument("--verbose", action="store_true", help="a line per second on stderr")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lm-autoscale-bench-") as tmp:
        result = asyncio.run((step if args.step else flapping)(args, Path(tmp)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
