"""Optimizer speed and quality on a seeded synthetic cluster.

    python benchmarks/scale.py --hosts 1000 --replicas 10000 --seed 1 [--time-limit 25]
    python benchmarks/scale.py --hosts 1000 --replicas 10000 --seeds 1-10

Heterogeneous hosts (four shapes) in three zones, half with ssd disks; services with mixed
sizes, priorities and constraints (max_per_host, spread over zones, require ssd, avoid).
Prints one JSON summary line: hosts, replicas, first_feasible_s (the greedy placement that
`solve` starts from), final_s, hosts_used, lower_bound, greedy_hosts, failover_one_ms (median
over up to 20 hosts; max in failover_one_max_ms), failover_all_s (one plan per host and per zone).
With --seeds A-B, one such line per seed, then a last line with the median and max of above_bound_pct and
final_s over the seeds and how many ended worse than greedy (more hosts, or more replicas unplaced).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.model import HostState, Placement, Resources, Service, Strategy
from core.optimizer import (
    HostSpec,
    PlacementProblem,
    failover_for,
    failover_plans,
    greedy,
    lower_bound,
    solve,
    summarize,
)

GIB = 2**30
SHAPES = ((8_000, 32 * GIB), (16_000, 64 * GIB), (32_000, 128 * GIB), (64_000, 256 * GIB))
CPUS = (250, 500, 1_000, 1_500, 2_000, 4_000)
MEMS = (GIB // 4, GIB // 2, GIB, 2 * GIB, 3 * GIB, 4 * GIB, 8 * GIB)


def synthetic(n_hosts: int, n_replicas: int, seed: int) -> PlacementProblem:
    rng = random.Random(seed)
    hosts = tuple(
        HostSpec(
            f"host-{i:04d}",
            Resources(*rng.choice(SHAPES)),
            {"zone": f"z{i % 3}", "disk": "ssd" if rng.random() < 0.5 else "hdd"},
            HostState.UP,
        )
        for i in range(n_hosts)
    )
    capacity_cpu = sum(h.capacity.cpu for h in hosts)
    n_services = max(8, n_replicas // 250)
    # split the replicas over the services, then scale sizes so the fleet is about 55% full
    cuts = sorted(rng.sample(range(1, n_replicas), n_services - 1))
    counts = [b - a for a, b in zip([0, *cuts], [*cuts, n_replicas], strict=True)]
    shapes = [(rng.choice(CPUS), rng.choice(MEMS)) for _ in range(n_services)]
    demand = sum(c * cpu for c, (cpu, _) in zip(counts, shapes, strict=True))
    scale = 0.55 * capacity_cpu / demand
    services = []
    for i, (cpu, mem) in enumerate(shapes):
        count = counts[i]
        kind = i % 10
        max_per_host = None
        spread = None
        require: dict[str, str] = {}
        avoid: tuple[str, ...] = ()
        if kind in (0, 1):
            max_per_host = rng.choice((1, 2, 3))
            spill = max(0, count - max_per_host * n_hosts // 3)
            count -= spill
            counts[i + 2] += spill  # kinds 2-9 have no per-host limit; keeps the replica total exact
        if kind in (2, 3, 4):
            spread = "zone"
        if kind == 5:
            require = {"disk": "ssd"}
        if kind == 6 and i >= 1:
            avoid = (f"svc-{i - 1:03d}",)
        services.append(
            Service(
                f"svc-{i:03d}",
                "true",
                count,
                Resources(max(50, int(cpu * scale) // 50 * 50), max(GIB // 8, int(mem * scale) // 2**20 * 2**20)),
                max_per_host=max_per_host,
                spread_over=spread,
                require=require,
                avoid=avoid,
                priority=rng.choice((0, 10, 100)),
            )
        )
    return PlacementProblem(hosts, tuple(services), Placement(), Strategy.BINPACK)


def seeds_of(text: str) -> list[int]:
    first, _, last = text.partition("-")
    try:
        lo, hi = int(first), int(last or first)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds takes A-B or A (whole numbers), not {text!r}") from None
    if hi < lo:
        raise argparse.ArgumentTypeError(f"--seeds {text}: the last seed is below the first")
    return list(range(lo, hi + 1))


def run(args: argparse.Namespace, seed: int) -> dict[str, object]:
    problem = synthetic(args.hosts, args.replicas, seed)
    replicas = sum(s.replicas for s in problem.services)

    t0 = time.monotonic()
    base = greedy(problem)
    first_feasible = time.monotonic() - t0
    t0 = time.monotonic()
    result = solve(problem, time_limit=args.time_limit, seed=seed, workers=args.workers)
    final = time.monotonic() - t0
    bound = max(result.lower_bound, lower_bound(problem))

    one = []
    for name in [h.name for h in problem.hosts][:: max(1, args.hosts // 20)][:20]:
        t0 = time.monotonic()
        failover_for(problem, result.placement, [name])
        one.append((time.monotonic() - t0) * 1000)
    t0 = time.monotonic()
    plans = failover_plans(problem, result.placement, labels=("zone",))
    all_s = time.monotonic() - t0
    safety = summarize(plans)
    return {
        "hosts": args.hosts,
        "replicas": replicas,
        "services": len(problem.services),
        "seed": seed,
        "first_feasible_s": round(first_feasible, 3),
        "final_s": round(final, 3),
        "hosts_used": result.hosts_used,
        "lower_bound": bound,
        "above_bound_pct": round(100 * (result.hosts_used - bound) / bound, 2) if bound else 0.0,
        "greedy_hosts": base.hosts_used,
        "status": result.status.value,
        "unplaced": len(result.unplaced),
        "greedy_unplaced": len(base.unplaced),
        "failover_one_ms": round(statistics.median(one), 1),
        "failover_one_max_ms": round(max(one), 1),
        "failover_all_s": round(all_s, 3),
        "failover_plans": len(plans),
        "n_plus_one": safety.n_plus_one,
        "zone_safe": safety.label_safe,
    }


def worse_than_greedy(line: dict[str, object]) -> bool:
    unplaced, greedy_unplaced = int(str(line["unplaced"])), int(str(line["greedy_unplaced"]))
    hosts, greedy_hosts = int(str(line["hosts_used"])), int(str(line["greedy_hosts"]))
    return unplaced > greedy_unplaced or (unplaced == greedy_unplaced and hosts > greedy_hosts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--replicas", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", type=seeds_of, help="A-B: every seed from A to B, and a summary line")
    parser.add_argument("--time-limit", type=float, default=25.0, help="solver budget (the target is final < 30 s)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.hosts < 1:
        parser.error("--hosts must be 1 or more")
    if args.replicas < 16:
        parser.error("--replicas must be 16 or more (the cluster has at least 8 services)")
    if args.time_limit <= 0:
        parser.error("--time-limit must be more than 0 seconds")
    lines = []
    for seed in args.seeds or [args.seed]:
        lines.append(run(args, seed))
        print(json.dumps(lines[-1]), flush=True)
    if args.seeds:
        above = [float(str(line["above_bound_pct"])) for line in lines]
        final = [float(str(line["final_s"])) for line in lines]
        summary = {
            "hosts": args.hosts,
            "replicas": args.replicas,
            "seeds": f"{args.seeds[0]}-{args.seeds[-1]}",
            "above_bound_pct_median": round(statistics.median(above), 2),
            "above_bound_pct_max": max(above),
            "final_s_median": round(statistics.median(final), 3),
            "final_s_max": max(final),
            "worse_than_greedy": sum(worse_than_greedy(line) for line in lines),
            "at_bound": sum(a == 0 for a in above),
        }
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
