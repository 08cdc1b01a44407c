"""The console's demo load control: `l` on a service (or `:load NAME SHARE`) sets the share of its cpu request its
replicas burn (Engine.set_demo_load → core.hostlink.demoload); refused with the reason outside a demo."""

from __future__ import annotations

from types import ModuleType

import pytest
from textual.widgets import Input

from console.app import LoadmasterApp
from console.command_line import CommandError, parse
from console.screens.command import CommandScreen
from console.screens.services import ServicesScreen
from tests.console.test_console_ops import notes, settle

SIZE = (120, 40)


def test_load_takes_a_service_and_a_share() -> None:
    hosts, services = ["node-a"], ["web", "db"]
    assert parse("load web 0.9", hosts, services).args == ("web", "0.9")
    with pytest.raises(CommandError, match="'lots' is not a share of the cpu request"):
        parse("load web lots", hosts, services)
    with pytest.raises(CommandError, match="is not a share"):
        parse("load web -1", hosts, services)
    with pytest.raises(CommandError, match=r":load takes SERVICE SHARE, e.g. :load web 0.9"):
        parse("load web", hosts, services)
    with pytest.raises(CommandError, match="no service named 'wbe'"):
        parse("load wbe 0.5", hosts, services)


async def test_l_on_a_service_sets_its_demo_load(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot(demo=True))
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        assert isinstance(app.screen, ServicesScreen)
        await pilot.press("l")
        assert isinstance(app.screen, CommandScreen)
        assert app.screen.query_one("#command", Input).value == "load web "
        await pilot.press("0", "full_stop", "9")
        assert app.screen.query_one("#command", Input).value == "load web 0.9"
        await pilot.press("enter")
        await settle(app, pilot)
        assert ("set_demo_load", "web", 0.9) in engine.calls
        assert "web: each replica burns 0.9 of its request" in notes(app)


async def test_outside_a_demo_there_is_no_load_key_and_the_command_says_why(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot())
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "l")
        assert isinstance(app.screen, ServicesScreen)  # the key does nothing on a real fleet
        await pilot.press("colon", *"load web 0", "full_stop", "5", "enter")
        await settle(app, pilot)
        assert any("not a demo fleet: cannot set the load of web" in n for n in notes(app))


async def test_read_only_refuses_the_load(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot(demo=True, read_only=True))
    app = LoadmasterApp(engine, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("colon", *"load web 0", "full_stop", "5", "enter")
        await settle(app, pilot)
        assert not [c for c in engine.calls if c[0] == "set_demo_load"]
        assert any("set the load of web: refused" in n for n in notes(app))
