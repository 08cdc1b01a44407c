"""The `:` command line (k9s): one line at the bottom, completion shown as you type, Tab or → takes it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.suggester import Suggester
from textual.widgets import Input, Static

from console.command_line import VERBS, complete
from console.screens.dialog import Dialog


class CommandSuggester(Suggester):
    def __init__(self, hosts: Sequence[str], services: Sequence[str]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.hosts, self.services = hosts, services

    async def get_suggestion(self, value: str) -> str | None:
        return complete(value, self.hosts, self.services)


class CommandInput(Input):
    """Tab completes. Taken from the key stream here, in order with the letters around it: a binding is looked up
    only once the key has bubbled to the app, by when the letters typed after it may be in the box already."""

    def __init__(self, hosts: Sequence[str], services: Sequence[str], value: str) -> None:
        super().__init__(
            value=value,
            placeholder="command (Tab completes; Esc cancels)",
            suggester=CommandSuggester(hosts, services),
            id="command",
            select_on_focus=False,  # a prefilled line (`s`: "scale web ") is continued, not replaced by the first key
        )
        self.hosts, self.services = hosts, services

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "tab":
            event.stop()
            event.prevent_default()
            self.action_complete()
            return
        await super()._on_key(event)

    def action_complete(self) -> None:
        # Computed here, not taken from the suggestion shown: that one arrives from a worker.
        done = complete(self.value, self.hosts, self.services)
        if done is not None:
            self.value = done
        self.action_end()


class CommandScreen(Dialog[str | None]):
    """Dismissed with the line typed (Enter) or None (Esc); the app parses and runs it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, hosts: Sequence[str], services: Sequence[str], prefill: str = "") -> None:
        super().__init__()
        self.hosts, self.services, self.prefill = hosts, services, prefill

    def compose(self) -> ComposeResult:
        yield Static(" ".join(f":{verb}" for verb in VERBS), id="command-help")
        yield CommandInput(self.hosts, self.services, self.prefill)

    def on_mount(self) -> None:
        self.query_one("#command", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip().removeprefix(":"))
