"""Rolling-update benchmark: a service's definition changes under an auto-applying engine on the demo fleet.

    flock /tmp/loadmaster-bench.lock python benchmarks/rolling.py --replicas 20 --min-healthy 18

`web` (python3 -m http.server, an http check) runs `--replicas` replicas with `min_healthy` on demo hosts.
Two rollouts, each with the healthy count (what the hosts' frames say) sampled every 100 ms:
    good     the command changes to one that serves too: every replica is replaced, one at a time, each
             new copy healthy before the next; min_seen must stay ≥ min_healthy;
    failing  the command changes to one that listens on the wrong address (its check is refused):
             the rollout must stop at the first new copy — replaced = 1, the others still the processes
             of the good rollout — and say so (rollout.halted).
Prints a JSON summary on its last line: replicas, min_healthy, good {seconds, replaced, min_seen, samples},
failing {seconds_to_halt, replaced, untouched, min_seen, halted_at, reason}, passed (both targets met).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.engine.engine import Engine
from core.engine.events import EventKind
from core.engine.journal import Journal
from core.hostlink.demo import DemoFleet
from core.hostlink.fleet import Fleet
from core.model import CheckKind, ClusterConfig, Health, HealthCheck, Host, Policy, ReplicaId, Resources, Service

SERVE = "exec python3 -m http.server {port} --bind 127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def live(engine: Engine) -> dict[ReplicaId, tuple[int | None, Health | None]]:
    """Replica → (pid, health) of its running copies on reachable hosts (a replica runs once here)."""
    out = {}
    for obs in engine.snapshot().hosts.values():
        if obs.state.reachable:
            for r in obs.replicas:
                if r.running:
                    out[r.replica] = (r.pid, r.health)
    return out


def healthy(engine: Engine) -> int:
    return sum(1 for _, health in live(engine).values() if health is Health.HEALTHY)


async def until(predicate, timeout: float) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def sampled(engine: Engine, done, timeout: float, expect_halt: bool) -> tuple[float, list[int]]:  # type: ignore[no-untyped-def]
    """Sample the healthy count every 100 ms until `done()`; returns (seconds, samples). An unexpected halt or
    the timeout ends the benchmark with a JSON line saying so."""
    samples: list[int] = []
    start = time.monotonic()
    while not done():
        samples.append(healthy(engine))
        halted = engine.snapshot().rollouts_halted
        if time.monotonic() - start > timeout or (halted and not expect_halt):
            raise SystemExit(json.dumps({"error": f"rollout not finished after {time.monotonic() - start:.1f} s",
                                         "healthy_now": samples[-1], "halted": dict(halted)}))  # fmt: skip
        await asyncio.sleep(0.1)
    samples.append(healthy(engine))
    return time.monotonic() - start, samples


def with_command(config: ClusterConfig, command: str) -> ClusterConfig:
    web = dataclasses.replace(config.service("web"), command=command)
    return dataclasses.replace(config, services=(web,))


def restarts_done(engine: Engine, since: int) -> int:
    events = engine.recent_events()[since:]
    return sum(1 for e in events if e.kind is EventKind.ACTION_DONE and e.data.get("kind") == "restart")


async def main(args: argparse.Namespace) -> dict[str, object]:
    check = HealthCheck(CheckKind.HTTP, interval=args.interval, timeout=0.5, grace=args.grace, unhealthy_after=2)
    web = Service("web", SERVE, args.replicas, Resources(50, 32 << 20), min_healthy=args.min_healthy, check=check)
    hosts = tuple(
        Host(f"h{i}", "127.0.0.1", free_port(), capacity=Resources(8000, 16 << 30), demo=True)
        for i in range(1, args.hosts + 1)
    )
    policy = Policy(auto_apply=True, max_moves_per_cycle=args.replicas, cooldown=0.0, settle=0.0, solver_time_limit=5.0)
    config = ClusterConfig(
        "bench-rolling", hosts, (web,), poll_interval=args.poll, failure_timeout=3 * args.poll, policy=policy, demo=True
    )
    with tempfile.TemporaryDirectory() as tmp:
        demo = DemoFleet(config, Path(tmp) / "demo")
        await demo.start()
        fleet = Fleet(demo.config, known_hosts=demo.known_hosts, client_keys=[demo.client_key])
        engine = Engine(demo.config, fleet, Journal(Path(tmp) / "j.db"), auto_apply=True, demo=demo, workers=1)
        await engine.start()
        try:
            await until(lambda: healthy(engine) == args.replicas, 180)
            first = {r: pid for r, (pid, _) in live(engine).items()}

            # 1. a good rollout: every replica replaced, never below min_healthy
            mark = len(engine.recent_events())
            engine.reload(with_command(demo.config, SERVE + " --directory /"))
            seconds, good = await sampled(
                engine,
                lambda: restarts_done(engine, mark) == args.replicas and healthy(engine) == args.replicas,
                args.timeout,
                expect_halt=False,
            )
            second = {r: pid for r, (pid, _) in live(engine).items()}
            replaced = sum(1 for r, pid in second.items() if first.get(r) != pid)

            # 2. a failing rollout: stopped at the first new copy, the others untouched
            mark = len(engine.recent_events())
            broken = with_command(demo.config, SERVE.replace("127.0.0.1", "127.0.0.2"))
            engine.reload(broken)
            halt_s, failing = await sampled(engine, lambda: bool(engine.snapshot().rollouts_halted), args.timeout, True)
            await asyncio.sleep(args.linger)  # past the failed actions' first retries: nothing else may move
            failing += [healthy(engine)]
            halted = [e for e in engine.recent_events()[mark:] if e.kind is EventKind.ROLLOUT_HALTED]
            third = {r: pid for r, (pid, _) in live(engine).items()}
            at = halted[0].replica if halted else None
            untouched = sum(1 for r, pid in third.items() if second.get(r) == pid)
            broke = sum(1 for r, pid in third.items() if second.get(r) != pid)
        finally:
            await engine.close()
            await demo.stop()
    result = {
        "replicas": args.replicas,
        "min_healthy": args.min_healthy,
        "hosts": args.hosts,
        "interval_s": args.interval,
        "poll_interval_s": args.poll,
        "good": {"seconds": round(seconds, 1), "replaced": replaced, "min_seen": min(good), "samples": len(good)},
        "failing": {
            "seconds_to_halt": round(halt_s, 1),
            "replaced": broke,
            "untouched": untouched,
            "min_seen": min(failing),
            "halted_at": str(at) if at else None,
            "reason": halted[0].message if halted else None,
        },
    }
    result["passed"] = (
        min(good) >= args.min_healthy
        and replaced == args.replicas
        and broke == 1
        and untouched == args.replicas - 1
        and len(halted) == 1
    )
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=20)
    parser.add_argument("--min-healthy", type=int, default=18)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--interval", type=float, default=1.0, help="the check's interval")
    parser.add_argument("--grace", type=float, default=5.0, help="the check's grace")
    parser.add_argument("--poll", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds a rollout may take")
    parser.add_argument("--linger", type=float, default=5.0, help="seconds watched after the halt")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
