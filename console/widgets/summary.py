"""The cluster summary under the title: host states, requested/capacity bars, bound, plan and mode badges."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from console.derive import FleetSummary
from console.formatting import cpu_bar, mem_bar
from core.engine.api import Snapshot
from core.sanitize import printable


def summary_text(
    snapshot: Snapshot, summary: FleetSummary, *, read_only: bool, width: int = 120, notice: str = ""
) -> Text:
    """Two lines that fit `width` (80 columns included): narrower bars and fewer words when it is small."""
    wide = width >= 100
    bar = 10 if wide else 4
    text = Text()
    text.append(f" {snapshot.config.name} ", style="bold reverse")
    text.append("  hosts " if wide else " ")
    text.append(f"{summary.up} up", style="green")
    text.append(" · ")
    text.append(f"{summary.suspect} suspect", style="yellow" if summary.suspect else "")
    text.append(" · ")
    text.append(f"{summary.down} down", style="bold red" if summary.down else "")
    text.append("   cpu " if wide else "  cpu ")
    text.append_text(cpu_bar(summary.requested.cpu, summary.capacity.cpu, width=bar))
    text.append("   mem " if wide else "  mem ")
    text.append_text(mem_bar(summary.requested.mem, summary.capacity.mem, width=bar))
    text.append("\n ")
    fits = "?" if snapshot.fits_on is None else str(snapshot.fits_on)
    hosts = " hosts" if wide else ""
    text.append(f"fits on {fits}{hosts}, runs on {snapshot.runs_on}", style="bold")
    text.append("   " if wide else "  ")
    if snapshot.applying is not None and not snapshot.applying.finished:
        progress = snapshot.applying
        text.append(f" applying {len(progress.done) + len(progress.failed)}/{progress.total} ", style="black on cyan")
    elif snapshot.pending is not None and snapshot.pending.actions:  # a plan with nothing to do is not pending work
        count = len(snapshot.pending.actions)
        text.append(f" plan pending: {count} action{'s' if count != 1 else ''} ", style="black on yellow")
    else:
        text.append("no pending plan", style="dim")
    if snapshot.solving:
        text.append("  solving…", style="cyan")
    text.append("   auto-apply " if wide else "  auto ")
    text.append("on" if snapshot.auto_apply else "off", style="bold" if snapshot.auto_apply else "dim")
    if snapshot.demo:
        text.append("   " if wide else " ")
        text.append(" DEMO ", style="black on magenta")
    standby = snapshot.controller
    if standby is not None and standby.role == "standby" and standby.leader is not None:
        # Clustered mode: the etcd election names the leader (an id from etcd: plain text, controls made visible).
        text.append("   " if wide else " ")
        text.append(f" STANDBY (leader: {printable(standby.leader[:80])}) ", style="bold white on red")
    elif standby is not None and standby.role == "standby" and standby.holder is not None:
        # The holder's id is read from the hosts' fence files: plain text (never markup), controls made visible.
        holder = printable(standby.holder.holder[:80])
        text.append("   " if wide else " ")
        text.append(f" STANDBY: {holder} holds the cluster (epoch {standby.holder.epoch}) ", style="bold white on red")
    elif read_only:
        text.append("   " if wide else " ")
        text.append(" READ-ONLY ", style="bold white on red")
    if notice:  # the cluster file's last reload: what changed, or why it was not adopted
        text.append("\n ")
        text.append(notice, style="bold red" if "previous config in force" in notice else "cyan")
    return text


class ClusterSummary(Static):
    """Redrawn by its screen whenever a new snapshot arrives, and when the terminal is resized."""

    _last: tuple[Snapshot, FleetSummary, bool, str] | None = None

    def show(self, snapshot: Snapshot, summary: FleetSummary, *, read_only: bool, notice: str = "") -> None:
        self._last = (snapshot, summary, read_only, notice)
        width = self.size.width or self.app.size.width
        self.update(summary_text(snapshot, summary, read_only=read_only, width=width, notice=notice))

    def on_resize(self) -> None:
        if self._last is not None:
            snapshot, summary, read_only, notice = self._last
            self.show(snapshot, summary, read_only=read_only, notice=notice)
