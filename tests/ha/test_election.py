"""Leader election on a real 3-member etcd: one leader, takeover after its lease runs out, step-down,
and a leader that loses quorum stops leading at once and leads again when quorum returns."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from core.store.election import Election, Leadership, controllers, request_step_down
from core.store.etcd import EtcdClient
from core.store.localetcd import LocalEtcd

TTL = 2.0


async def until(check: Callable[[], bool], timeout: float = 10.0) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


@pytest.fixture
async def make(etcd: LocalEtcd, prefix: str) -> AsyncIterator[Callable[[str], Election]]:
    made: list[Election] = []

    def one(name: str) -> Election:
        changes: list[tuple[Leadership, Leadership]] = []
        e = Election(EtcdClient(etcd.endpoints, timeout=1.0), prefix, name, TTL, poll=0.1)
        e.listeners.append(lambda a, b: changes.append((a, b)))
        e.changes = changes  # type: ignore[attr-defined]
        made.append(e)
        return e

    yield one
    for e in made:
        await e.close()
        await e.client.close()


def leaders(*es: Election) -> list[str]:
    return [e.me for e in es if e.leading]


async def test_one_leader_and_everyone_knows_it(
    make: Callable[[str], Election], client: EtcdClient, prefix: str
) -> None:
    es = [make(f"c{i}") for i in range(3)]
    for e in es:
        await e.start()
    await until(lambda: len(leaders(*es)) == 1 and all(e.state().leader == leaders(*es)[0] for e in es))
    await asyncio.sleep(1.0)
    assert len(leaders(*es)) == 1  # it stays one
    leader = next(e for e in es if e.leading)
    assert leader.epoch > 0 and all(e.state().epoch == leader.epoch for e in es)
    listed = await controllers(client, prefix)
    assert {c.id for c in listed} == {"c0", "c1", "c2"}
    assert [c.role for c in listed] == ["leader", "standby", "standby"] and listed[0].id == leader.me


async def test_takeover_after_the_lease_runs_out_with_a_higher_epoch(make: Callable[[str], Election]) -> None:
    a, b = make("a"), make("b")
    await a.start()
    await until(lambda: a.leading)
    await b.start()
    await until(lambda: b.state().leader == "a")
    first = a.epoch
    # The leader stops renewing (as if killed): cancel its loops without giving the lease back.
    for task in a._tasks:
        task.cancel()
    took = await until(lambda: b.leading, timeout=TTL + 3)
    assert took <= TTL + 1.5
    assert b.epoch > first
    assert not a.leading  # by its own clock the lease is gone too


async def test_step_down_hands_over_and_the_old_leader_stops_at_once(
    make: Callable[[str], Election], client: EtcdClient, prefix: str
) -> None:
    a, b = make("a"), make("b")
    await a.start()
    await until(lambda: a.leading)
    await b.start()
    assert await request_step_down(client, prefix) == "a"
    await until(lambda: not a.leading, timeout=2)
    await until(lambda: b.leading, timeout=3)
    assert any(before.leading and not after.leading for before, after in a.changes)  # type: ignore[attr-defined]
    await asyncio.sleep(TTL + 0.5)
    assert leaders(a, b) == ["b"]  # the one that stepped down does not take it back


async def test_quorum_lost_stops_the_leader_and_it_resumes_when_quorum_returns(
    make: Callable[[str], Election], etcd: LocalEtcd
) -> None:
    a = make("a")
    await a.start()
    await until(lambda: a.leading)
    etcd.stop_member("m1")  # 1 of 3: nothing changes
    await asyncio.sleep(TTL * 1.5)
    assert a.leading
    etcd.stop_member("m2")  # 2 of 3: no quorum, the lease cannot be renewed
    lost = await until(lambda: not a.leading, timeout=TTL + 3)
    # etcd's lone member answers lease renewals until it notices it lost quorum (an election timeout, 1 s here):
    # the lease may be renewed once more after the kill, then it runs out.
    assert lost <= TTL + 2.0
    assert a.state().problem is not None
    etcd.start_member("m1")
    etcd.start_member("m2")
    await until(lambda: a.leading, timeout=20)
