"""A replica's log in the console (issue 12, item 10): `l` on a replica in host detail shows its last lines from
its host, then what it writes, live; `/` filters the lines; Esc clears the filter, then closes (ending the stream).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from textual.pilot import Pilot
from textual.widgets import Static

from console.app import LoadmasterApp
from console.screens.host import HostScreen
from console.screens.logs import LogScreen
from tests.console.test_console_app import settle, text_of

SIZE = (100, 30)


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """`settle` waits for every worker, and the log's reader runs as long as the view is open: poll instead."""
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError("the log view did not get there")


async def test_l_shows_the_log_follows_it_filters_it_and_esc_ends_the_stream(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot())
    engine.logs.put_nowait(b"GET / 200\nGET /health 200\nPOST /login 500\n")
    app = LoadmasterApp(engine, read_only=True)  # reading a log changes nothing: read-only may
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("colon", *"host node-c", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, HostScreen)
        first = engine.snapshot().placement.on_host("node-c")[0]
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen) and len(app.screen.shown) == 3)
        screen = app.screen
        assert isinstance(screen, LogScreen) and ("replica_log", f"{first}@node-c") in engine.calls
        assert screen.shown == ("GET / 200", "GET /health 200", "POST /login 500")
        engine.logs.put_nowait(b"GET /a 200\nGET /b 5")  # live, with a line still being written
        await until(pilot, lambda: len(screen.shown) == 4)
        assert screen.shown[-1] == "GET /a 200"
        engine.logs.put_nowait(b"03\n\x1b[2Jevil\n")
        await until(pilot, lambda: len(screen.shown) == 6)
        assert screen.shown[-2:] == ("GET /b 503", "\\x1b[2Jevil")  # host-supplied: escapes shown, not sent
        await pilot.press("slash", *"5[0-9]{2}")
        await until(pilot, lambda: screen.shown == ("POST /login 500", "GET /b 503"))
        engine.logs.put_nowait(b"GET /c 502\nGET /d 200\n")  # new lines are filtered too
        await until(pilot, lambda: len(screen.kept) == 8)
        assert screen.shown == ("POST /login 500", "GET /b 503", "GET /c 502")
        await pilot.press("escape")  # clears the filter
        await until(pilot, lambda: len(screen.shown) == 8)
        assert isinstance(app.screen, LogScreen)
        await pilot.press("escape")  # closes, and the stream on the host ends with it
        await until(pilot, lambda: isinstance(app.screen, HostScreen) and engine.log_closed)


async def test_a_log_that_cannot_be_read_says_why(fake: ModuleType) -> None:
    from core.errors import LoadmasterError

    engine = fake.FakeEngine(fake.small_snapshot())

    def unreadable(*_args: object, **_kw: object) -> object:
        raise LoadmasterError("this fleet keeps no replica logs")

    engine.replica_log = unreadable
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("colon", *"host node-c", "enter")
        await settle(app, pilot)
        await pilot.press("l")
        await settle(app, pilot)  # the reader stopped at once
        assert isinstance(app.screen, LogScreen)
        title = text_of(app.screen.query_one("#log-title", Static))
        assert "stopped: this fleet keeps no replica logs" in title
