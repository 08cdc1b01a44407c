"""The etcd state store and the desired-state document on a real 3-member etcd."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.errors import ConfigError, RevisionConflict
from core.model import Action, ActionKind, ClusterConfig, ReplicaId
from core.store.desired_doc import DesiredWatch, pull, push
from core.store.etcd import EtcdClient
from core.store.etcd_store import EtcdStore
from core.store.localetcd import LocalEtcd

GOOD = """
[cluster]
name = "t"
[[hosts]]
name = "h1"
address = "10.0.0.1"
[[services]]
name = "web"
command = "sleep 100"
replicas = {n}
cpu = "100m"
mem = "16MiB"
"""


async def test_plans_actions_placed_and_epochs_reach_another_controller(
    etcd: LocalEtcd, prefix: str, tmp_path: Path
) -> None:
    a = await EtcdStore(EtcdClient(etcd.endpoints), prefix, tmp_path / "a").open()
    web0, web1 = ReplicaId("web", 0), ReplicaId("web", 1)
    actions = (Action(ActionKind.START, web0, None, "h1"), Action(ActionKind.START, web1, None, "h2"))
    a.begin_plan("p1", "drift", "basis", actions)
    a.set_action("p1", 0, "running")
    a.record_placed(web0, "h1", 41)
    a.set_action("p1", 0, "done")
    a.trust_epoch(41, "a")
    a.log_event(1.0, {"event": "x"})
    await a.flush()
    # A second controller (a new leader) reads what the first left: the half-applied plan included.
    b = await EtcdStore(EtcdClient(etcd.endpoints), prefix, tmp_path / "b").open()
    [(pid, left)] = b.unfinished()
    assert pid == "p1" and [x.state for x in left] == ["done", "pending"]
    assert left[1].action == actions[1]
    assert b.placed() == {(web0, "h1")} and b.epochs() == {41}
    b.finish_plan("p1", "done")
    b.record_removed(web0, "h1")
    await b.flush()
    await a.refresh()
    assert a.unfinished() == [] and a.placed() == set() and a.plan_status("p1") == "done"
    for s in (a, b):
        await s.aclose()


async def test_writes_wait_while_etcd_has_no_quorum_and_go_through_after(
    etcd: LocalEtcd, prefix: str, tmp_path: Path
) -> None:
    told: list[tuple[str | None, int, int]] = []
    s = await EtcdStore(EtcdClient(etcd.endpoints, timeout=0.5), prefix, tmp_path / "s").open()
    s.watch(lambda p, w, d: told.append((p, w, d)))
    etcd.stop_member("m1")
    etcd.stop_member("m2")
    s.begin_plan("p", "drift", "", (Action(ActionKind.START, ReplicaId("web", 0), None, "h1"),))
    with pytest.raises(TimeoutError):  # journal first: a host action waiting on this flush does not run
        await asyncio.wait_for(s.flush(), 3)
    assert s.backlog >= 1 and told and told[0][0] is not None
    etcd.start_member("m1")
    etcd.start_member("m2")
    await asyncio.wait_for(s.flush(), 20)
    assert s.backlog == 0 and told[-1][0] is None and told[-1][1] >= 1
    c = await EtcdStore(EtcdClient(etcd.endpoints), prefix, tmp_path / "c").open()
    assert [p for p, _ in c.unfinished()] == ["p"]
    for x in (s, c):
        await x.aclose()


async def test_push_is_a_compare_and_swap_and_refuses_invalid_documents(client: EtcdClient, prefix: str) -> None:
    first = await push(client, prefix, GOOD.format(n=2), "cluster.toml", expect=0)
    with pytest.raises(RevisionConflict) as conflict:
        await push(client, prefix, GOOD.format(n=3), "cluster.toml", expect=0)  # someone pushed since
    assert conflict.value.current == str(first.revision)
    second = await push(client, prefix, GOOD.format(n=3), "cluster.toml", expect=first.revision)
    assert second.revision > first.revision
    bad = GOOD.format(n=-1).replace('cpu = "100m"', 'cpu = "lots"')
    with pytest.raises(ConfigError) as invalid:
        await push(client, prefix, bad, "cluster.toml", expect=second.revision)
    assert len(invalid.value.problems) == 2  # every problem, not the first
    stored = await pull(client, prefix)
    assert stored is not None and stored.revision == second.revision and "replicas = 3" in stored.text


async def test_every_watcher_adopts_a_push(client: EtcdClient, prefix: str) -> None:
    first = await push(client, prefix, GOOD.format(n=1), "cluster.toml", expect=0)
    adopted: list[list[ClusterConfig]] = [[], []]
    watches = [DesiredWatch(client, prefix, adopted[i].append, lambda e: None, retry=0.1) for i in range(2)]
    tasks = [asyncio.create_task(w.run()) for w in watches]
    try:
        for _ in range(100):
            if all(adopted):
                break
            await asyncio.sleep(0.05)
        await push(client, prefix, GOOD.format(n=4), "cluster.toml", expect=first.revision)
        for _ in range(100):
            if all(len(a) == 2 for a in adopted):
                break
            await asyncio.sleep(0.05)
        assert [[c.services[0].replicas for c in a] for a in adopted] == [[1, 4], [1, 4]]
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_shared_maps_reach_the_other_controllers_and_entries_do_not_undo_each_other(
    etcd: LocalEtcd, prefix: str, tmp_path: Path
) -> None:
    a = await EtcdStore(EtcdClient(etcd.endpoints), prefix, tmp_path / "a").open()
    b = await EtcdStore(EtcdClient(etcd.endpoints), prefix, tmp_path / "b").open()
    try:
        ha, hb = a.shared_map("holds"), b.shared_map("holds")
        seen = hb.stamp()
        ha.put("h1", "drain")
        hb.put("h2", "cordon")  # before either has read the other's: both stay
        for _ in range(40):
            await asyncio.sleep(0.1)
            if ha.read() == hb.read() == {"h1": "drain", "h2": "cordon"}:
                break
        assert ha.read() == hb.read() == {"h1": "drain", "h2": "cordon"}
        assert hb.stamp() != seen  # the engine re-reads its holds when the stamp moves
        ha.put("h1", None)
        await a.flush()
        await b.refresh()  # a standby's follow, a new leader's take-over: the maps are read with the rest
        assert hb.read() == {"h2": "cordon"}
        # a third controller, started later, finds them at open
        c = await EtcdStore(EtcdClient(etcd.endpoints), prefix, tmp_path / "c").open()
        assert c.shared_map("holds").read() == {"h2": "cordon"} and c.shared_map("rollouts").read() == {}
        await c.aclose()
    finally:
        for s in (a, b):
            await s.aclose()
