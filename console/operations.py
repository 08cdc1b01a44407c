"""What the operator does to the fleet from the console: the `:` command line, following the cluster file,
drain/cordon/uncordon, scale, and restarting or stopping one replica.

`Operations` is the base of `LoadmasterApp` (console/app.py), which owns the view, the engine follower and
the screens; this half owns the calls that change the fleet. Each is refused under --read-only before it
reaches the engine, asks first when it stops something, and runs in a worker when it waits.
"""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial
from pathlib import Path

from textual import work
from textual.app import App
from textual.widgets import DataTable

from console import messages
from console.command_line import CommandError, parse
from console.screens.command import CommandScreen
from console.screens.confirm import ConfirmScreen
from console.screens.host import HostScreen
from console.screens.logs import LogScreen
from console.view import ConsoleView
from console.widgets.keyed_table import KeyedTable
from core import desired
from core.engine.api import EngineAPI
from core.engine.config_watch import ConfigWatch
from core.engine.events import EventKind
from core.errors import ConfigError, LoadmasterError
from core.model import ClusterConfig, HostState, ReplicaId

LOG_LINES = 200  # the backlog a log view starts with

# `:` commands that only switch the view
MODE_OF = {"hosts": "fleet", "plan": "plan", "failover": "failover", "events": "events"}


