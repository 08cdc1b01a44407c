"""A detail view: the whole of something a table cuts (a plan action, an event, a service), scrollable.

Tables cut long text with `…`; Enter on the row opens this view with every word of it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from console.actions import bindings
from console.derive import AutoscaleView, ServiceView, joined
from console.formatting import clock, literal
from console.screens.dialog import Dialog
from core.engine.api import ApplyProgress
from core.engine.events import Event
from core.model import Action, ActionKind, Plan


class DetailScreen(Dialog[None]):
    SCOPE = "detail"
    BINDINGS: ClassVar[list[BindingType]] = bindings(SCOPE)

    def __init__(self, title: str, body: Text) -> None:
        super().__init__()
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="detail"):
            yield Static(literal(self.title_text), classes="title")
            yield Static(self.body, id="detail-body")
            yield Static(Text("Esc closes.", style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)


def _line(text: Text, value: object, style: str = "") -> None:
    """One line of host-supplied text, shown as written (escapes visible), then a real line break."""
    text.append_text(literal(value, style))
    text.append("\n")


def why_action(action: Action, plan: Plan) -> str:
    """Why the plan holds this action, in an operator's words."""
    reason = plan.reason
    if reason.startswith("failover:"):
        cause = f"{reason.partition(':')[2]} is down: its replicas are placed again elsewhere"
    elif reason == "repack":
        cause = "a repack asked for the fewest hosts, even if running replicas move"
    elif reason == "drift":
        cause = "what runs differs from the placement loadmaster keeps"
    else:
        cause = "the config or the fleet changed and the placement is planned again with the fewest moves"
    if action.kind is ActionKind.START:
        what = f"{action.replica} is desired but runs nowhere; {action.to_host} has room for it"
    elif action.kind is ActionKind.STOP:
        what = f"{action.replica} is no longer wanted on {action.from_host} (scaled down or replaced)"
    elif action.kind is ActionKind.RESTART:
        what = f"the definition of {action.replica.service} changed: {action.replica} restarts to run the new one"
    else:
        what = f"{action.replica} leaves {action.from_host} for {action.to_host}"
    return f"{what}. Plan reason: {reason} — {cause}."


def action_detail(
    action: Action, index: int, plan: Plan, progress: ApplyProgress | None, document: dict[str, Any] | None
) -> Text:
    text = Text()
    text.append("Action\n", style="bold")
    _line(text, f"  {index + 1}. {action}")
    text.append("Why\n", style="bold")
    _line(text, f"  {why_action(action, plan)}")
    text.append("Status\n", style="bold")
    if progress is None:
        text.append("  pending approval\n")
    elif action in progress.failed:
        _line(text, f"  failed: {progress.failed[action]}", style="red")
    elif action in progress.done:
        text.append("  done\n", style="green")
    elif action in progress.running:
        text.append("  running\n", style="cyan")
    else:
        text.append("  waiting\n")
    if plan.unplaced:
        count = len(plan.unplaced)
        text.append(f"{count} replica{'s' if count != 1 else ''} stay unplaced\n", style="bold red")
        for replica, why in sorted(plan.unplaced.items()):
            _line(text, f"  {replica}: {why}", style="red")
    text.append("The plan as it would be exported (JSON)\n", style="bold")
    if document is None:
        text.append("  (this plan carries no basis and cannot be exported)\n", style="dim")
    else:
        for row in json.dumps(document, indent=2).splitlines():
            _line(text, row)
    return text


def event_detail(event: Event) -> Text:
    text = Text()
    text.append(f"{clock(event.at)}  ", style="dim")
    text.append(f"{event.kind.value}\n", style="bold")
    if event.host:
        _line(text, f"host     {event.host}")
    if event.replica:
        _line(text, f"replica  {event.replica}")
    text.append("\n")
    _line(text, event.message)
    if event.data:
        text.append("\nFields\n", style="bold")
        for key, value in event.data.items():
            _line(text, f"  {key} = {value}")
    return text


def autoscale_line(scale: AutoscaleView) -> str:
    ratio = "not measured yet" if scale.ratio is None else f"{scale.ratio:.2f} now"
    return f"{scale.min}–{scale.max} replicas, cpu target {scale.target:g}, {ratio}"


def service_detail(view: ServiceView, events: Sequence[Event]) -> Text:
    text = Text(f"{view.running}/{view.desired} running, {view.healthy} healthy")
    if view.starting or view.unhealthy:
        text.append(f", {view.starting} starting, {view.unhealthy} unhealthy", style="yellow")
    text.append("\n")
    text.append("Constraints\n", style="bold")
    for constraint in view.constraints or ("none",):
        _line(text, f"  {constraint}")
    text.append("By zone  ", style="bold")
    text.append(joined(f"{z} {n}" for z, n in view.by_zone.items()) + "\n")
    if view.autoscale is not None:
        text.append("Autoscale  ", style="bold")
        _line(text, autoscale_line(view.autoscale))
        last = view.autoscale.last
        _line(text, "  no decision yet" if last is None else f"  last: {clock(last.at)} {last.message}")
    text.append("Replicas\n", style="bold")
    for host, replicas in view.by_host.items():
        _line(text, f"  {host:<12} {joined(replicas)}")
    if view.unplaced:
        text.append(f"{len(view.unplaced)} unplaced\n", style="bold red")
        for replica, why in view.unplaced.items():
            _line(text, f"  {replica}: {why}", style="red")
    mine = [e for e in events if e.replica is not None and e.replica.service == view.name][-20:]
    text.append("Recent events\n", style="bold")
    if not mine:
        text.append("  none\n", style="dim")
    for event in mine:
        text.append(f"  {clock(event.at)} ", style="dim")
        text.append(f"{event.kind.value:<16} ", style="cyan")
        _line(text, event.message)
    return text
