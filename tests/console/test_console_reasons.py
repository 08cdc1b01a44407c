"""Why a host is down, on its row and in host detail (issue 12, item 9): `down`, no reason, was all it said."""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType

import asyncssh
import pytest
from textual.widgets import Static

from console.app import LoadmasterApp
from console.derive import down_reason
from console.screens.fleet import FleetScreen
from console.screens.host import HostScreen
from core.engine.duplicates import duplicate_hosts
from core.errors import HostKeyMismatch, HostKeyUnknown
from core.hostlink.ssh import describe
from core.model import HostObservation, HostState, MachineIdentity
from tests.console.test_console_app import cell, settle, text_of


def _down(error: str, state: HostState = HostState.DOWN) -> HostObservation:
    return HostObservation("node-x", state, 0.0, error=error)


@pytest.mark.parametrize(
    ("error", "words"),
    [
        # what hostlink writes, as it writes it (the link strips the leading "node-x: ")
        (str(HostKeyUnknown("node-x", "SHA256:abc")).removeprefix("node-x: "), "new key"),
        (describe(asyncssh.PermissionDenied("no")), "denied"),
        (describe(ConnectionRefusedError(111, "Connection refused")), "refused"),
        (describe(TimeoutError()), "timeout"),
        (describe(OSError(113, "No route to host")), "offline"),
        (describe(OSError(101, "Network is unreachable")), "offline"),
        ("identity_file /k does not exist", "id file"),
        ("no frame for 3.2 s", "silent"),
        ("connection lost", "lost"),
        ("something nobody expected", "error"),
    ],
)
def test_each_error_hostlink_writes_has_its_words(error: str, words: str) -> None:
    assert down_reason(_down(error)) == words


def test_an_up_host_or_one_without_an_error_has_no_reason() -> None:
    assert down_reason(_down("connection refused", HostState.UP)) is None
    assert down_reason(_down("no frame for 2.1 s", HostState.SUSPECT)) is None  # suspect says it already
    changed = str(HostKeyMismatch("node-x", "SHA256:old", "SHA256:new")).removeprefix("node-x: ")
    assert down_reason(_down(changed, HostState.KEY_MISMATCH)) is None  # so does key-mismatch
    assert down_reason(replace(_down("x"), error=None)) is None and down_reason(None) is None


async def test_the_row_and_host_detail_say_why_at_80_columns(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot())
    snap = engine.snapshot()
    unknown = str(HostKeyUnknown("node-h", "SHA256:abc")).removeprefix("node-h: ")
    engine.publish(replace(snap, hosts={**snap.hosts, "node-h": replace(snap.hosts["node-h"], error=unknown)}))
    app = LoadmasterApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        assert cell(screen.table, "node-h", "state") == "down: new key"
        assert cell(screen.table, "node-b", "state") == "up"
        await pilot.press("colon", *"host node-h", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, HostScreen)
        info = text_of(app.screen.query_one("#host-info", Static))
        assert "down (new key)" in info and "SHA256:abc is not in known_hosts" in info


async def test_a_host_that_is_another_entrys_machine_says_duplicate(fake: ModuleType) -> None:
    """Issue 12, item 13: up, and excluded as another [[hosts]] entry's machine — the row says so at 80 columns
    and host detail has the whole reason, in the words `hosts` and the host.excluded event use."""
    engine = fake.FakeEngine(fake.small_snapshot())
    snap = engine.snapshot()
    why = duplicate_hosts(
        snap.config,
        {
            name: HostObservation(name, HostState.UP, 0.0, identity=MachineIdentity(None, "b00", "8:1", "/home/u/s"))
            for name in ("node-a", "node-b")
        },
    )["node-b"]
    node_b = replace(snap.hosts["node-b"], error=f"excluded from planning: {why}")
    engine.publish(replace(snap, hosts={**snap.hosts, "node-b": node_b}))
    app = LoadmasterApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        assert cell(screen.table, "node-b", "state") == "up: duplicate"
        assert cell(screen.table, "node-a", "state") == "up"
        await pilot.press("colon", *"host node-b", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, HostScreen)
        info = " ".join(text_of(app.screen.query_one("#host-info", Static)).split())
        assert "up (duplicate)" in info and 'the same machine as "node-a"' in info and "remove one from" in info
