"""The pending plan: its actions, per-host utilization before → after, the solver's account, and apply progress."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, ProgressBar, Static

from console.actions import bindings
from console.derive import Utilization, action_counts, hosts_freed, plan_utilization, services_touched
from console.formatting import age, cut, literal
from console.messages import PlanActionOpened, PlanApproved, PlanExportChosen, PlanRejected, ReplanRequested
from console.plan_words import solver_words
from console.screens.base import LiveScreen
from console.screens.confirm import ConfirmScreen
from console.screens.export import ExportScreen, export_name
from console.view import ConsoleView
from console.widgets.spinner import Spinner
from core.engine.api import ApplyProgress, Snapshot
from core.model import Action, Plan, SolverStatus


def confirm_text(plan: Plan) -> str:
    return (
        f"Approve and apply this plan now?\n\n"
        f"{action_counts(plan)}\n"
        f"services touched: {', '.join(services_touched(plan)) or 'none'}"
    )


ACTION_WIDTH = 40
STATUS_WIDTH = 24


def action_status(action: Action, progress: ApplyProgress | None) -> Text:
    if progress is None:
        return Text("pending", style="dim")
    if action in progress.failed:
        return cut(f"✗ {progress.failed[action]}", STATUS_WIDTH, style="bold red")
    if action in progress.done:
        return Text("✓ done", style="green")
    if action in progress.running:
        return Text("⟳ running", style="cyan")
    return Text("waiting", style="dim")


def _percent(used: int, cap: int) -> str:
    return f"{100 * used / cap:.0f}%" if cap else "—"


def utilization_cells(row: Utilization, freed: bool) -> tuple[object, ...]:
    cpu = f"{_percent(row.before.cpu, row.capacity.cpu):>4} → {_percent(row.after.cpu, row.capacity.cpu):>4}"
    mem = f"{_percent(row.before.mem, row.capacity.mem):>4} → {_percent(row.after.mem, row.capacity.mem):>4}"
    style = "green" if freed else ("bold" if row.before != row.after else "dim")
    return (
        Text(row.host, style=style),
        Text(cpu, style=style),
        Text(mem, style=style),
        Text(f"{row.before.replicas:>2} → {row.after.replicas:>2}", style=style),
        Text("freed" if freed else "", style="bold green"),
    )


def plan_line(plan: Plan) -> Text:
    """The plan's second line: what it does, or why it does nothing — never "nothing to change" next to a
    solver that could not place everything, and never silent about replicas waiting for their host."""
    text = Text()
    if plan.actions:
        text.append(f"{action_counts(plan)} · services: ")
        text.append_text(literal(", ".join(services_touched(plan))))  # names from the hosts' records
    elif plan.unplaced:
        text.append(f"no action can help: {len(plan.unplaced)} unplaced have nowhere to go (listed below)", "bold red")
    elif not plan.waiting:
        text.append("nothing to change: the fleet already runs this placement", style="green")
    if plan.waiting:
        hosts = sorted({plan.current.host_of(r) or "?" for r in plan.waiting})
        text.append(" · " if plan.actions or plan.unplaced else "", style="yellow")
        text.append(f"{len(plan.waiting)} wait for unreachable {', '.join(hosts)}", style="yellow")
    return text


class PlanScreen(LiveScreen):
    SCOPE = "plan"
    BINDINGS: ClassVar[list[BindingType]] = bindings(SCOPE)

    def __init__(self) -> None:
        super().__init__()
        self._plan: Plan | None = None
        self._statuses: dict[int, Text] = {}

    def compose_body(self) -> ComposeResult:
        yield Static(id="plan-summary")
        yield Spinner(id="solving")
        with Horizontal(id="plan-body"):
            yield DataTable(id="plan-actions", cursor_type="row", zebra_stripes=True)
            yield DataTable(id="plan-util", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="plan-unplaced-box"):
            yield Static(id="plan-unplaced")
        with Horizontal(id="apply-row"):
            yield ProgressBar(id="apply-progress", show_eta=False)
            yield Static(id="apply-label")

    def on_resize(self) -> None:
        """Below 120 columns the utilization goes under the actions, so neither is cut."""
        self.set_class(self.size.width < 120, "narrow")

    def on_mount(self) -> None:
        actions: DataTable[Any] = self.query_one("#plan-actions", DataTable)
        for label, key, width in (
            ("#", "n", 3),
            ("ACTION", "action", ACTION_WIDTH),
            ("STATUS", "status", STATUS_WIDTH),
        ):
            actions.add_column(label, key=key, width=width)
        util: DataTable[Any] = self.query_one("#plan-util", DataTable)
        for label, key, width in (("HOST", "host", 10), ("CPU", "cpu", 11), ("MEM", "mem", 11), ("REPL", "repl", 7)):
            util.add_column(label, key=key, width=width)
        util.add_column("", key="freed", width=5)
        self.query_one("#solving", Spinner).display = False

    @property
    def plan(self) -> Plan | None:
        """The plan on screen: the pending one, else the one being (or last) applied."""
        snapshot = self.view.snapshot
        if snapshot.pending is not None:
            return snapshot.pending
        return snapshot.applying.plan if snapshot.applying is not None else None

    def show(self, view: ConsoleView) -> None:
        snapshot = view.snapshot
        plan = self.plan
        progress = snapshot.applying if plan is not None and snapshot.applying is not None else None
        if progress is not None and plan is not None and progress.plan.basis != plan.basis:
            progress = None
        if plan is not self._plan:
            self._plan = plan
            self._fill(snapshot, plan)
        self._show_summary(snapshot, plan)
        self._show_statuses(plan, progress)
        self._show_progress(progress)
        self._show_solving(snapshot, view.planning)

    def _fill(self, snapshot: Snapshot, plan: Plan | None) -> None:
        actions: DataTable[Any] = self.query_one("#plan-actions", DataTable)
        util: DataTable[Any] = self.query_one("#plan-util", DataTable)
        actions.clear()
        util.clear()
        self._statuses = {}
        unplaced = self.query_one("#plan-unplaced", Static)
        if plan is None:
            unplaced.update("")
            return
        for i, action in enumerate(plan.actions):
            actions.add_row(str(i + 1), cut(action, ACTION_WIDTH), action_status(action, None), key=str(i))
        freed = set(hosts_freed(plan))
        for row in plan_utilization(snapshot, plan):
            util.add_row(*utilization_cells(row, row.host in freed), key=row.host)
        text = Text()
        if plan.unplaced:
            count = len(plan.unplaced)
            text.append(f"{count} replica{'s' if count != 1 else ''} stay unplaced (all listed):\n", style="bold red")
            for replica, why in sorted(plan.unplaced.items()):
                text.append(f"  {replica}: {why}\n", style="red")
        if plan.waiting:
            count = len(plan.waiting)
            text.append(f"{count} replica{'s' if count != 1 else ''} wait for their host (no action touches them):\n",
                        style="bold yellow")  # fmt: skip
            for replica, why in sorted(plan.waiting.items()):
                text.append(f"  {replica}: {why}\n", style="yellow")
        unplaced.update(text)

    def _show_summary(self, snapshot: Snapshot, plan: Plan | None) -> None:
        text = Text()
        if plan is None:
            text.append("No pending plan.", style="bold")
            text.append("  Press p to compute one now.", style="dim")
        else:
            freed = hosts_freed(plan)
            pending = snapshot.pending is plan
            text.append(f"{'Pending plan' if pending else 'Last applied plan'} ({plan.reason})", style="bold")
            text.append(f"  computed {age(snapshot.at - plan.created_at)} ago\n", style="dim")
            text.append_text(plan_line(plan))
            text.append("\n")
            style = {SolverStatus.OPTIMAL: "green", SolverStatus.FEASIBLE: "yellow"}.get(plan.status, "red")
            text.append("solver ")
            text.append(plan.status.value, style=f"bold {style}")
            text.append(solver_words(plan, "Shift+R repacks"))
            text.append(f" · frees {len(freed)} hosts", style="bold green" if freed else "")
            if freed:
                text.append(f" ({', '.join(freed)})", style="green")
        self.query_one("#plan-summary", Static).update(text)

    def _show_statuses(self, plan: Plan | None, progress: ApplyProgress | None) -> None:
        if plan is None:
            return
        actions: DataTable[Any] = self.query_one("#plan-actions", DataTable)
        for i, action in enumerate(plan.actions):
            status = action_status(action, progress)
            if self._statuses.get(i) != status:
                self._statuses[i] = status
                actions.update_cell(str(i), "status", status)

    def _show_progress(self, progress: ApplyProgress | None) -> None:
        row = self.query_one("#apply-row")
        row.display = progress is not None
        if progress is None:
            return
        finished = len(progress.done) + len(progress.failed)
        self.query_one("#apply-progress", ProgressBar).update(total=progress.total, progress=finished)
        label = Text(f" {finished}/{progress.total} actions")
        if progress.failed:
            label.append(f" · {len(progress.failed)} failed", style="bold red")
        label.append(" · finished" if progress.finished else " · applying…", style="dim")
        self.query_one("#apply-label", Static).update(label)

    def _show_solving(self, snapshot: Snapshot, planning: bool) -> None:
        spinner = self.query_one("#solving", Spinner)
        if not (snapshot.solving or planning):
            spinner.stop()
            return
        message = "solving…"
        progress = snapshot.solve_progress
        if progress is not None:
            message += f" {progress.elapsed:.1f}s"
            if progress.best_hosts is not None:
                message += f" · best so far {progress.best_hosts} hosts"
            if progress.lower_bound is not None:
                message += f" · bound {progress.lower_bound}"
            message += f" · {progress.solutions} solutions"
        spinner.start(message)

    # --- keys

    def binding_state(self) -> tuple[object, ...]:
        return (self.view.planning, self.view.snapshot.solving)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        allowed = super().check_action(action, parameters)
        if not allowed:
            return allowed
        view = self.view
        snapshot = view.snapshot
        applying = snapshot.applying is not None and not snapshot.applying.finished
        if action in ("approve", "reject", "export"):
            return True  # always answered: when there is nothing to do, the key says why (`idle_reason`)
        if action in ("replan", "repack"):
            return None if snapshot.solving or view.planning or applying else True
        return True

    def idle_reason(self, action: str) -> str | None:
        """Why `a`, `r` or `e` does nothing now, in words; None when it can act."""
        snapshot = self.view.snapshot
        progress = snapshot.applying
        if action == "export":
            return None if self.plan is not None else "no plan to export: press p to compute one"
        if progress is not None and not progress.finished:
            return f"the plan is being applied ({len(progress.done) + len(progress.failed)}/{progress.total} actions)"
        if snapshot.pending is None:
            if progress is not None:
                done, failed = len(progress.done), len(progress.failed)
                return f"this plan was already applied ({done} done, {failed} failed): press p for a new one"
            return "no pending plan: press p to compute one"
        if action == "approve" and not snapshot.pending.actions:
            return "nothing to approve: the fleet already runs this placement"
        return None

    def _idle(self, action: str) -> bool:
        reason = self.idle_reason(action)
        if reason is not None:
            self.notify(reason, title=action)
        return reason is not None

    def action_approve(self) -> None:
        plan = self.view.snapshot.pending
        if self._idle("approve") or plan is None:
            return

        def approved(yes: bool | None) -> None:
            if yes:
                self.post_message(PlanApproved(plan))

        self.app.push_screen(ConfirmScreen(confirm_text(plan), confirm="Approve"), approved)

    def action_reject(self) -> None:
        plan = self.view.snapshot.pending
        if not self._idle("reject") and plan is not None:
            self.post_message(PlanRejected(plan))

    def action_export(self) -> None:
        plan = self.plan
        if self._idle("export") or plan is None:
            return

        def chosen(choice: tuple[str, str] | None) -> None:
            if choice is not None:
                self.post_message(PlanExportChosen(plan, *choice))

        self.app.push_screen(ExportScreen(export_name(plan.cluster, self.view.snapshot.at)), chosen)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "plan-actions":
            self.action_details()

    def action_details(self) -> None:
        """The action under the cursor, whole: why it exists, its status and the plan's JSON."""
        plan = self.plan
        table: DataTable[Any] = self.query_one("#plan-actions", DataTable)
        if plan is None or not plan.actions or not table.row_count:
            return
        self.post_message(PlanActionOpened(plan, min(table.cursor_row, len(plan.actions) - 1)))

    def action_replan(self) -> None:
        self.post_message(ReplanRequested())

    def action_repack(self) -> None:
        """A plan onto the fewest hosts even if running replicas move (p keeps moves fewest)."""
        self.post_message(ReplanRequested(repack=True))
