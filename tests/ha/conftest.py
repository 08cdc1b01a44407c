"""The etcd harness: a 3-member etcd cluster on loopback from Debian's etcd-server, one per test session
(each member its own data dir and ports), torn down after; each test works under its own key prefix."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator

import pytest

from core.store.etcd import EtcdClient
from core.store.localetcd import LocalEtcd, etcd_binary
from tests.sshd import missing

_prefixes = itertools.count()


@pytest.fixture(scope="session")
def etcd_cluster() -> Iterator[LocalEtcd]:
    if etcd_binary() is None:
        missing("etcd is missing (apt-get install etcd-server etcd-client)")
    cluster = LocalEtcd(3)
    try:
        cluster.start()
    except RuntimeError as exc:
        cluster.close()
        missing(f"cannot start a local etcd cluster: {exc}")
    yield cluster
    cluster.close()


@pytest.fixture
def etcd(etcd_cluster: LocalEtcd) -> LocalEtcd:
    """The session's cluster with every member running (a test that stopped some gets them back)."""
    for m in etcd_cluster.members:
        if not m.running:
            etcd_cluster.start_member(m.name)
    etcd_cluster.wait_ready()
    return etcd_cluster


@pytest.fixture
def prefix() -> str:
    return f"/lmtest/{next(_prefixes)}/"


@pytest.fixture
async def client(etcd: LocalEtcd) -> AsyncIterator[EtcdClient]:
    c = EtcdClient(etcd.endpoints, timeout=2.0)
    yield c
    await c.close()
