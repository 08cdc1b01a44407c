"""Packing quality of loadmaster's optimizer on public bin-packing instances.

    python benchmarks/packing.py --set falkenauer/u --time-limit 10 [--limit N] [--dims 3]
    python benchmarks/packing.py --set trace/alibaba_gpu_v2023 [--at T | --every-pod]

1-D sets (folders of ../shared/bench): falkenauer/u, falkenauer/t, schwerin, scholl/scholl_1,
scholl/scholl_2, scholl/scholl_3, waescher, hard28; vector sets: vbp/panigrahy (with --dims 3), ….

Each instance becomes an ordinary PlacementProblem (item sizes → services, bins → identical
hosts) and goes through `core.optimizer.solve`, the same code that places services, and
through the greedy baseline (`core.optimizer.greedy`, first-fit decreasing). One JSON line per
instance, then the summary on the last line:
`set, instances, optimal, greedy_optimal, bins_above_optimum, median_s, max_s` (+ details), and
the time to optimum: when the solver's best packing first had the known optimum's bin count
(`to_optimum_median_s` / `to_optimum_max_s` over the instances that reached it; the solver may go
on after that, trying to prove it).
For a vbp set the summary also counts how many optima the best heuristic family in the set's
`summary_known.tsv` reached on the same instances. The trace set has no optimum: it reports
hosts used against the lower bound and against greedy.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_data import DEFAULT_ROOT, instances, read_trace, resolve_set, to_problem, trace_problem
from core.optimizer import greedy, solve

FAMILIES = ("best_IC", "best_BC", "best_MB-Pairing", "best_MB-WFD")


class FirstReach:
    """A solve progress listener: seconds until the best packing first used `optimum` bins."""

    def __init__(self, optimum: int | None) -> None:
        self.optimum, self.start = optimum, time.monotonic()
        self.at: float | None = None

    def __call__(self, hosts: int, _bound: int | None) -> None:
        if self.at is None and hosts == self.optimum:
            self.at = time.monotonic() - self.start


def run_bins(folder: Path, args: argparse.Namespace) -> dict:
    insts = instances(folder, dims=args.dims)
    if args.limit:
        insts = insts[: args.limit]
    times, optimal, greedy_optimal, above, worse, known = [], 0, 0, 0, 0, 0
    to_optimum: list[float] = []
    for inst in insts:
        problem = to_problem(inst)
        base = greedy(problem)
        clock = FirstReach(inst.optimum)
        result = solve(problem, time_limit=args.time_limit, seed=args.seed, workers=args.workers, progress=clock)
        elapsed = time.monotonic() - clock.start
        times.append(elapsed)
        assert not result.unplaced, f"{inst.name}: {len(result.unplaced)} items unplaced"
        worse += result.hosts_used > base.hosts_used
        line = {
            "instance": inst.name,
            "bins": result.hosts_used,
            "greedy": base.hosts_used,
            "lower_bound": result.lower_bound,
            "optimum": inst.optimum,
            "status": result.status.value,
            "s": round(elapsed, 3),
        }
        if result.hosts_used == inst.optimum:
            line["to_optimum_s"] = round(elapsed if clock.at is None else clock.at, 3)
            to_optimum.append(line["to_optimum_s"])
        if inst.optimum is not None:
            known += 1
            optimal += result.hosts_used == inst.optimum
            greedy_optimal += base.hosts_used == inst.optimum
            above += result.hosts_used - inst.optimum
        print(json.dumps(line), flush=True)
    summary = {
        "set": args.set,
        "instances": len(insts),
        "with_optimum": known,
        "optimal": optimal,
        "greedy_optimal": greedy_optimal,
        "bins_above_optimum": above,
        "worse_than_greedy": worse,
        "median_s": round(statistics.median(times), 3) if times else 0.0,
        "max_s": round(max(times), 3) if times else 0.0,
        "to_optimum_median_s": round(statistics.median(to_optimum), 3) if to_optimum else None,
        "to_optimum_max_s": round(max(to_optimum), 3) if to_optimum else None,
        "time_limit": args.time_limit,
        "workers": args.workers,
    }
    families = _families(folder, [i.name for i in insts])
    if families:
        summary["heuristic_optimal"] = families
    return summary


def _families(folder: Path, names: list[str]) -> dict[str, int]:
    """Per heuristic family of summary_known.tsv, how many of `names` it solved to the known optimum."""
    file = next(
        (d / "summary_known.tsv" for d in (folder, *folder.parents) if (d / "summary_known.tsv").exists()), None
    )
    if file is None:
        return {}
    wanted = set(names)
    counts = dict.fromkeys(FAMILIES, 0)
    with file.open() as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if row["instance_name"] in wanted and row["OPT"] != "-1":
                for f in FAMILIES:
                    counts[f] += row[f] == row["OPT"]
    return counts


def run_trace(folder: Path, args: argparse.Namespace) -> dict:
    trace = read_trace(folder, args.at, every_pod=args.every_pod)
    problem = trace_problem(trace)
    base = greedy(problem)
    t0 = time.monotonic()
    result = solve(problem, time_limit=args.time_limit, seed=args.seed, workers=args.workers)
    elapsed = time.monotonic() - t0
    return {
        "set": args.set,
        "instances": 1,
        "at": trace.at,
        "hosts": len(trace.hosts),
        "pods": len(trace.pods),
        "pod_shapes": len(problem.services),
        "hosts_used": result.hosts_used,
        "lower_bound": result.lower_bound,  # for the pods placed (all, unless the fleet is short)
        "greedy_hosts": base.hosts_used,
        "unplaced": len(result.unplaced),
        "greedy_unplaced": len(base.unplaced),
        "status": result.status.value,
        "optimal": None,
        "greedy_optimal": None,
        "bins_above_optimum": None,
        "median_s": round(elapsed, 3),
        "max_s": round(elapsed, 3),
        "time_limit": args.time_limit,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", required=True, help="folder of instances, or a path under --root")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="benchmark data (default ../shared/bench)")
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds per instance")
    parser.add_argument("--limit", type=int, default=0, help="only the first N instances (by name)")
    parser.add_argument("--dims", type=int, default=None, help="vbp only: keep instances with this many dimensions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--at", type=int, default=None, help="trace only: time of the snapshot (default busiest)")
    parser.add_argument("--every-pod", action="store_true", help="trace only: pack all pods of the list at once")
    args = parser.parse_args(argv)
    if args.time_limit <= 0:
        parser.error("--time-limit must be more than 0 seconds")
    if args.limit < 0:
        parser.error("--limit must be 0 (all) or more")
    folder = resolve_set(args.set, args.root)
    is_trace = (folder / "openb_node_list_all_node.csv").exists()
    summary = run_trace(folder, args) if is_trace else run_bins(folder, args)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