class Operations(App[None]):
    """The fleet-changing half of the console app; `LoadmasterApp` sets these attributes in its __init__."""

    engine: EngineAPI
    view: ConsoleView
    _config_path: Path | None  # the cluster file followed (None: the demo, started once from its file)
    _watch: ConfigWatch | None
    _reload_asked: bool  # Ctrl+R or :reload: say what the file holds even if it did not change
    _notice: str  # the header's word on the cluster file: what the last reload changed, or its errors

    @property
    def read_only(self) -> bool:
        return self.view.read_only

    def redraw(self) -> None:
        raise NotImplementedError

    def action_go(self, mode: str) -> None:
        raise NotImplementedError

    def action_help(self) -> None:
        raise NotImplementedError

    def _refused(self, what: str) -> bool:
        if self.read_only:
            self.notify(f"{what}: refused, loadmaster runs with --read-only", severity="error")
        return self.read_only

    # --- following the cluster file (core.engine.config_watch, as the daemon does)

    @work(exclusive=True, group="config-watch")
    async def follow_config(self) -> None:
        assert self._watch is not None
        await self._watch.run()

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

    # --- drain, cordon, uncordon; restart or stop one replica

    def on_host_hold_asked(self, message: messages.HostHoldAsked) -> None:
        self._hold(message.host, message.verb)

    def on_replica_wedge_asked(self, message: messages.ReplicaWedgeAsked) -> None:
        if not self._refused(f"wedge {message.replica}"):
            self.wedge_replica(message.replica)

    @work(group="demo")
    async def wedge_replica(self, replica: str) -> None:
        try:
            host = await self.engine.wedge_demo_replica(ReplicaId.parse(replica))
        except LoadmasterError as exc:
            self.notify(str(exc), title="wedge", severity="error", markup=False)
            return
        self.notify(f"{replica} wedged on {host}: its check fails until it is restarted", title="demo", markup=False)

    def on_replica_action_asked(self, message: messages.ReplicaActionAsked) -> None:
        self._replica_action(message.replica, message.verb)

    def _replica_action(self, replica: str, verb: str) -> None:
        """`restart` or `stop` one replica, after asking: both end a running process."""
        if self._refused(f"{verb} {replica}"):
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.act_on_replica(replica, verb)

        question = {
            "restart": f"Restart {replica}? It is stopped and started again where it runs (min_healthy kept).",
            "stop": f"Stop {replica}? The cluster file still wants it, so the next plan places it again "
            "(min_healthy kept).",
        }[verb]
        self.push_screen(ConfirmScreen(question, confirm=verb.capitalize()), answered)

    @work(group="replica")
    async def act_on_replica(self, replica: str, verb: str) -> None:
        call = self.engine.restart_replica if verb == "restart" else self.engine.stop_replica
        try:
            progress = await call(ReplicaId.parse(replica))
        except LoadmasterError as exc:
            self.notify(str(exc), title=verb, severity="error", markup=False)
            return
        for error in progress.failed.values():
            self.notify(f"{verb} {replica}: {error}", title=verb, severity="error", markup=False)

    # --- trusting a host key

    def on_host_key_trust_asked(self, message: messages.HostKeyTrustAsked) -> None:
        host = message.host
        if self._refused(f"trust {host}'s host key"):
            return
        obs = self.view.snapshot.hosts.get(host)
        fingerprint = obs.host_key if obs is not None else None
        if obs is None or fingerprint is None:
            self.notify(f"{host} presents no host key that was refused: nothing to trust", title="trust")
            return
        changed = obs.state is HostState.KEY_MISMATCH
        question = (
            f"{host}'s host key CHANGED. It now presents\n\n  {fingerprint}\n\nTrust it only if you know the host "
            "was reinstalled or re-keyed; otherwise this may be someone else. The old key is removed from the "
            "known_hosts loadmaster records keys in."
            if changed
            else f"{host} presents a host key that is not in known_hosts:\n\n  {fingerprint}\n\nTrust it only if "
            "it is the key you expect (compare with `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` on the host)."
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self.trust_key(host, fingerprint)

        self.push_screen(ConfirmScreen(question, confirm="Trust"), answered)

    def trust_key(self, host: str, fingerprint: str) -> None:
        try:
            written = self.engine.trust_host_key(host, fingerprint)
        except LoadmasterError as exc:
            self.notify(str(exc), title="trust", severity="error", markup=False)
            return
        self.notify(f"{host}: host key {fingerprint} recorded in {written}; connecting again", markup=False)

    # --- a replica's log

    def on_replica_log_asked(self, message: messages.ReplicaLogAsked) -> None:
        screen = LogScreen(message.host, message.replica, LOG_LINES)
        reader = self.read_log(screen)
        self.push_screen(screen, lambda _: reader.cancel())  # closing the view ends the stream on the host

    @work(group="log")
    async def read_log(self, screen: LogScreen) -> None:
        """Chunks from the host into the screen; the first one or a quiet second means the backlog is shown."""
        try:
            stream = self.engine.replica_log(screen.host, ReplicaId.parse(screen.replica), screen.lines, follow=True)
            async for chunk in stream:
                screen.add(chunk)
                screen.following()
        except LoadmasterError as exc:
            screen.ended(f"stopped: {exc}")
        else:
            screen.ended("ended")

    # --- the `:` command line, scale, vim keys

    def on_command_line_opened(self, message: messages.CommandLineOpened) -> None:
        self._open_command_line(message.prefill)

    def action_vim(self, move: str) -> None:
        table = self.focused
        if isinstance(table, KeyedTable):
            {"down": partial(table.action_cursor, 1), "up": partial(table.action_cursor, -1),
             "top": partial(table.action_jump, 0), "bottom": partial(table.action_jump, -1)}[move]()  # fmt: skip
        elif isinstance(table, DataTable):
            {"down": table.action_cursor_down, "up": table.action_cursor_up,
             "top": table.action_scroll_top, "bottom": table.action_scroll_bottom}[move]()  # fmt: skip

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
            if not self._refused(f"scale {args[0]}"):  # said at once, not from the worker's thread
                self.scale(args[0], int(args[1]))
        elif verb in ("restart", "stop"):
            self._replica_action(args[0], verb)
        elif verb == "load":
            self.set_load(args[0], float(args[1]))
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

    @work(group="load")
    async def set_load(self, service: str, share: float) -> None:
        """Demo fleets: the service's replicas burn `share` of their cpu request (core.hostlink.demoload)."""
        if self._refused(f"set the load of {service}"):
            return
        try:
            said = await self.engine.set_demo_load(service, share)
        except LoadmasterError as exc:
            self.notify(str(exc), title="load", severity="error", markup=False)
            return
        self.notify(said, title="load")

    @work(thread=True, group="scale")
    def scale(self, service: str, replicas: int) -> None:
        """Written to the cluster file (core.desired keeps its comments); the engine adopts the file at once.
        The caller has refused it under --read-only."""
        path = self._config_path
        if path is None:
            self.call_from_thread(self.notify, "a demo with --hosts beyond its file does not write the file: edit "
                                  "it and restart `loadmaster demo`", title="scale", severity="warning")  # fmt: skip
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
