"""The operator console: a Textual app over the engine's snapshot, events and calls.

It talks only to `core.engine.api.EngineAPI`. One worker follows the engine's
event queue and posts `EngineChanged`; the app then reads the snapshot once,
builds a new `ConsoleView` and redraws the screen on top. Screens read that view
and post messages (console/messages.py) for what the operator asks; the app's
handlers call the engine, each call that may take time in a worker, and every
change is refused under --read-only before it reaches the engine.
"""

from __future__ import annotations

import gc
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.binding import BindingType
from textual.command import Provider
from textual.css.query import NoMatches
from textual.notifications import SeverityLevel
from textual.screen import Screen

from console import messages
from console.actions import CHANGING_ACTIONS, bindings
from console.derive import Capacities, HostLoad, requests_by_host, summarize
from console.history import CpuHistory
from console.operations import Operations
from console.palette import ConsoleCommands
from console.screens.base import LiveScreen
from console.screens.confirm import ConfirmScreen
from console.screens.detail import DetailScreen, action_detail
from console.screens.events import EventsScreen
from console.screens.failover import FailoverScreen
from console.screens.fleet import FleetScreen
from console.screens.help import HelpScreen, help_sections
from console.screens.host import HostScreen
from console.screens.plan import PlanScreen
from console.screens.services import ServicesScreen
from console.screens.whatif import WhatIfScreen
from console.terminal import ConsoleDriver
from console.view import ConsoleView
from core.engine.api import EngineAPI, Snapshot
from core.engine.config_watch import ConfigWatch
from core.engine.events import Event, EventKind
from core.engine.planfile import plan_document
from core.errors import LoadmasterError
from core.model import HostState, Plan
from core.sanitize import printable

EVENT_LOG = 2000  # events kept for the events screen
NOTIFY: dict[EventKind, SeverityLevel] = {
    EventKind.HOST_DOWN: "warning",
    EventKind.HOST_KEY_MISMATCH: "error",
    EventKind.HOST_MISBEHAVING: "error",
    EventKind.ACTION_FAILED: "error",
    EventKind.FAILOVER_STARTED: "warning",
    EventKind.APPLY_FINISHED: "information",
}


