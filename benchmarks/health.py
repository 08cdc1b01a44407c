"""Health benchmark: how fast a wedged replica is seen and replaced, on the embedded demo fleet.

    flock /tmp/loadmaster-bench.lock python benchmarks/health.py --trials 20

An auto-applying engine runs `web` (python3 -m http.server, an http check with `interval`, `unhealthy_after`)
on demo hosts. Each trial SIGSTOPs one healthy replica (it keeps listening and never answers) and measures
    detect  = SIGSTOP → the snapshot shows it unhealthy,
    replace = SIGSTOP → a new process for that replica runs (restarted in place);
every trial wedges another replica, so the restart backoff of one never delays the next.
false_restarts counts replicas that were never wedged but got a new process during the run.

Target (issue 11): replace ≤ unhealthy_after × interval + 2 s (median over the trials).
Prints a JSON summary on its last line: trials, detect_median_s, replace_median_s, false_restarts, target_s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.engine.engine import Engine
from core.engine.journal import Journal
from core.hostlink.demo import DemoFleet
from core.hostlink.fleet import Fleet
from core.model import (
    CheckKind,
    ClusterConfig,
    Health,
    HealthCheck,
    Host,
    ReplicaId,
    ReplicaStatus,
    Resources,
)
from core.model import Service as Svc
from tests.sshd import free_port


def statuses(engine: Engine) -> dict[ReplicaId, ReplicaStatus]:
    out = {}
    for obs in engine.snapshot().hosts.values():
        for r in obs.replicas:
            if r.running:
                out[r.replica] = r
    return out


async def until(predicate, timeout: float) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


def health_of(engine: Engine, replica: ReplicaId) -> tuple[int | None, Health | None]:
    s = statuses(engine).get(replica)
    return (s.pid, s.health) if s is not None else (None, None)


async def trial(engine: Engine, replica: ReplicaId) -> tuple[float, float]:
    """SIGSTOP the replica: (seconds until it shows unhealthy, seconds until a new process of it runs)."""
    pid, _ = health_of(engine, replica)
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    wedged_at = time.monotonic()
    try:
        await until(
            lambda: health_of(engine, replica)[1] is Health.UNHEALTHY or health_of(engine, replica)[0] != pid, 60
        )
        found = time.monotonic() - wedged_at
        await until(lambda: health_of(engine, replica)[0] not in (pid, None), 60)
        replaced = time.monotonic() - wedged_at
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    await until(lambda: health_of(engine, replica)[1] is Health.HEALTHY, 60)
    return found, replaced


async def main(args: argparse.Namespace) -> dict[str, object]:
    check = HealthCheck(
        CheckKind.HTTP, interval=args.interval, timeout=args.timeout, grace=2.0, unhealthy_after=args.after
    )
    web = Svc(
        "web", "exec python3 -m http.server {port} --bind 127.0.0.1", args.trials, Resources(50, 32 << 20), check=check
    )
    hosts = tuple(
        Host(f"h{i}", "127.0.0.1", free_port("127.0.0.1"), capacity=Resources(8000, 16 << 30), demo=True)
        for i in range(1, args.hosts + 1)
    )
    config = ClusterConfig(
        "bench-health", hosts, (web,), poll_interval=args.poll, failure_timeout=3 * args.poll, demo=True
    )
    with tempfile.TemporaryDirectory() as tmp:
        demo = DemoFleet(config, Path(tmp) / "demo")
        await demo.start()
        fleet = Fleet(demo.config, known_hosts=demo.known_hosts, client_keys=[demo.client_key])
        engine = Engine(demo.config, fleet, Journal(Path(tmp) / "j.db"), auto_apply=True, demo=demo, workers=1)
        await engine.start()
        detect, replace = [], []
        try:
            await until(
                lambda: all(
                    (s := statuses(engine).get(r)) is not None and s.health is Health.HEALTHY for r in web.replica_ids()
                ),
                120,
            )
            expected = {r: s.pid for r, s in statuses(engine).items()}
            false_restarts = 0
            for replica in web.replica_ids():
                found, replaced = await trial(engine, replica)
                detect.append(found)
                replace.append(replaced)
                # any replica but the victim with a new process was restarted though it answered: a false restart
                now = {r: s.pid for r, s in statuses(engine).items()}
                false_restarts += sum(1 for r, pid in now.items() if r != replica and expected.get(r) != pid)
                expected = now
        finally:
            await engine.close()
            await demo.stop()
    target = args.after * args.interval + 2.0
    return {
        "trials": len(replace),
        "detect_median_s": round(statistics.median(detect), 2),
        "replace_median_s": round(statistics.median(replace), 2),
        "replace_max_s": round(max(replace), 2),
        "false_restarts": false_restarts,
        "target_s": target,
        "interval_s": args.interval,
        "unhealthy_after": args.after,
        "poll_interval_s": args.poll,
        "timeout_s": args.timeout,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--after", type=int, default=2)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=0.5)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
