"""The console on a clustered cluster (console/commands/console.py `_clustered_console`): it follows the
election without campaigning — read-only, its header naming the leader — even when no daemon leads."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from console.clustered import clustered
from console.commands.runtime import make_engine
from console.derive import FleetSummary
from console.widgets.summary import summary_text
from core import config as config_io
from core.errors import NotHolder
from core.model import Resources, Service
from core.store.election import Election
from core.store.etcd import EtcdClient
from core.store.localetcd import LocalEtcd
from tests.conftest import demo_cluster

SUMMARY = FleetSummary(2, 0, 0, Resources(0, 0), Resources(0, 0))


async def test_the_console_never_leads_and_names_the_leader(etcd: LocalEtcd, prefix: str, tmp_path: Path,
                                                            demo_fleet) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    base = demo_cluster(2, services=(Service("web", "sleep 6071", 1, Resources(100, 16 << 20)),), failure_timeout=2)
    store = config_io.parse(f'[cluster]\nstore = "{etcd.url}"\nstore_prefix = "{prefix}"\n'
                            '[[hosts]]\nname = "x"\naddress = "10.0.0.1"\n').store  # fmt: skip
    cfg = dataclasses.replace(base, store=store)
    demo = await demo_fleet(cfg)
    path = tmp_path / "cluster.toml"
    path.write_text(f'[cluster]\nname = "t"\nstore = "{etcd.url}"\nstore_prefix = "{prefix}"\n'
                    '[[hosts]]\nname = "h1"\naddress = "10.0.0.1"\n')  # fmt: skip
    async with clustered(cfg, path, tmp_path / "state", campaign=False) as cluster:
        engine = make_engine(cfg, cluster=cluster, demo_workdir=demo.workdir)
        await engine.start(first_contact_timeout=3)
        try:
            await asyncio.sleep(2 * 2 + 1)  # two TTLs with nobody leading: a daemon would have won by now
            snap = engine.snapshot()
            assert snap.read_only and not cluster.election.leading
            with pytest.raises(NotHolder):
                await engine.approve(await engine.plan())
            # A daemon starts and leads: the console's header names it.
            daemon = Election(EtcdClient(etcd.endpoints), prefix, "daemon-1", 2)
            await daemon.start()
            try:
                for _ in range(60):
                    if engine.snapshot().controller.leader == "daemon-1":  # type: ignore[union-attr]
                        break
                    await asyncio.sleep(0.1)
                header = summary_text(engine.snapshot(), SUMMARY, read_only=True).plain
                assert "STANDBY (leader: daemon-1)" in header
            finally:
                await daemon.close()
                await daemon.client.close()
        finally:
            await engine.close(grace=1)
