"""Issue 11, build 2 on the embedded demo fleet (real SSH servers, real HTTP processes, checks run by the
hosts' probe loops) and a real OpenSSH sshd: a rolling update that succeeds, one stopped by a new definition
that fails its check while the old replicas go on serving, and a move that keeps the old copy until the new
one is healthy."""

from __future__ import annotations

import asyncio
import dataclasses
import urllib.request

import psutil

from core.engine.engine import Engine
from core.engine.events import EventKind
from core.engine.journal import Journal
from core.model import CheckKind, Health, HealthCheck, ReplicaId, ReplicaStatus, Resources, Service
from tests.conftest import demo_cluster
from tests.e2e.test_failover_demo import auto_engine, until
from tests.hostlink.helpers import cluster, fleet_for, fresh_cluster

# grace: a python3 http.server on this shared 2-core machine may take seconds to listen under load
CHECK = HealthCheck(CheckKind.HTTP, interval=0.5, timeout=0.4, grace=5.0, unhealthy_after=2)
SERVE = "exec python3 -m http.server {port} --bind 127.0.0.1"
WEB = Service("web", SERVE, 3, Resources(100, 64 << 20), max_per_host=1, min_healthy=2, check=CHECK)


def copies(engine, service: str = "web") -> list[ReplicaStatus]:
    snap = engine.snapshot()
    return [r for o in snap.hosts.values() if o.state.reachable for r in o.replicas if r.replica.service == service]


def healthy(engine, service: str = "web") -> int:
    return sum(1 for r in copies(engine, service) if r.running and r.health is Health.HEALTHY)


def serves(pid: int) -> bool:
    """The replica with `pid` answers GET / on the port its command line names."""
    port = psutil.Process(pid).cmdline()[3]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as reply:
        return reply.status == 200


def restarted(engine) -> int:
    return sum(1 for e in engine.recent_events() if e.kind is EventKind.ACTION_DONE and e.data.get("kind") == "restart")


def rolled(engine, before: dict[ReplicaId, int]) -> bool:
    """Every replica is a new, healthy process and the rollout's three restarts are done."""
    now = copies(engine)
    fresh = len(now) == 3 and all(r.pid not in before.values() and r.health is Health.HEALTHY for r in now)
    return fresh and restarted(engine) == 3


def one_at_a_time(engine) -> None:
    """The restarts of the rollout ran one after another: each began after the one before was done (its new
    copy healthy). The healthy count alone cannot show it: a stop and a start may fall between two frames."""
    steps = [
        (e.kind, e.replica)
        for e in engine.recent_events()
        if e.kind in (EventKind.ACTION_STARTED, EventKind.ACTION_DONE) and e.data.get("kind") == "restart"
    ]
    assert len(steps) == 6, steps
    assert [k for k, _ in steps] == [EventKind.ACTION_STARTED, EventKind.ACTION_DONE] * 3, steps
    assert all(steps[i][1] == steps[i + 1][1] for i in range(0, 6, 2)), steps


def reconfigured(config, **changes):
    web = dataclasses.replace(config.service("web"), **changes)
    return dataclasses.replace(config, services=tuple(web if s.name == "web" else s for s in config.services))


async def sample(engine, until_done: asyncio.Event, out: list[int]) -> None:
    """The healthy count every 100 ms (what min_healthy promises)."""
    while not until_done.is_set():
        out.append(healthy(engine))
        await asyncio.sleep(0.1)


async def settled(engine, replicas: int = 3) -> dict[ReplicaId, int]:
    await until(lambda: healthy(engine) == replicas and len(copies(engine)) == replicas, 30)
    return {r.replica: r.pid for r in copies(engine) if r.pid is not None}


async def test_a_rolling_update_replaces_every_replica_never_below_min_healthy(demo_fleet, tmp_path):
    config = demo_cluster(3, services=(WEB,))
    engine, _demo = await auto_engine(demo_fleet, config, tmp_path)
    try:
        before = await settled(engine)
        done, counts = asyncio.Event(), []
        sampler = asyncio.create_task(sample(engine, done, counts))
        engine.reload(reconfigured(engine.snapshot().config, command=SERVE + " --directory /"))
        await until(lambda: rolled(engine, before), 60)
        done.set()
        await sampler
        assert min(counts) >= 2, counts  # min_healthy = 2, sampled every 100 ms
        one_at_a_time(engine)
        assert not engine.snapshot().rollouts_halted
        assert all(serves(r.pid) for r in copies(engine) if r.pid is not None)
    finally:
        await engine.close()


