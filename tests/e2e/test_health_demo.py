"""The engine acting on health over the embedded demo fleet: a wedged HTTP replica is restarted in place."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from core.engine.events import EventKind
from core.model import CheckKind, Health, HealthCheck, ReplicaId, Resources, Service
from tests.conftest import demo_cluster
from tests.e2e.test_failover_demo import auto_engine, until

WEB = ReplicaId("web", 0)
CHECK = HealthCheck(CheckKind.HTTP, interval=0.5, timeout=0.4, grace=1.0, unhealthy_after=2)


def status_of(engine, replica):
    for obs in engine.snapshot().hosts.values():
        for r in obs.replicas:
            if r.replica == replica and r.running:
                return r
    return None


def healthy(engine, replica):
    status = status_of(engine, replica)
    return status is not None and status.health is Health.HEALTHY


async def test_a_wedged_http_replica_is_restarted_in_place_and_healthy_again(demo_fleet, tmp_path):
    web = Service(
        "web", "exec python3 -m http.server {port} --bind 127.0.0.1", 2, Resources(100, 64 << 20), check=CHECK
    )
    config = demo_cluster(2, services=(web,), poll_interval=0.5, failure_timeout=1.5)
    engine, _demo = await auto_engine(demo_fleet, config, tmp_path)
    events = engine.subscribe()
    try:
        await until(
            lambda: all((s := status_of(engine, r)) and s.health is Health.HEALTHY for r in web.replica_ids()), 20
        )
        assert engine.snapshot().hosts  # the snapshot carries health per replica
        wedged = status_of(engine, WEB)
        assert wedged is not None and wedged.pid is not None
        os.kill(wedged.pid, signal.SIGSTOP)  # listening, never answering
        try:
            await until(lambda: (s := status_of(engine, WEB)) is not None and s.pid != wedged.pid, 15)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(wedged.pid, signal.SIGCONT)
        fresh = status_of(engine, WEB)
        assert fresh is not None and fresh.host == wedged.host  # in place
        await until(lambda: (s := status_of(engine, WEB)) is not None and s.health is Health.HEALTHY, 15)
        seen = []
        while not events.empty():
            seen.append(events.get_nowait())
        kinds = [(e.kind, e.replica) for e in seen]
        assert (EventKind.REPLICA_UNHEALTHY, WEB) in kinds
        assert (EventKind.REPLICA_HEALTHY, WEB) in kinds
        assert any(e.kind is EventKind.REPLICA_STARTED and "unhealthy" in e.message for e in seen)
        other = status_of(engine, ReplicaId("web", 1))
        assert other is not None and other.health is Health.HEALTHY  # the other replica was never touched
        await asyncio.sleep(0)
    finally:
        await engine.close()
