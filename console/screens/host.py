"""One host: resources, its replicas with request against actual use, its recent events and its failover plan."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Static

from console.actions import bindings
from console.derive import HostLoad, capacity, down_reason, mem_used
from console.formatting import age, clock, cores, cpu_bar, literal, mem_bar, percent, size, sparkline
from console.messages import (
    DemoHostToggled,
    HostHoldAsked,
    HostKeyTrustAsked,
    ReplicaActionAsked,
    ReplicaLogAsked,
    ReplicaWedgeAsked,
    WhatIfAsked,
)
from console.screens.base import LiveScreen
from console.screens.fleet import STATE_STYLE
from console.view import ConsoleView
from console.widgets.failover_text import failover_text
from core.engine.api import Snapshot
from core.engine.events import Event
from core.model import HostState, ReplicaId, ReplicaStatus

RECENT_EVENTS = 8
# replica, state, cpu requested, cpu used, mem requested, mem used, pid, age: one row of the replicas table
ReplicaRow = tuple[str, Text, str, str, str, str, str, str]


class HostScreen(LiveScreen):
    SCOPE = "host"
    BINDINGS: ClassVar[list[BindingType]] = bindings(SCOPE)

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host
        self._rows: list[ReplicaRow] = []

    def compose_body(self) -> ComposeResult:
        yield Static(id="host-info")
        yield DataTable(id="host-replicas", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="host-bottom"):
            yield Static(id="host-failover", classes="panel")
            yield Static(id="host-events", classes="panel")

    def on_mount(self) -> None:
        table: DataTable[Any] = self.query_one("#host-replicas", DataTable)
        for label, key, width in (
            ("REPLICA", "replica", 12),
            ("STATE", "state", 9),
            ("CPU REQ", "cpu_req", 7),
            ("CPU USED", "cpu_used", 8),
            ("MEM REQ", "mem_req", 8),
            ("MEM RSS", "mem_rss", 8),
            ("PID", "pid", 7),
            ("UP", "up", 5),
        ):
            table.add_column(label, key=key, width=width)

    def show(self, view: ConsoleView) -> None:
        snapshot = view.snapshot
        try:
            host = snapshot.config.host(self.host)
        except KeyError:
            self.query_one("#host-info", Static).update(f"{self.host} is no longer in the cluster")
            return
        obs = snapshot.hosts.get(self.host)
        state = obs.state if obs else HostState.UNKNOWN
        cap = capacity(snapshot, host)
        load = view.loads.get(self.host, HostLoad())
        info = Text()
        info.append(f" {self.host} ", style="bold reverse")
        info.append(f"  {state.value}", style=STATE_STYLE.get(state, ""))
        if (reason := down_reason(obs)) is not None and reason != state.value:
            info.append(f" ({reason})", style=STATE_STYLE.get(state, ""))
        if (hold := snapshot.holds.get(self.host)) is not None:
            info.append(f" · {hold}", style="bold yellow")
        info.append(f"   {host.address}:{host.port}   " + " ".join(f"{k}={v}" for k, v in host.labels.items()))
        if obs is not None and obs.error:
            info.append("   ")
            info.append_text(literal(obs.error, style="red"))
        if obs is not None and obs.host_key is not None:
            info.append(f"\n presents host key {obs.host_key}: t trusts it (after a confirmation)", style="yellow")
        info.append("\n requested  cpu ")
        info.append_text(cpu_bar(load.cpu, cap.cpu, width=12))
        info.append("   mem ")
        info.append_text(mem_bar(load.mem, cap.mem, width=12))
        info.append(f"   {load.replicas} replicas")
        info.append("\n live       cpu ")
        info.append(f"{percent(obs.cpu_percent if obs else None):>4} ")
        info.append(sparkline(view.history.samples(self.host), 16), style="cyan")
        info.append(f"   mem {size(mem_used(obs))} used")
        seen = None if obs is None or obs.last_seen is None else snapshot.at - obs.last_seen
        info.append(f"   last seen {age(seen)} ago")
        if obs is not None and obs.enforcement is not None:  # unknown (no frame yet, an older probe): no line
            info.append("\n limits     ")
            if obs.enforcement == "none":
                info.append("none: this host cannot enforce replicas' cpu and mem", style="yellow")
            else:
                info.append(obs.enforcement + ("" if snapshot.config.enforce_limits else " (enforce_limits is off)"))
        self.query_one("#host-info", Static).update(info)
        self._show_replicas(snapshot)
        plan = next((p for p in snapshot.failover if p.scope == "host" and p.target == self.host), None)
        self.query_one("#host-failover", Static).update(
            failover_text(plan) if plan else Text("No failover plan computed for this host yet.", style="dim")
        )
        self._show_events(view.events)

    def _show_replicas(self, snapshot: Snapshot) -> None:
        obs = snapshot.hosts.get(self.host)
        reported: dict[ReplicaId, ReplicaStatus] = {s.replica: s for s in (obs.replicas if obs else ())}
        placed = snapshot.placement.on_host(self.host)
        resources = {s.name: s.resources for s in snapshot.config.services}
        rows: list[ReplicaRow] = []
        for replica in sorted(set(placed) | set(reported)):
            status = reported.get(replica)
            req = resources.get(replica.service)
            if status is None:
                state = Text("unknown", style="dim")
            elif status.running and status.health is not None:
                # What the service's check says; without a check a running replica shows "running".
                style = {"healthy": "green", "starting": "yellow"}.get(status.health.value, "bold red")
                state = Text(status.health.value, style=style)
            elif status.running:
                state = Text("running", style="green")
            else:
                state = Text("stopped", style="red")
            used = None if status is None or status.cpu_percent is None else round(status.cpu_percent * 10)
            started = None if status is None or status.started_at is None else snapshot.at - status.started_at
            rows.append(
                (
                    str(replica),
                    state,
                    cores(req.cpu if req else None),
                    cores(used),
                    size(req.mem if req else None),
                    size(status.rss if status else None),
                    str(status.pid) if status and status.pid else "—",
                    age(started),
                )
            )
        if rows == self._rows:
            return
        self._rows = rows
        table: DataTable[Any] = self.query_one("#host-replicas", DataTable)
        keep = table.cursor_row
        table.clear()  # a handful of rows: redrawing them all is cheaper than diffing
        for row in rows:
            table.add_row(literal(row[0]), *row[1:], key=row[0])  # replica names come from the hosts
        table.move_cursor(row=min(keep, max(0, len(rows) - 1)), animate=False)

    def _show_events(self, recent: Sequence[Event]) -> None:
        events = [e for e in recent if e.host == self.host][-RECENT_EVENTS:]
        text = Text("Recent events\n", style="bold")
        if not events:
            text.append("none", style="dim")
        for event in events:
            text.append(f"{clock(event.at)} ", style="dim")
            text.append(f"{event.kind.value:<16} ", style="cyan")
            text.append_text(literal(event.message))
            text.append("\n")
        self.query_one("#host-events", Static).update(text)

    def action_what_if(self) -> None:
        self.post_message(WhatIfAsked(self.host))

    def action_demo_toggle(self) -> None:
        self.post_message(DemoHostToggled(self.host))

    def action_hold(self, verb: str) -> None:
        self.post_message(HostHoldAsked(self.host, verb))

    def action_trust_key(self) -> None:
        self.post_message(HostKeyTrustAsked(self.host))

    def action_replica_log(self) -> None:
        table: DataTable[Any] = self.query_one("#host-replicas", DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            self.post_message(ReplicaLogAsked(self.host, str(key)))

    def action_replica(self, verb: str) -> None:
        if (replica := self._replica_under_cursor()) is not None:
            self.post_message(ReplicaActionAsked(replica, verb))

    def action_demo_wedge(self) -> None:
        if (replica := self._replica_under_cursor()) is not None:
            self.post_message(ReplicaWedgeAsked(replica))

    def _replica_under_cursor(self) -> str | None:
        table: DataTable[Any] = self.query_one("#host-replicas", DataTable)
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