async def test_a_new_definition_that_fails_its_check_stops_the_rollout_and_the_old_replicas_serve(demo_fleet, tmp_path):
    config = demo_cluster(3, services=(WEB,))
    engine, _demo = await auto_engine(demo_fleet, config, tmp_path)
    events = engine.subscribe()
    try:
        before = await settled(engine)
        # listens, but on the wrong address: the check (GET 127.0.0.1:{port}/) is refused
        engine.reload(reconfigured(engine.snapshot().config, command=SERVE.replace("127.0.0.1", "127.0.0.2")))
        await until(lambda: bool(engine.snapshot().rollouts_halted), 30)
        halted = []
        while not events.empty():
            e = events.get_nowait()
            if e.kind is EventKind.ROLLOUT_HALTED:
                halted.append(e)
        [event] = halted
        assert event.replica is not None and "failed its check" in event.message
        await asyncio.sleep(4)  # past the failed actions' first retries: nothing else is touched
        now = {r.replica: r.pid for r in copies(engine)}
        kept = {r: pid for r, pid in before.items() if r != event.replica}
        assert len(kept) == 2 and all(now[r] == pid for r, pid in kept.items())  # the same processes
        assert all(serves(pid) for pid in kept.values())  # still serving HTTP
        assert healthy(engine) == 2
        assert "web" in engine.snapshot().rollouts_halted
    finally:
        await engine.close()


async def test_a_move_keeps_the_old_copy_until_the_new_one_is_healthy(demo_fleet, tmp_path):
    slow = dataclasses.replace(CHECK, healthy_after=3)  # at least 1.5 s from start to healthy
    web = dataclasses.replace(WEB, replicas=1, min_healthy=0, check=slow)
    config = demo_cluster(2, services=(web,))
    engine, _demo = await auto_engine(demo_fleet, config, tmp_path)
    try:
        await settled(engine, 1)
        [old] = copies(engine)
        source, target = old.host, next(h.name for h in config.hosts if h.name != old.host)
        timeline: list[tuple[bool, Health | None]] = []  # (the source copy runs, the target copy's health)
        done = asyncio.Event()

        async def watch() -> None:
            while not done.is_set():
                here = {r.host: r for r in copies(engine) if r.running}
                timeline.append((source in here, here[target].health if target in here else None))
                await asyncio.sleep(0.1)

        watcher = asyncio.create_task(watch())
        await engine.drain(source)  # the plan moves web/0 to the target
        await until(lambda: [r.host for r in copies(engine) if r.running] == [target], 30)
        done.set()
        await watcher
        both = [t for t in timeline if t[0] and t[1] is not None]
        assert both, timeline  # both copies ran for a while
        assert any(health is Health.STARTING for _, health in both)  # the source ran while the target started
        assert all(health is Health.HEALTHY for runs, health in timeline if not runs), timeline
        [new] = [r for r in copies(engine) if r.running]
        assert serves(new.pid or 0)
    finally:
        await engine.close()


async def test_rolling_updates_on_a_real_sshd_host(sshd, tmp_path):
    """The same two rollouts through OpenSSH and the shell probe: one that succeeds, then one whose new
    definition fails its check — stopped at the first replica, the others still serving."""
    names = fresh_cluster(sshd)
    base = cluster(next(names), sshd.host("a"))
    web = dataclasses.replace(WEB, max_per_host=None)  # one sshd host: the three replicas share it
    config = dataclasses.replace(base, services=(web,), policy=dataclasses.replace(base.policy, cooldown=0.0))
    engine = Engine(config, fleet_for(sshd, config), Journal(tmp_path / "j.db"), auto_apply=True, workers=1)
    await engine.start()
    try:
        before = await settled(engine)
        done, counts = asyncio.Event(), []
        sampler = asyncio.create_task(sample(engine, done, counts))
        engine.reload(reconfigured(config, command=SERVE + " --directory /"))
        await until(lambda: rolled(engine, before), 60)
        done.set()
        await sampler
        assert min(counts) >= 2, counts
        one_at_a_time(engine)
        before = {r.replica: r.pid for r in copies(engine) if r.pid is not None}
        engine.reload(reconfigured(config, command=SERVE.replace("127.0.0.1", "127.0.0.2")))
        await until(lambda: bool(engine.snapshot().rollouts_halted), 30)
        [event] = [e for e in engine.recent_events() if e.kind is EventKind.ROLLOUT_HALTED]
        await asyncio.sleep(3)
        now = {r.replica: r.pid for r in copies(engine)}
        kept = {r: pid for r, pid in before.items() if r != event.replica}
        assert len(kept) == 2 and all(now[r] == pid for r, pid in kept.items())
        assert all(serves(pid) for pid in kept.values())
    finally:
        await engine.close()
        next(names, None)
