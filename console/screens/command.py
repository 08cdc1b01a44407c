"""The `:` command line (k9s): one line at the bottom, completion shown as you type, Tab or → takes it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Input, Static

from console.command_line import VERBS, complete


class CommandSuggester(Suggester):
    def __init__(self, hosts: Sequence[str], services: Sequence[str]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.hosts, self.services = hosts, services

    async def get_suggestion(self, value: str) -> str | None:
        return complete(value, self.hosts, self.services)


class CommandScreen(ModalScreen[str | None]):
    """Dismissed with the line typed (Enter) or None (Esc); the app parses and runs it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("tab", "complete", "Complete", priority=True),
    ]

    def __init__(self, hosts: Sequence[str], services: Sequence[str], prefill: str = "") -> None:
        super().__init__()
        self.hosts, self.services, self.prefill = hosts, services, prefill

    def compose(self) -> ComposeResult:
        yield Static(" ".join(f":{verb}" for verb in VERBS), id="command-help")
        yield Input(
            placeholder="command (Tab completes; Esc cancels)",
            suggester=CommandSuggester(self.hosts, self.services),
            value=self.prefill,
            id="command",
        )

    def on_mount(self) -> None:
        self.query_one("#command", Input).focus()

    def action_complete(self) -> None:
        box = self.query_one("#command", Input)
        box.action_end()
        box.action_cursor_right()  # at the end, → takes the suggestion shown

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip().removeprefix(":"))
