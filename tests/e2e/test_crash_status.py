"""`replica.crashed` says how a real replica ended (issue 12, item 14), end to end on an OpenSSH host: the engine
places a replica that exits with code 3 and one that is killed with SIGKILL; each crash event names it in its
message and carries it as a field (`exit_code`, `signal`), as the headless log and the API print them."""

from __future__ import annotations

import dataclasses
import os
import random
import signal
from pathlib import Path

from core.engine.engine import Engine
from core.engine.events import Event, EventKind
from core.engine.journal import Journal
from core.model import ReplicaId, Resources, Service
from tests.hostlink.helpers import cluster, fleet_for, fresh_cluster, until


async def test_crash_events_carry_the_exit_code_and_the_signal(sshd, tmp_path: Path) -> None:
    names = fresh_cluster(sshd)
    tag = random.randint(100_000, 999_999)
    base = cluster(next(names), sshd.host("a"))
    config = dataclasses.replace(
        base,
        services=(
            Service("three", f"sleep 1.{tag}; exit 3", 1, Resources(100, 1 << 20)),
            Service("nine", f"sleep 6{tag}", 1, Resources(100, 1 << 20)),
        ),
    )
    engine = Engine(config, fleet_for(sshd, config), Journal(tmp_path / "j.db"), auto_apply=True, workers=1)
    queue = engine.subscribe()
    events: list[Event] = []

    def crashes() -> dict[str, Event]:
        while not queue.empty():
            events.append(queue.get_nowait())
        return {e.replica.service: e for e in events if e.kind is EventKind.REPLICA_CRASHED and e.replica}

    await engine.start()
    try:
        await until(lambda: ReplicaId("nine", 0) in engine.snapshot().running(), 30, "nine/0 placed")
        [nine] = [r for o in engine.snapshot().hosts.values() for r in o.replicas if r.replica.service == "nine"]
        os.killpg(nine.pid or 0, signal.SIGKILL)
        await until(lambda: {"three", "nine"} <= set(crashes()), 30, lambda: str(events))
        three, killed = crashes()["three"].as_json(), crashes()["nine"].as_json()
        assert three["message"] == "three/0 exited with code 3 on a" and three["exit_code"] == 3
        assert "signal" not in three
        assert killed["message"] == "nine/0 was killed by SIGKILL on a" and killed["signal"] == "SIGKILL"
        assert "exit_code" not in killed
    finally:
        await engine.close(grace=5)
        next(names, None)
