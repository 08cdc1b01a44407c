"""The engine's answer to "what if this host died now": shown, nothing changed."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from console.screens.dialog import Dialog
from console.widgets.failover_text import failover_text
from core.model import FailoverPlan


class WhatIfScreen(Dialog[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, plan: FailoverPlan) -> None:
        super().__init__()
        self.plan = plan

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Static(f"What if {self.plan.target} died now?", classes="title")
            yield Static(failover_text(self.plan, limit=50))
            yield Static(Text("Nothing was changed. Esc closes.", style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)
