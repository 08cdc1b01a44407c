"""The console's classes must not reuse a name Textual gives a meaning to.

Two defects came from that: `HelpScreen.disabled` (Textual's flag: under --read-only the help
froze) and `LoadmasterApp._log` (Textual's devtools writer). Public hooks such as `BINDINGS`,
`compose` or `on_mount` are overridden on purpose; private names and attributes stored on an
instance never are.
"""

from __future__ import annotations

from types import ModuleType

from textual.app import App
from textual.dom import DOMNode
from textual.screen import Screen

from console.app import LoadmasterApp
from console.screens.confirm import ConfirmScreen
from console.screens.events import EventsScreen
from console.screens.export import ExportScreen
from console.screens.failover import FailoverScreen
from console.screens.fleet import FleetScreen
from console.screens.help import HelpScreen
from console.screens.host import HostScreen
from console.screens.plan import PlanScreen
from console.screens.services import ServicesScreen
from console.screens.whatif import WhatIfScreen
from tests.console.fleet_data import small_events


def clashes(node: DOMNode, textual_base: type[DOMNode], bare: DOMNode) -> list[str]:
    """Names `node` sets on itself, Textual reactives its constructor changed, and private names its
    classes define, that Textual already has."""
    textual_names = set(dir(textual_base))
    automatic = set(vars(type("Probe", (textual_base,), {})))  # Textual sets these on every subclass
    stored = set(vars(node)) - set(vars(bare))
    # A reactive (`disabled`…) assigned in __init__ is stored as `_reactive_<name>`; compare what is
    # stored (reading the reactive itself would run its watchers on a node that is not mounted).
    mine, plain = vars(node), vars(bare)
    changed = {
        name for name in textual_base._reactives if mine.get(f"_reactive_{name}") != plain.get(f"_reactive_{name}")
    }
    own_private = {
        name
        for cls in type(node).__mro__
        if cls.__module__.startswith("console.")
        for name in vars(cls)
        if name.startswith("_") and not name.startswith("__") and name not in automatic
    }
    return sorted((stored | changed | own_private) & textual_names)


def test_the_app_reuses_no_textual_name(fake: ModuleType) -> None:
    app = LoadmasterApp(fake.FakeEngine(fake.small_snapshot(), small_events()))
    bare = type("Bare", (App,), {"TITLE": LoadmasterApp.TITLE})()  # the same title, set the documented way
    assert clashes(app, App, bare) == []


def test_no_screen_reuses_a_textual_name(fake: ModuleType) -> None:
    snapshot = fake.small_snapshot()
    screens: list[Screen[object]] = [
        FleetScreen(),
        ServicesScreen(),
        PlanScreen(),
        FailoverScreen(),
        EventsScreen(),
        HostScreen("node-a"),
        HelpScreen([("Fleet", [])], frozenset({"approve"})),
        ConfirmScreen("sure?"),
        ExportScreen("plan"),
        WhatIfScreen(snapshot.failover[0]),
    ]
    bare = Screen[object]()
    assert {type(s).__name__: clashes(s, Screen, bare) for s in screens if clashes(s, Screen, bare)} == {}


def test_the_check_sees_a_stored_flag_and_a_private_method() -> None:
    class Stores(Screen[None]):
        __module__ = "console.sample"

        def __init__(self) -> None:
            super().__init__()
            self.disabled = True

        def _refresh_layout(self) -> None:
            pass

    # (setting `disabled` makes Textual store more, `mouse_hover`…: listed too)
    assert {"_refresh_layout", "disabled"} <= set(clashes(Stores(), Screen, Screen[None]()))
