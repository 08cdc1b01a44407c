"""Engine benchmark: the real Engine over an in-memory fleet of N hosts with 10 replicas each.

    python benchmarks/engine.py --hosts 1000 [--seconds 20] [--store sqlite|etcd]

The fleet is `core.engine.memfleet.FakeFleet` with a frame pace of the poll interval (a host's observation
is rebuilt once per poll or when something on it changes, as a real link keeps its last probe frame; each
host at its own phase of the interval, built by the fleet's own task between the engine's looks, as hostlink's
links do), so what the tick time measures is the engine; the frames' building counts in the cpu and the
stalls. Everything already runs where the file wants it: the steady state.

1. start: the engine connects, and its failover plans (one per host and per zone) are made ahead;
2. steady: `--seconds` of ticks; each tick's time ON THE EVENT LOOP is summed over the tick coroutine's
   steps (work it hands to threads is not the loop's), a 10 ms heartbeat task records how late it wakes
   (the loop's worst stall), and the process's cpu time over the window gives engine_cpu_core;
3. failover: one host goes down (its replicas end with it); failover_applied_s is the time from then
   to the engine's apply.finished for that host's failover plan.

Prints a JSON summary on its last line: hosts, replicas, tick_p50_ms, tick_p99_ms (on the loop, steady
and failover ticks), engine_cpu_core, worst_stall_ms (whole run after start), failover_applied_s, and
details. Targets (issue 13): 1,000 hosts tick p99 < 20 ms, worst stall < 100 ms, cpu < 0.3 core;
5,000 hosts tick p99 < 100 ms. `--store etcd` runs the engine in clustered mode (issue 15: etcd may add
at most 10 % to the leader's cpu against the SQLite journal): a local 3-member etcd, the EtcdStore and an
election this engine wins; etcd_members_cpu_s is the members' own cpu over the whole run, for reference.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import resource
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Awaitable, Coroutine, Generator
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil

from core import config as config_io
from core.engine.engine import Engine
from core.engine.events import EventKind
from core.engine.journal import Journal
from core.engine.memfleet import FakeFleet
from core.model import Placement
from core.store.base import StateStore
from core.store.election import Election
from core.store.etcd import EtcdClient
from core.store.etcd_store import EtcdStore
from core.store.localetcd import LocalEtcd

REPLICAS_PER_HOST = 10
SERVICES = 50
T = TypeVar("T")


def cluster_text(hosts: int) -> str:
    """`hosts` hosts in 3 zones; SERVICES services share hosts × REPLICAS_PER_HOST replicas, half spread over zones."""
    lines = ['[cluster]\nname = "engine-bench"\npoll_interval = "1s"\nfailure_timeout = "3s"\n',
             '[policy]\nsolver_time_limit = "10s"\nsolver_workers = 1\n']  # fmt: skip
    for i in range(hosts):
        lines.append(
            f'[[hosts]]\nname = "node-{i:04d}"\naddress = "10.{i // 250}.{i % 250}.1"\n'
            f'labels = {{ zone = "z{i % 3}" }}\ncapacity = {{ cpu = 8, mem = "16GiB" }}\n'
        )
    total = hosts * REPLICAS_PER_HOST
    for s in range(SERVICES):
        count = total // SERVICES + (1 if s < total % SERVICES else 0)
        spread = 'spread_over = "zone"\n' if s % 2 == 0 else ""
        lines.append(
            f'[[services]]\nname = "svc-{s:02d}"\ncommand = "sleep 1000"\nreplicas = {count}\n'
            f'cpu = "300m"\nmem = "512MiB"\n{spread}'
        )
    return "\n".join(lines)


@types.coroutine
def _on_loop(coro: Coroutine[Any, Any, T], spent: list[float]) -> Generator[Any, Any, T]:
    """Drive `coro` as the event loop would, adding the time of each of its steps to spent[0]."""
    value: Any = None
    error: BaseException | None = None
    while True:
        t0 = time.perf_counter()
        try:
            step = coro.send(value) if error is None else coro.throw(error)
        except StopIteration as done:
            spent[0] += time.perf_counter() - t0
            return done.value  # type: ignore[no-any-return]
        spent[0] += time.perf_counter() - t0
        try:
            value, error = (yield step), None
        except BaseException as e:  # handed back to the coroutine, as the loop would
            value, error = None, e


async def heartbeat(lateness: list[float], stop: asyncio.Event) -> None:
    period = 0.010
    while not stop.is_set():
        t0 = time.perf_counter()
        await asyncio.sleep(period)
        lateness.append(time.perf_counter() - t0 - period)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def wait_for(what: Awaitable[object], timeout: float, name: str) -> None:
    try:
        await asyncio.wait_for(what, timeout)
    except TimeoutError:
        raise SystemExit(f"engine benchmark: {name} did not happen within {timeout:.0f} s") from None


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="lm-engine-bench-"))
    path = work / "cluster.toml"
    path.write_text(cluster_text(args.hosts), encoding="utf-8")
    config = config_io.load(path)
    fleet = FakeFleet(config, frame_interval=config.poll_interval)
    names = [h.name for h in config.hosts]
    replicas = [r for s in config.services for r in s.replica_ids()]
    fleet.run(Placement({r: names[k % len(names)] for k, r in enumerate(replicas)}))
    for records in fleet.records.values():  # started under epoch 0, which this cluster's journal trusts
        records.update({r: dataclasses.replace(status, epoch=0) for r, status in records.items()})
    etcd: LocalEtcd | None = None
    election: Election | None = None
    store: StateStore
    if args.store == "etcd":  # clustered mode: the etcd store and a (won) election, etcd on this machine
        etcd = LocalEtcd(3, root=work / "etcd")
        etcd.start()
        store = await EtcdStore(EtcdClient(etcd.endpoints), "/bench/", work / "etcd-local").open()
        election = Election(EtcdClient(etcd.endpoints), "/bench/", "bench", config.failure_timeout)
        await election.start()
        while not election.leading:
            await asyncio.sleep(0.05)
    else:
        store = Journal(work / "journal.db")
    store.trust_epoch(0, "-")
    engine = Engine(config, fleet, store, auto_apply=False, failover_auto=True, workers=1, election=election)

    ticks: list[float] = []
    tick = engine._tick

    async def timed_tick() -> None:  # the engine's loop calls this once per interval
        spent = [0.0]
        await _on_loop(tick(), spent)
        ticks.append(spent[0])

    engine._tick = timed_tick  # type: ignore[method-assign]
    t0 = time.perf_counter()
    await engine.start(first_contact_timeout=5)
    await engine.wait_failover(timeout=args.setup_timeout)
    ready_s = time.perf_counter() - t0
    if not engine._planner.failover_made_for(engine._view):
        raise SystemExit(f"engine benchmark: the failover plans were not ready within {args.setup_timeout:.0f} s")

    lateness: list[float] = []
    stop = asyncio.Event()
    beat = asyncio.create_task(heartbeat(lateness, stop))
    ticks.clear()
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    await asyncio.sleep(args.seconds)
    cpu_core = (cpu_seconds() - cpu0) / (time.perf_counter() - wall0)
    steady_ticks = list(ticks)

    # Failover: one host down, its replicas with it, until its failover plan is applied.
    events = engine.subscribe()
    victim = names[len(names) // 2]
    on_victim = len(fleet.records[victim])
    down_at = time.perf_counter()
    await fleet.crash(victim)

    async def applied() -> None:
        while True:
            event = await events.get()
            if event.kind is EventKind.APPLY_FINISHED and f"failover:{victim}" in event.message:
                return

    await wait_for(applied(), args.setup_timeout, f"the failover of {victim}")
    failover_s = time.perf_counter() - down_at
    running = fleet.running()
    moved = sum(1 for r in replicas if (hosts := running.get(r)) and victim not in hosts)
    await asyncio.sleep(2)  # the ticks after the failover (new failover plans made ahead) count too
    stop.set()
    await beat
    await engine.close(grace=5)
    etcd_cpu = None
    if etcd is not None and election is not None and isinstance(store, EtcdStore):
        etcd_cpu = sum(psutil.Process(m.process.pid).cpu_times().user + psutil.Process(m.process.pid).cpu_times().system
                       for m in etcd.members if m.process is not None)  # fmt: skip
        await election.close()
        await election.client.close()
        await store.aclose()
        etcd.close()
    return {
        "store": args.store,
        "etcd_members_cpu_s": None if etcd_cpu is None else round(etcd_cpu, 2),
        "hosts": args.hosts,
        "replicas": len(replicas),
        "tick_p50_ms": round(1000 * statistics.median(ticks), 2),
        "tick_p99_ms": round(1000 * pct(ticks, 0.99), 2),
        "tick_max_ms": round(1000 * max(ticks), 2),
        "steady_tick_p50_ms": round(1000 * statistics.median(steady_ticks), 2),
        "steady_tick_p99_ms": round(1000 * pct(steady_ticks, 0.99), 2),
        "ticks": len(ticks),
        "engine_cpu_core": round(cpu_core, 3),
        "worst_stall_ms": round(1000 * max(lateness), 1),
        "stall_p99_ms": round(1000 * pct(lateness, 0.99), 1),
        "failover_applied_s": round(failover_s, 3),
        "failover_replicas": on_victim,
        "running_after": moved,
        "start_and_plans_ready_s": round(ready_s, 2),
        "seconds": args.seconds,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0, help="steady-state window")
    parser.add_argument(
        "--store",
        choices=("sqlite", "etcd"),
        default="sqlite",
        help="the journal (default) or clustered mode: a local 3-member etcd and an election",
    )
    parser.add_argument("--setup-timeout", type=float, default=600.0, help="for the plans made ahead and the failover")
    args = parser.parse_args(argv)
    if args.hosts < 3:
        parser.error("--hosts must be 3 or more (three zones)")
    if args.seconds <= 0:
        parser.error("--seconds must be more than 0")
    print(json.dumps(asyncio.run(measure(args))), flush=True)


if __name__ == "__main__":
    main()
