"""The harness itself and the gateway client: a real 3-member cluster, real requests."""

from __future__ import annotations

import psutil
import pytest

from core.errors import StoreError
from core.store.etcd import EtcdClient, created_is, put_op, range_op
from core.store.localetcd import LocalEtcd


async def test_three_members_each_with_its_own_dir_and_ports(etcd: LocalEtcd) -> None:
    assert len(etcd.members) == 3
    assert len({m.data_dir for m in etcd.members}) == 3
    ports = [p for m in etcd.members for p in (m.client_port, m.peer_port)]
    assert len(set(ports)) == 6
    assert all(etcd.healthy(m) for m in etcd.members)


async def test_put_get_txn_and_prefix(client: EtcdClient, prefix: str) -> None:
    rev = await client.put(prefix + "a", "1")
    kv = await client.get(prefix + "a")
    assert kv is not None and kv.value == b"1" and kv.mod_revision == rev
    created = await client.txn([created_is(prefix + "b", 0)], [put_op(prefix + "b", "x")], [range_op(prefix + "b")])
    again = await client.txn([created_is(prefix + "b", 0)], [put_op(prefix + "b", "y")], [range_op(prefix + "b")])
    assert created.succeeded and not again.succeeded
    assert again.kvs()[0].value == b"x"
    kvs, _ = await client.range(prefix, prefix=True)
    assert [k.key for k in kvs] == [prefix + "a", prefix + "b"]
    assert await client.delete(prefix, prefix=True) == 2


async def test_lease_expires_and_takes_its_keys(client: EtcdClient, prefix: str) -> None:
    lease = await client.grant(2)
    await client.put(prefix + "k", "v", lease)
    assert await client.keepalive(lease) == 2
    await client.revoke(lease)
    assert await client.get(prefix + "k") is None
    assert await client.keepalive(lease) == 0


async def test_one_member_down_still_answers_through_another(etcd: LocalEtcd, prefix: str) -> None:
    first = etcd.members[0].name
    etcd.stop_member(first)
    c = EtcdClient(etcd.endpoints, timeout=2.0)  # the first endpoint refuses: the next answers
    try:
        await c.put(prefix + "x", "1")
        assert (await c.get(prefix + "x")) is not None
    finally:
        await c.close()
        etcd.start_member(first)


async def test_nobody_answers_names_every_endpoint() -> None:
    c = EtcdClient(["http://127.0.0.1:9", "http://127.0.0.1:7"], timeout=0.5)
    with pytest.raises(StoreError) as err:
        await c.get("/x")
    await c.close()
    assert "127.0.0.1:9" in str(err.value) and "127.0.0.1:7" in str(err.value)


def test_close_leaves_no_member_running() -> None:
    cluster = LocalEtcd(1)
    cluster.start()
    pids = [m.process.pid for m in cluster.members if m.process is not None]
    root = cluster.root
    cluster.close()
    assert pids and not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids)
    assert root is not None and not root.exists()
