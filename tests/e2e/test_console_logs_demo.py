"""The console's log view on the real engine over demo hosts (issue 12, item 10): `l` on a replica shows the
lines its real process wrote on its host, then new ones as it writes them (hostlink's log reader)."""

from __future__ import annotations

import asyncio
import time

from textual.widgets import DataTable

from console.app import LoadmasterApp
from console.screens.host import HostScreen
from console.screens.logs import LogScreen
from core.engine.engine import Engine
from core.engine.journal import Journal
from core.hostlink.fleet import Fleet
from core.model import ReplicaId, Resources, Service
from tests.conftest import demo_cluster

# One line a second, numbered, from a real shell loop: the first lines are the backlog, the later ones live.
TALKER = "sh -c 'i=0; while :; do i=$((i+1)); echo \"tick $i\"; sleep 0.3; done'"


async def test_l_on_a_replica_shows_what_its_process_writes_live(demo_fleet, tmp_path) -> None:
    config = demo_cluster(2, services=(Service("talk", TALKER, 1, Resources(100, 64 << 20)),), poll_interval=0.5)
    demo = await demo_fleet(config)
    fleet = Fleet(demo.config, known_hosts=demo.known_hosts, client_keys=[demo.client_key])
    engine = Engine(demo.config, fleet, Journal(tmp_path / "j.db"), auto_apply=True, demo=demo, workers=1)
    await engine.start()
    replica = ReplicaId("talk", 0)
    try:
        deadline = time.monotonic() + 30
        while replica not in engine.snapshot().running():
            assert time.monotonic() < deadline, "the replica did not start"
            await asyncio.sleep(0.1)
        host = engine.snapshot().running()[replica][0]
        await asyncio.sleep(1.5)  # a backlog of a few lines
        app = LoadmasterApp(engine)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("colon", *f"host {host}", "enter")
            await pilot.pause(0.3)
            assert isinstance(app.screen, HostScreen)
            table = app.screen.query_one("#host-replicas", DataTable)
            assert table.row_count == 1
            await pilot.press("l")
            screen = app.screen
            assert isinstance(screen, LogScreen)
            deadline = time.monotonic() + 15
            while len(screen.shown) < 2:
                assert time.monotonic() < deadline, f"no backlog: {screen.shown}"
                await pilot.pause(0.1)
            first = screen.shown[:]
            assert first[0] == "tick 1" and all(line.startswith("tick ") for line in first)
            deadline = time.monotonic() + 15
            while len(screen.shown) < len(first) + 3:  # written after the view opened: followed live
                assert time.monotonic() < deadline, f"not followed: {screen.shown}"
                await pilot.pause(0.1)
            numbers = [int(line.split()[1]) for line in screen.shown]
            assert numbers == list(range(1, len(numbers) + 1))  # every line once, in order
            await pilot.press("escape")
            await pilot.pause(0.2)
            assert isinstance(app.screen, HostScreen)
    finally:
        await engine.close()
