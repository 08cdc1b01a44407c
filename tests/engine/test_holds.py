"""Issue 12, item 10: cordon, drain and uncordon in the engine, kept across restarts, refused under --read-only."""

from __future__ import annotations

import dataclasses
import json

import pytest

from core import config as config_io
from core.engine.engine import Engine
from core.engine.events import EventKind
from core.engine.holds import Holds
from core.engine.journal import Journal
from core.errors import ReadOnly, UnknownHost
from core.store.shared_map import FileMap, MapError
from tests.engine.test_engine import until
from tests.fake_fleet import FakeFleet

FLEET = """
[cluster]
name = "h"
poll_interval = "100ms"
failure_timeout = "300ms"

[policy]
solver_time_limit = "2s"
settle = "0s"
auto_apply = true

[[hosts]]
name = "a"
address = "10.0.0.1"
capacity = { cpu = 8, mem = "8GiB" }

[[hosts]]
name = "b"
address = "10.0.0.2"
capacity = { cpu = 8, mem = "8GiB" }

[[hosts]]
name = "c"
address = "10.0.0.3"
capacity = { cpu = 8, mem = "8GiB" }

[[services]]
name = "web"
command = "sleep 1000"
replicas = 3
cpu = 1
mem = "256MiB"
max_per_host = 3
min_healthy = 2
"""


def placed(fleet: FakeFleet) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for replica, hosts in fleet.running().items():
        for h in hosts:
            out.setdefault(h, []).append(str(replica))
    return out


async def test_cordon_takes_no_new_replicas_and_drain_moves_them_off(tmp_path):
    config = config_io.parse(FLEET, "fleet.toml")
    fleet = FakeFleet(config)
    engine = Engine(config, fleet, Journal(tmp_path / "journal.db"), workers=1)
    queue = engine.subscribe()
    await engine.start(first_contact_timeout=1)
    try:
        await until(lambda: len(fleet.running()) == 3)
        busiest = max(placed(fleet), key=lambda h: len(placed(fleet)[h]))
        await engine.cordon(busiest)
        assert engine.snapshot().holds == {busiest: "cordoned"}
        before = list(placed(fleet).get(busiest, []))
        engine.reload(dataclasses.replace(config, services=(dataclasses.replace(config.services[0], replicas=5),)))
        await until(lambda: len(fleet.running()) == 5)
        assert sorted(placed(fleet).get(busiest, [])) == sorted(before)  # what ran stays, nothing new came

        plan = await engine.drain(busiest)
        assert plan is not None and all(a.from_host == busiest for a in plan.actions)
        assert busiest not in placed(fleet) and len(fleet.running()) == 5
        assert engine.snapshot().holds == {busiest: "drained"}
        kinds = []
        while not queue.empty():
            kinds.append(queue.get_nowait().kind)
        assert EventKind.HOST_CORDONED in kinds and EventKind.HOST_DRAINING in kinds and EventKind.HOST_DRAINED in kinds
        # the journal has the events too
        logged = [json.loads(doc)["event"] for _, doc in engine._journal._db.execute("SELECT at, doc FROM events")]
        assert "host.draining" in logged and "host.drained" in logged
    finally:
        await engine.close(grace=5)

    # a restart keeps the hold: the drained host still takes nothing
    again = Engine(config, fleet, Journal(tmp_path / "journal.db"), workers=1)
    await again.start(first_contact_timeout=1)
    try:
        await until(lambda: again.snapshot().holds.get(busiest) == "drained")
        await again.uncordon(busiest)
        assert again.snapshot().holds == {}
    finally:
        await again.close(grace=5)
    assert json.loads((tmp_path / "journal.holds.json").read_text()) == {}