class LoadmasterApp(Operations):
    CSS_PATH = str(Path(__file__).with_name("app.tcss"))  # absolute: subclasses live elsewhere
    TITLE = "loadmaster"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {
        "fleet": FleetScreen,
        "services": ServicesScreen,
        "plan": PlanScreen,
        "failover": FailoverScreen,
        "events": EventsScreen,
    }
    DEFAULT_MODE = "fleet"
    BINDINGS: ClassVar[list[BindingType]] = bindings("app")
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {ConsoleCommands}

    def __init__(self, engine: EngineAPI, *, read_only: bool = False, config_path: Path | None = None) -> None:
        """`config_path`: the cluster file the engine's config came from, followed like the daemon does (None:
        nothing to follow, as in the demo, whose fleet is started once from the file)."""
        super().__init__(driver_class=ConsoleDriver)
        self.engine = engine
        self._read_only = read_only
        self._config_path = config_path
        self._watch: ConfigWatch | None = None
        self._reload_asked = False
        self._notice = ""
        self._history = CpuHistory()
        self._events: deque[Event] = deque(maxlen=EVENT_LOG)
        self._event_count = 0
        self._planning = False
        self._loads: dict[str, HostLoad] = {}
        self._capacities = Capacities()
        self._record_events(engine.recent_events())
        self.view: ConsoleView = self._view_of(engine.snapshot(), None)

    def _view_of(self, snapshot: Snapshot, previous: Snapshot | None) -> ConsoleView:
        """The next view: requests are summed again only when the placement or the config changed."""
        if previous is None or snapshot.placement is not previous.placement or snapshot.config is not previous.config:
            self._loads = requests_by_host(snapshot.config, snapshot.placement)
        if snapshot is not previous:
            self._history.record(snapshot)
        return ConsoleView(
            snapshot=snapshot,
            summary=summarize(snapshot, self._loads, self._capacities),
            loads=self._loads,
            read_only=self._read_only or snapshot.read_only,
            planning=self._planning,
            events=tuple(self._events),
            event_count=self._event_count,
            capacities=self._capacities,
            history=self._history,
            notice=self._notice,
        )

    def _record_events(self, events: Iterable[Event]) -> None:
        for event in events:
            self._events.append(event)
            self._event_count += 1

    # --- following the engine

    def on_mount(self) -> None:
        self.follow_engine()
        if self._config_path is not None:
            self._watch = ConfigWatch(self._config_path, self._adopt, self._invalid)
            self.follow_config()
        self.call_after_refresh(self._freeze_heap)

    def _freeze_heap(self) -> None:
        # What the first screen made (the styles, a row per host) lives as long as the console, and a full
        # collection walked it every few key presses: 45-90 ms on the event loop at 1,000 hosts, the worst of
        # the key-press-to-paint times. Frozen (after one collection, so that no garbage is kept), collections
        # walk only what came since: 7-27 ms (fake engine, 1,000 hosts). The engine freezes what it starts with.
        gc.collect()
        gc.freeze()

    def on_unmount(self) -> None:
        gc.unfreeze()  # what was frozen can be collected again once the console is gone (tests run many)

    @work(exclusive=True, group="engine-events")
    async def follow_engine(self) -> None:
        queue = self.engine.subscribe()
        try:
            while True:
                events = [await queue.get()]
                while not queue.empty():  # coalesce a burst into one redraw
                    events.append(queue.get_nowait())
                changes = tuple(e for e in events if e.kind is not EventKind.STATE_UPDATED)
                self.post_message(messages.EngineChanged(changes))
        finally:
            self.engine.unsubscribe(queue)

    def on_engine_changed(self, message: messages.EngineChanged) -> None:
        self._record_events(message.events)
        for event in message.events:
            severity = NOTIFY.get(event.kind)
            if severity is not None:
                # Event messages quote hosts: shown as written, not as markup.
                self.notify(printable(event.message), severity=severity, markup=False)
        snapshot = self.engine.snapshot()
        if snapshot is self.view.snapshot and not message.events:
            return
        self.view = self._view_of(snapshot, self.view.snapshot)
        self.redraw()

    def _set_planning(self, planning: bool) -> None:
        self._planning = planning
        self.view = replace(self.view, planning=planning)
        self.redraw()

    def redraw(self) -> None:
        """Draw the latest snapshot on the screen in front; screens behind catch up when they return."""
        if not self.screen_stack:  # starting or shutting down: no screen to draw on
            return
        if isinstance(self.screen, LiveScreen) and self.screen.is_mounted:
            try:
                self.screen.redraw()
            except NoMatches:  # a screen still composing draws itself when it resumes
                return

    # --- what the screens ask for

    def on_host_opened(self, message: messages.HostOpened) -> None:
        self.push_screen(HostScreen(message.host))

    def on_what_if_asked(self, message: messages.WhatIfAsked) -> None:
        self.what_if(message.host)

    def on_what_if_answered(self, message: messages.WhatIfAnswered) -> None:
        self.push_screen(WhatIfScreen(message.plan))

    def on_demo_host_toggled(self, message: messages.DemoHostToggled) -> None:
        obs = self.view.snapshot.hosts.get(message.host)
        if obs is not None and obs.state in (HostState.DOWN, HostState.SUSPECT):
            self.toggle_demo_host(message.host)  # bringing a host back needs no second thought
            return
        question = f"Stop demo host {message.host}? Its server and replicas end; watch it fail over."

        def answered(yes: bool | None) -> None:
            if yes:
                self.toggle_demo_host(message.host)

        self.push_screen(ConfirmScreen(question, confirm="Stop"), answered)

    def on_plan_approved(self, message: messages.PlanApproved) -> None:
        self.approve(message.plan)

    def on_plan_rejected(self, message: messages.PlanRejected) -> None:
        self.reject(message.plan)

    def on_plan_export_chosen(self, message: messages.PlanExportChosen) -> None:
        self.export(message.plan, message.path, message.fmt)

    def on_plan_action_opened(self, message: messages.PlanActionOpened) -> None:
        plan, index = message.plan, message.index
        snapshot = self.view.snapshot
        progress = snapshot.applying if snapshot.applying is not None and snapshot.applying.plan is plan else None
        capacities = {h.name: self.view.capacities.of(snapshot, h) for h in snapshot.config.hosts}
        try:
            document = plan_document(plan, snapshot.config, capacities)
        except ValueError:  # a plan without its basis: shown without the JSON
            document = None
        body = action_detail(plan.actions[index], index, plan, progress, document)
        self.push_screen(DetailScreen(f"Plan action {index + 1} of {len(plan.actions)}", body))

    def on_replan_requested(self, message: messages.ReplanRequested) -> None:
        self.replan(repack=message.repack)

    # --- help and the palette

    def action_go(self, mode: str) -> None:
        """A number key: that screen itself, from anywhere (a host or service detail on top is closed)."""
        if self.current_mode != mode:
            self.switch_mode(mode)
        while len(self.screen_stack) > 1:
            self.pop_screen()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        scope = getattr(self.screen, "SCOPE", None)
        self.push_screen(HelpScreen(help_sections(scope), CHANGING_ACTIONS if self.read_only else frozenset()))

    # --- calls into the engine, each in a worker; refusals and errors become notifications

    @work(exclusive=True, group="apply")
    async def approve(self, plan: Plan) -> None:
        if self._refused("approve"):
            return
        try:
            await self.engine.approve(plan)
        except LoadmasterError as exc:
            self.notify(str(exc), title="approve failed", severity="error")

    @work(exclusive=True, group="apply")
    async def reject(self, plan: Plan) -> None:
        if self._refused("reject"):
            return
        try:
            await self.engine.reject(plan)
        except LoadmasterError as exc:
            self.notify(str(exc), title="reject failed", severity="error")
        else:
            self.notify("plan rejected")

    @work(exclusive=True, group="plan")
    async def replan(self, repack: bool = False) -> None:
        self._set_planning(True)
        try:
            await self.engine.plan(repack=repack)
        except LoadmasterError as exc:
            self.notify(str(exc), title="re-plan", severity="error")
        finally:
            self._set_planning(False)

    @work(thread=True, group="export")
    def export(self, plan: Plan, path: str, fmt: str) -> None:
        try:
            self.engine.export(plan, path, fmt)
        except (LoadmasterError, OSError) as exc:
            self.call_from_thread(self.notify, str(exc), title="export failed", severity="error")
        else:
            self.call_from_thread(self.notify, f"plan written to {path} ({fmt})")

    @work(thread=True, exclusive=True, group="what-if")
    def what_if(self, host: str) -> None:
        """The engine may solve to answer: off the event loop."""
        try:
            plan = self.engine.what_if(host)
        except LoadmasterError as exc:
            self.call_from_thread(self.notify, str(exc), title="what if", severity="error")
            return
        self.post_message(messages.WhatIfAnswered(plan))  # thread-safe; the handler shows it

    @work(group="demo")
    async def toggle_demo_host(self, host: str) -> None:
        if self._refused("stop/start demo host"):
            return
        if not self.view.snapshot.demo:
            self.notify("only demo hosts can be stopped from the console", severity="error")
            return
        obs = self.view.snapshot.hosts.get(host)
        try:
            if obs is not None and obs.state in (HostState.DOWN, HostState.SUSPECT):
                self.notify(f"restarting {host}")
                await self.engine.restore_demo_host(host)
            else:
                self.notify(f"stopping {host}: watch it go suspect, then down, then fail over")
                await self.engine.stop_demo_host(host)
        except LoadmasterError as exc:
            self.notify(str(exc), title="demo", severity="error")
