"""Host-supplied text in the console: shown literally, never as markup, never as terminal control (issue 10, defect 14).

The console parsed what hosts said as markup (`[bold red]` from a host restyled the screen, and
`[@click=app.quit]` made a link that runs an action) and passed escape sequences through to the
terminal. Here a host reports a replica whose name is hostile, an error that is, and the engine
reports events that quote it; every screen that shows them must show the characters themselves.
"""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType

from textual.pilot import Pilot

from console.app import LoadmasterApp
from console.screens.host import HostScreen
from core.engine.events import EventKind
from core.model import Action, ActionKind, ReplicaId, ReplicaStatus
from core.sanitize import printable
from tests.console.fleet_data import small_events

SIZE = (200, 50)
EVIL = "[bold red]ev\x1b[2Jil\u202e[@click=app.quit]x[/]"
SHOWN = printable(EVIL)  # what the operator must read: the brackets as written, the controls as escapes


def screen_text(app: LoadmasterApp) -> str:
    """Every character the console would send to the terminal for the current screen."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


def assert_literal(app: LoadmasterApp, where: str) -> None:
    text = screen_text(app)
    assert "\x1b" not in text and "\u202e" not in text, f"{where}: control characters reached the terminal"
    assert SHOWN[:40] in text, f"{where}: {SHOWN[:40]!r} is not on the screen as written:\n{text}"


async def settle(pilot: Pilot[None]) -> None:
    for _ in range(3):
        await pilot.pause()


async def test_host_supplied_text_is_shown_literally_on_every_screen(fake: ModuleType) -> None:
    snapshot = fake.small_snapshot()
    evil = ReplicaId(EVIL, 0)
    node_c = snapshot.hosts["node-c"]
    reported = ReplicaStatus(evil, "node-c", pid=4242, running=True, generation="g", started_at=snapshot.at - 5)
    hosts = {**snapshot.hosts, "node-c": replace(node_c, error=EVIL, replicas=(*node_c.replicas, reported))}
    assert snapshot.pending is not None
    pending = replace(snapshot.pending, actions=(*snapshot.pending.actions, Action(ActionKind.STOP, evil, "node-c")))
    engine = fake.FakeEngine(replace(snapshot, hosts=hosts, pending=pending), small_events())
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        engine.emit(EventKind.HOST_MISBEHAVING, f"node-c is misbehaving: {EVIL}", host="node-c")
        await settle(pilot)
        (toast,) = [n for n in app._notifications if "misbehaving" in n.message]
        assert not toast.markup and SHOWN in toast.message  # Textual then shows its message as plain text
        await pilot.press("5")
        await settle(pilot)
        assert_literal(app, "the events screen")
        await pilot.press("3")
        await settle(pilot)
        assert_literal(app, "the plan screen (a stop action)")
        await pilot.press("1")
        await settle(pilot)
        await pilot.press("down", "down", "enter")  # node-c
        await settle(pilot)
        assert isinstance(app.screen, HostScreen) and app.screen.host == "node-c"
        text = screen_text(app)
        # the replica's row (cut to its column), the host's error and the event (wrapped) each show it
        assert text.count("[bold") >= 3 and text.count("il\\u202e[@click") >= 2, text
        assert_literal(app, "the host screen")
        assert app.is_running, "a [@click=app.quit] link from a host must not exist, let alone quit"