async def test_holds_are_refused_under_read_only_and_for_unknown_hosts(tmp_path):
    config = config_io.parse(FLEET, "fleet.toml")
    engine = Engine(config, FakeFleet(config), Journal(tmp_path / "j.db"), workers=1, read_only=True)
    await engine.start(first_contact_timeout=1, run_loop=False)
    try:
        for call in (engine.cordon, engine.drain, engine.uncordon):
            with pytest.raises(ReadOnly, match="refused, loadmaster runs with --read-only"):
                await call("a")
        assert not (tmp_path / "j.holds.json").exists()
    finally:
        await engine.close(grace=5)
    rw = Engine(config, FakeFleet(config), Journal(tmp_path / "k.db"), workers=1)
    with pytest.raises(UnknownHost, match="no host 'node-z' \\(hosts: a, b, c\\)"):
        await rw.cordon("node-z")


def test_a_damaged_holds_file_is_named(tmp_path):
    path = tmp_path / "journal.holds.json"
    path.write_text('{"a": "sideways"}')
    with pytest.raises(MapError, match=r"journal\.holds\.json: is not .*fix or remove it \(it lists cordoned"):
        Holds(FileMap(path))


async def test_restart_one_replica_in_place_is_journaled_and_refused_under_read_only(tmp_path):
    config = config_io.parse(FLEET, "fleet.toml")
    fleet = FakeFleet(config)
    engine = Engine(config, fleet, Journal(tmp_path / "journal.db"), workers=1)
    await engine.start(first_contact_timeout=1)
    try:
        await until(lambda: len(fleet.running()) == 3)
        replica = next(iter(fleet.running()))
        host = fleet.running()[replica][0]
        starts = len(fleet.starts)
        progress = await engine.restart_replica(replica)
        assert not progress.failed and [a.kind.value for a in progress.done] == ["restart"]
        assert fleet.running()[replica] == [host] and len(fleet.starts) == starts + 1
        assert (host, replica) in fleet.stops
        logged = [json.loads(doc)["message"] for _, doc in engine._journal._db.execute("SELECT at, doc FROM events")]
        assert any(f"restart {replica} on {host}" in m for m in logged)
    finally:
        await engine.close(grace=5)
    ro = Engine(config, fleet, Journal(tmp_path / "ro.db"), workers=1, read_only=True)
    await ro.start(first_contact_timeout=1, run_loop=False)
    try:
        with pytest.raises(ReadOnly):
            await ro.restart_replica(replica)
    finally:
        await ro.close(grace=5)


async def test_stop_one_replica_is_journaled_then_placed_again_and_refused_below_min_healthy(tmp_path):
    """Issue 12, item 10: stop one replica (Nomad's `alloc stop`): the file still wants it, so the engine
    places it again; a stop that would leave its service below min_healthy is refused, nothing stopped."""
    config = config_io.parse(FLEET, "fleet.toml")
    fleet = FakeFleet(config)
    engine = Engine(config, fleet, Journal(tmp_path / "journal.db"), workers=1)
    await engine.start(first_contact_timeout=1)
    try:
        await until(lambda: len(fleet.running()) == 3)
        replica = next(iter(fleet.running()))
        host = fleet.running()[replica][0]
        progress = await engine.stop_replica(replica)
        assert not progress.failed and [a.kind.value for a in progress.done] == ["stop"]
        assert (host, replica) in fleet.stops
        await until(lambda: len(fleet.running()) == 3)  # auto-apply: placed again
        logged = [json.loads(doc)["message"] for _, doc in engine._journal._db.execute("SELECT at, doc FROM events")]
        assert any(f"stop {replica} on {host}, asked by the operator" in m for m in logged)
    finally:
        await engine.close(grace=5)
    strict = config_io.parse(FLEET.replace("min_healthy = 2", "min_healthy = 3"), "fleet.toml")
    fleet = FakeFleet(strict)
    engine = Engine(strict, fleet, Journal(tmp_path / "strict.db"), workers=1)
    await engine.start(first_contact_timeout=1)
    try:
        await until(lambda: len(fleet.running()) == 3)
        replica = next(iter(fleet.running()))
        progress = await engine.stop_replica(replica)
        assert "below min_healthy = 3" in progress.failed[progress.plan.actions[0]] and fleet.stops == []
    finally:
        await engine.close(grace=5)
