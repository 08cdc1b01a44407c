"""Issue 12, items 1 and 10 in the console (Pilot): following the cluster file, the `:` command line with
completion, vim movement, drain/cordon/uncordon, scale through core.desired, the demo key that asks first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static

from console.app import LoadmasterApp
from console.screens.command import CommandScreen
from console.screens.confirm import ConfirmScreen
from console.screens.events import EventsScreen
from console.screens.fleet import FleetScreen
from console.screens.host import HostScreen
from console.screens.services import ServicesScreen
from core import config as config_io
from core.engine.engine import Engine
from core.engine.events import EventKind
from core.engine.journal import Journal
from core.errors import ConfigError
from tests.engine.conftest import SMALL
from tests.fake_fleet import FakeFleet

SIZE = (120, 40)
FILE = "# the test cluster: comments must survive every write\n" + SMALL.replace(
    'name = "web"', '# the front end\nname = "web"'
)


async def settle(app: LoadmasterApp, pilot: Pilot[None]) -> None:
    busy = [w for w in app.workers if w.group not in ("engine-events", "config-watch")]
    if busy:
        await app.workers.wait_for_complete(busy)
    await pilot.pause()
    await pilot.pause()


async def until(pilot: Pilot[None], predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.05)


def header(app: LoadmasterApp) -> str:
    return str(app.screen.query_one("#summary", Static).render())


def notes(app: LoadmasterApp) -> list[str]:
    return [n.message for n in app._notifications]


@pytest.fixture
async def real(tmp_path: Path) -> AsyncIterator[tuple[Engine, Path]]:
    """The real engine over an in-memory fleet, from a cluster file on disk."""
    path = tmp_path / "cluster.toml"
    path.write_text(FILE)
    config = config_io.load(path)
    engine = Engine(config, FakeFleet(config), Journal(tmp_path / "journal.db"), workers=1)
    await engine.start(first_contact_timeout=1)
    yield engine, path
    await engine.close(grace=5)


async def test_an_edit_of_the_cluster_file_is_followed_and_said(real: tuple[Engine, Path]) -> None:
    engine, path = real
    app = LoadmasterApp(engine, config_path=path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        path.write_text(
            FILE.replace("replicas = 3", "replicas = 5").replace('settle = "0s"', 'settle = "0s"\nauto_apply = true')
        )
        await until(pilot, lambda: "reloaded" in header(app))
        assert "web scaled 3 → 5; policy auto_apply false → true" in header(app)
        assert engine.snapshot().config.service("web").replicas == 5 and engine.snapshot().auto_apply

        def reloaded() -> list[str]:  # the event reaches the view through the event worker, after the header
            return [e.message for e in app.view.events if e.kind is EventKind.CONFIG_RELOADED]

        await until(pilot, lambda: bool(reloaded()))
        assert "web scaled 3 → 5" in reloaded()[-1]
        # the engine plans from the new file: with auto-apply now on, what fits is placed (web has
        # max_per_host = 1 on three hosts: three web and the db)
        await until(pilot, lambda: len(engine.snapshot().placement.assignments) == 4)

        # a broken file: every error shown, as validate prints them; the old config stays
        path.write_text(
            FILE.replace('cpu = 1\nmem = "1GiB"', 'cpu = "lots"\nmem = "1GiB"').replace("replicas = 1", "replicas = -1")
        )
        await until(pilot, lambda: "previous config in force" in header(app))
        with pytest.raises(ConfigError) as raised:
            config_io.load(path)
        expected = [str(p) for p in raised.value.problems]  # what validate prints
        assert len(expected) == 2
        assert "\n".join(expected) in notes(app)
        assert "cluster.toml has 2 errors: previous config in force" in header(app)
        assert engine.snapshot().config.service("web").replicas == 5
        invalid = [e for e in app.view.events if e.kind is EventKind.CONFIG_INVALID]
        assert invalid and invalid[-1].data["errors"] == expected

        # fixed, then asked for with :reload (changed or not)
        path.write_text(FILE)
        await until(pilot, lambda: "web scaled 5 → 3" in header(app))
        await pilot.press("colon", *"reload", "enter")
        await until(pilot, lambda: "nothing that matters changed" in header(app))


async def test_scale_from_the_command_line_writes_the_file_keeping_its_comments(real: tuple[Engine, Path]) -> None:
    engine, path = real
    app = LoadmasterApp(engine, config_path=path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("colon")
        assert isinstance(app.screen, CommandScreen)
        box = app.screen.query_one("#command", Input)
        await pilot.press("s", "c", "tab")  # completes to the verb
        assert box.value == "scale"
        await pilot.press("space", "w", "tab")  # then to the service
        assert box.value == "scale web"
        await pilot.press("space", "8", "enter")
        await settle(app, pilot)
        await until(pilot, lambda: engine.snapshot().config.service("web").replicas == 8)
        text = path.read_text()
        assert "replicas = 8" in text and "# the front end" in text and text.startswith("# the test cluster")
        assert any(e.kind is EventKind.SERVICE_SCALED and "web scaled 3 → 8" in e.message for e in app.view.events)
        # `s` on the services screen fills the command in
        await pilot.press("2")
        assert isinstance(app.screen, ServicesScreen)
        await pilot.press("s")
        assert isinstance(app.screen, CommandScreen)
        assert app.screen.query_one("#command", Input).value.startswith("scale ")
        await pilot.press("escape")
        # a service that does not exist: said, nothing written
        before = path.read_text()
        await pilot.press("colon", *"scale wbe 3", "enter")
        await settle(app, pilot)
        assert any("no service named 'wbe'; the services are: web, db" in m for m in notes(app))
        assert path.read_text() == before


async def test_commands_switch_screens_and_refuse_what_means_nothing(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot())
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("colon", *"events", "enter")
        assert isinstance(app.screen, EventsScreen)
        await pilot.press("colon", *"hosts", "enter")
        assert isinstance(app.screen, FleetScreen)
        await pilot.press("colon", *"host node-c", "enter")
        assert isinstance(app.screen, HostScreen) and app.screen.host == "node-c"
        await pilot.press("escape", "colon", *"svc db", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ServicesScreen)
        assert app.screen.selected == "db"
        await pilot.press("colon", *"frobnicate", "enter")
        await pilot.press("colon", *"drain node-zz", "enter")
        await pilot.press("colon", *"scale web many", "enter")
        await until(pilot, lambda: len(notes(app)) >= 3)  # each refusal is a notification, posted after its key
        said = notes(app)
        assert any("unknown command 'frobnicate'; the commands are: hosts, host, svc" in m for m in said)
        assert any("no host named 'node-zz'; the hosts are: node-a" in m for m in said)
        assert any("'many' is not a number of replicas" in m for m in said)
        assert engine.calls == []
        await pilot.press("colon", *"q", "enter")
    assert app.return_code == 0


async def test_drain_asks_first_cordon_and_uncordon_do_not(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot())
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("d")  # on node-a
        assert isinstance(app.screen, ConfirmScreen) and "Drain node-a?" in app.screen.question
        await pilot.press("n")
        assert engine.calls == []
        await pilot.press("d", "y")
        await settle(app, pilot)
        assert engine.calls == [("drain", "node-a")] and engine.snapshot().holds == {"node-a": "drained"}
        await pilot.press("j", "c")  # vim down to node-b, cordon it
        await settle(app, pilot)
        assert engine.calls[-1] == ("cordon", "node-b")
        await pilot.press("colon", *"uncordon node-a", "enter")
        await settle(app, pilot)
        assert engine.calls[-1] == ("uncordon", "node-a") and engine.snapshot().holds == {"node-b": "cordoned"}


async def test_read_only_refuses_drain_scale_and_holds(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot())
    app = LoadmasterApp(engine, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("d", "c", "u")
        for line in ("drain node-a", "cordon node-a", "scale web 9"):
            await pilot.press("colon", *line, "enter")
            await settle(app, pilot)
        assert engine.calls == []
        assert sum("refused, loadmaster runs with --read-only" in m for m in notes(app)) == 3


async def test_vim_keys_move_in_the_table_in_front(fake: ModuleType) -> None:
    app = LoadmasterApp(fake.FakeEngine(fake.small_snapshot()))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.screen.table
        await pilot.press("j", "j")
        assert table.cursor_key == "node-c"
        await pilot.press("k")
        assert table.cursor_key == "node-b"
        await pilot.press("G")
        assert table.cursor_key == "node-h"
        await pilot.press("g")
        assert table.cursor_key == "node-a"


async def test_restart_one_replica_asks_first(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot())
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("colon", *"host node-c", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, HostScreen)
        first = engine.snapshot().placement.on_host("node-c")[0]
        await pilot.press("r")
        assert isinstance(app.screen, ConfirmScreen) and f"Restart {first}?" in app.screen.question
        await pilot.press("y")
        await settle(app, pilot)
        assert engine.calls == [("restart_replica", str(first))]
        await pilot.press("colon", *"restart wbe/0", "enter")
        await settle(app, pilot)
        assert any("'wbe/0' is not a replica: write SERVICE/INDEX" in m for m in notes(app))
        assert len(engine.calls) == 1


async def test_stop_one_replica_asks_first_and_is_refused_under_read_only(fake: ModuleType) -> None:
    """Issue 12, item 10: stop one replica (Ctrl+K in host detail, `:stop web/0`), after a confirmation."""
    engine = fake.FakeEngine(fake.small_snapshot())
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("colon", *"host node-c", "enter")
        await settle(app, pilot)
        first = engine.snapshot().placement.on_host("node-c")[0]
        await pilot.press("ctrl+k")
        assert isinstance(app.screen, ConfirmScreen) and f"Stop {first}?" in app.screen.question
        await pilot.press("escape")  # cancelled: nothing stopped
        await settle(app, pilot)
        assert engine.calls == []
        await pilot.press("colon", *f"stop {first}", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(app, pilot)
        assert engine.calls == [("stop_replica", str(first))]
    ro = LoadmasterApp(fake.FakeEngine(fake.small_snapshot()), read_only=True)
    async with ro.run_test(size=SIZE) as pilot:
        await pilot.press("colon", *"stop web/0", "enter")
        await settle(ro, pilot)
        assert not isinstance(ro.screen, ConfirmScreen)
        assert any("stop web/0: refused, loadmaster runs with --read-only" in m for m in notes(ro))
