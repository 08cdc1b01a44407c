"""Trusting a host key from the console (issue 12, item 9), on demo hosts over real SSH: a host whose key is not
in the known_hosts the cluster file names is `down: new key`; `t` in its detail shows the fingerprint it presents
and, once confirmed, records that key in that file (as accept-new would) and the host comes up. A changed key is
the same, the old line replaced."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import asyncssh
from textual.widgets import Static

from console.app import LoadmasterApp
from console.screens.confirm import ConfirmScreen
from console.screens.host import HostScreen
from core.engine.engine import Engine
from core.engine.journal import Journal
from core.hostlink.fleet import Fleet
from core.hostlink.keys import host_pattern
from core.model import HostState, SshDefaults
from tests.conftest import demo_cluster
from tests.console.test_console_app import cell, text_of

OTHER_KEY = (  # a key no demo host has: h2's "old" key, so that h2's real one is a changed key
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHyHsLgF1y9tcvGFc0y2cFxT0gFuGJ0YH1wGmJ2xv0Zx"
)


async def test_t_trusts_a_new_or_changed_host_key_after_showing_its_fingerprint(demo_fleet, tmp_path: Path) -> None:
    named = tmp_path / "cluster_known_hosts"  # the file the cluster names: empty, and strict
    base = demo_cluster(2, poll_interval=0.5)
    config = dataclasses.replace(base, defaults=SshDefaults(known_hosts=str(named)))
    demo = await demo_fleet(config)
    h1, h2 = demo.config.hosts
    named.write_text(f"{host_pattern(h2.address, h2.port)} {OTHER_KEY}\n", encoding="utf-8")
    fleet = Fleet(demo.config, client_keys=[demo.client_key])  # no override: the cluster's known_hosts
    engine = Engine(demo.config, fleet, Journal(tmp_path / "j.db"), workers=1)
    await engine.start(first_contact_timeout=5)
    served = {  # the keys the demo hosts really present, from the known_hosts the demo fleet wrote for itself
        line.split(" ", 1)[0]: asyncssh.import_public_key(line.split(" ", 1)[1]).get_fingerprint()
        for line in Path(demo.known_hosts).read_text(encoding="utf-8").splitlines()
    }
    presented = {h.name: served[host_pattern(h.address, h.port)] for h in (h1, h2)}
    try:
        app = LoadmasterApp(engine)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait(pilot, lambda: engine.snapshot().hosts["h2"].state is HostState.KEY_MISMATCH)
            assert cell(app.screen.table, "h1", "state") == "down: new key"
            for host, changed in (("h1", False), ("h2", True)):
                await pilot.press("colon", *f"host {host}", "enter")
                await wait(pilot, lambda: isinstance(app.screen, HostScreen))
                info = text_of(app.screen.query_one("#host-info", Static))
                assert f"presents host key {presented[host]}" in info
                await pilot.press("t")
                await wait(pilot, lambda: isinstance(app.screen, ConfirmScreen))
                question = app.screen.question
                assert presented[host] in question and ("CHANGED" in question) == changed
                await pilot.press("y")
                await wait(pilot, lambda h=host: engine.snapshot().hosts[h].state is HostState.UP, timeout=15)
                await pilot.press("escape")
            lines = named.read_text(encoding="utf-8").splitlines()
            assert OTHER_KEY not in "\n".join(lines)  # the changed key's old line is gone
            assert sorted(line.split(" ", 1)[0] for line in lines) == sorted(
                host_pattern(h.address, h.port) for h in (h1, h2)
            )
            assert named.stat().st_mode & 0o777 == 0o600
    finally:
        await engine.close()


async def wait(pilot, condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        await pilot.pause(0.05)
    await asyncio.sleep(0)
