"""The operator console: a Textual app over the engine's snapshot, events and calls.

It talks only to `core.engine.api.EngineAPI`. One worker follows the engine's
event queue and posts `EngineChanged`; the app then reads the snapshot once,
builds a new `ConsoleView` and redraws the screen on top. Screens read that view
and post messages (console/messages.py) for what the operator asks; the app's
handlers call the engine, each call that may take time in a worker, and every
change is refused under --read-only before it reaches the engine.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import BindingType
from textual.command import Provider
from textual.css.query import NoMatches
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import DataTable

from console import messages
from console.actions import CHANGING_ACTIONS, bindings
from console.command_line import CommandError, parse
from console.derive import Capacities, HostLoad, requests_by_host, summarize
from console.history import CpuHistory
from console.palette import ConsoleCommands
from console.screens.base import LiveScreen
from console.screens.command import CommandScreen
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
from console.view import ConsoleView
from console.widgets.keyed_table import KeyedTable
from core import desired
from core.engine.api import EngineAPI, Snapshot
from core.engine.config_watch import ConfigWatch
from core.engine.events import Event, EventKind
from core.engine.planfile import plan_document
from core.errors import ConfigError, LoadmasterError
from core.model import ClusterConfig, HostState, Plan, ReplicaId
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


# `:` commands that only switch the view
MODE_OF = {"hosts": "fleet", "plan": "plan", "failover": "failover", "events": "events"}


class LoadmasterApp(App[None]):
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
        super().__init__()
        self.engine = engine
        self._read_only = read_only
        self._config_path = config_path
        self._watch: ConfigWatch | None = None
        self._reload_asked = False  # Ctrl+R or :reload: say what the file holds even if it did not change
        self._notice = ""  # the header's word on the cluster file: what the last reload changed, or its errors
        self._history = CpuHistory()
        self._events: deque[Event] = deque(maxlen=EVENT_LOG)
        self._event_count = 0
        self._planning = False
        self._loads: dict[str, HostLoad] = {}
        self._capacities = Capacities()
        self._record_events(engine.recent_events())
        self.view: ConsoleView = self._view_of(engine.snapshot(), None)

    @property
    def read_only(self) -> bool:
        return self.view.read_only

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

    @work(exclusive=True, group="config-watch")
    async def follow_config(self) -> None:
        assert self._watch is not None
        await self._watch.run()

    # --- following the cluster file (core.engine.config_watch, as the daemon does)

    def _adopt(self, config: ClusterConfig) -> None:
        asked, self._reload_asked = self._reload_asked, False
        if config == self.engine.snapshot().config and not asked:
            return  # already adopted (`:scale` adopts its own write at once; the watch then sees the same file)
        changes = self.engine.reload(config)  # the engine's config.reloaded event says what changed
        said = "; ".join(changes) if changes else "nothing that matters changed"
        self._set_notice(f"{time.strftime('%H:%M:%S')} {Path(config.source).name} reloaded: {said}")

    def _invalid(self, exc: ConfigError) -> None:
        problems = [str(p) for p in exc.problems]
        path = self._config_path
        self.engine.record(
            EventKind.CONFIG_INVALID,
            f"{path} is invalid ({len(problems)} errors); keeping the previous configuration: " + "; ".join(problems),
            data={"errors": problems},
        )
        # Every problem, one per line, as `loadmaster validate` prints them.
        self.notify("\n".join(problems), title=f"{path} is invalid: the previous configuration stays",
                    severity="error", timeout=30, markup=False)  # fmt: skip
        errors = f"{len(problems)} error{'s' if len(problems) != 1 else ''}"
        name = path.name if path is not None else "the cluster file"
        self._set_notice(f"{time.strftime('%H:%M:%S')} {name} has {errors}: previous config in force")

    def _set_notice(self, notice: str) -> None:
        self._notice = notice
        self.view = replace(self.view, notice=notice)
        self.redraw()

    def action_reload(self) -> None:
        if self._watch is None:
            self.notify("the demo's fleet is started once from its file: restart `loadmaster demo` to change it",
                        title="reload", severity="warning")  # fmt: skip
            return
        self._reload_asked = True
        self._watch.reload()

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

    def on_host_hold_asked(self, message: messages.HostHoldAsked) -> None:
        self._hold(message.host, message.verb)

    def on_replica_restart_asked(self, message: messages.ReplicaRestartAsked) -> None:
        self._restart(message.replica)

    def _restart(self, replica: str) -> None:
        if self._refused(f"restart {replica}"):
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.restart_replica(replica)

        question = f"Restart {replica}? It is stopped and started again where it runs (min_healthy kept)."
        self.push_screen(ConfirmScreen(question, confirm="Restart"), answered)

    @work(group="restart")
    async def restart_replica(self, replica: str) -> None:
        try:
            progress = await self.engine.restart_replica(ReplicaId.parse(replica))
        except LoadmasterError as exc:
            self.notify(str(exc), title="restart", severity="error", markup=False)
            return
        for error in progress.failed.values():
            self.notify(f"restart {replica}: {error}", title="restart", severity="error", markup=False)

    def on_command_line_opened(self, message: messages.CommandLineOpened) -> None:
        self._open_command_line(message.prefill)

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

    def action_vim(self, move: str) -> None:
        table = self.focused
        if isinstance(table, KeyedTable):
            {"down": partial(table.action_cursor, 1), "up": partial(table.action_cursor, -1),
             "top": partial(table.action_jump, 0), "bottom": partial(table.action_jump, -1)}[move]()  # fmt: skip
        elif isinstance(table, DataTable):
            {"down": table.action_cursor_down, "up": table.action_cursor_up,
             "top": table.action_scroll_top, "bottom": table.action_scroll_bottom}[move]()  # fmt: skip

    # --- the `:` command line

    def action_command_line(self) -> None:
        self._open_command_line("")

    def _open_command_line(self, prefill: str) -> None:
        if isinstance(self.screen, CommandScreen):
            return
        snap = self.view.snapshot
        hosts = [h.name for h in snap.config.hosts]
        services = [s.name for s in snap.config.services]
        self.push_screen(CommandScreen(hosts, services, prefill), self._run_command)

    def _run_command(self, line: str | None) -> None:
        if not line:
            return
        snap = self.view.snapshot
        try:
            command = parse(line, [h.name for h in snap.config.hosts], [s.name for s in snap.config.services])
        except CommandError as exc:
            self.notify(str(exc), title=f":{line}", severity="error", markup=False)
            return
        verb, args = command.verb, command.args
        if verb == "q":
            self.exit()
        elif verb in MODE_OF:
            self.action_go(MODE_OF[verb])
        elif verb == "svc":
            self.action_go("services")
            if args:
                self.screen.post_message(messages.ServiceChosen(args[0]))
        elif verb == "host":
            self.push_screen(HostScreen(args[0]))
        elif verb == "reload":
            self.action_reload()
        elif verb == "help":
            self.action_help()
        elif verb == "scale":
            self.scale(args[0], int(args[1]))
        elif verb == "restart":
            self._restart(args[0])
        else:  # drain, cordon, uncordon
            self._hold(args[0], verb)

    def _hold(self, host: str, verb: str) -> None:
        if self._refused(f"{verb} {host}"):
            return
        if verb != "drain":
            self.hold_host(host, verb)
            return
        running = len(self.view.snapshot.placement.on_host(host))
        question = f"Drain {host}? It takes no new replicas and its {running} replicas move off now (min_healthy kept)."

        def answered(yes: bool | None) -> None:
            if yes:
                self.hold_host(host, verb)

        self.push_screen(ConfirmScreen(question, confirm="Drain"), answered)

    @work(group="hold")
    async def hold_host(self, host: str, verb: str) -> None:
        try:
            if verb == "cordon":
                await self.engine.cordon(host)
            elif verb == "uncordon":
                await self.engine.uncordon(host)
            else:
                self.notify(f"draining {host}: its replicas move off")
                await self.engine.drain(host)
        except LoadmasterError as exc:
            self.notify(str(exc), title=verb, severity="error", markup=False)

    @work(thread=True, group="scale")
    def scale(self, service: str, replicas: int) -> None:
        """Written to the cluster file (core.desired keeps its comments); the engine adopts the file at once."""
        if self.read_only:
            self.call_from_thread(self._refused, f"scale {service}")
            return
        path = self._config_path
        if path is None:
            self.call_from_thread(self.notify, "the demo's services are started once from its file: edit it and "
                                  "restart `loadmaster demo`", title="scale", severity="warning")  # fmt: skip
            return
        try:
            before = desired.read(path)
            was = next((s.replicas for s in before.config.services if s.name == service), None)
            doc = desired.scale(path, service, replicas, expect=before.revision)
        except LoadmasterError as exc:
            self.call_from_thread(self.notify, str(exc), title="scale", severity="error", markup=False)
            return
        self.call_from_thread(self._scaled, service, was, replicas, doc)

    def _scaled(self, service: str, was: int | None, replicas: int, doc: desired.Document) -> None:
        self.engine.record(
            EventKind.SERVICE_SCALED,
            f"{service} scaled {was} → {replicas} in {doc.path} (console)",
            data={"service": service, "from": was, "to": replicas, "revision": doc.revision},
        )
        self._adopt(doc.config)

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

    def _refused(self, what: str) -> bool:
        if self.read_only:
            self.notify(f"{what}: refused, loadmaster runs with --read-only", severity="error")
        return self.read_only

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
