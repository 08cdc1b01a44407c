"""Every key, per screen, generated from the bindings themselves so it cannot go stale."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


def help_text(sections: Sequence[tuple[str, Sequence[Binding]]], refused: frozenset[str]) -> Text:
    text = Text()
    for title, bindings in sections:
        text.append(f"{title}\n", style="bold underline")
        for binding in bindings:
            keys = ", ".join(binding.key.split(","))
            style = "dim strike" if binding.action in refused else ""
            text.append(f"  {keys:<14}", style="bold cyan")
            text.append(f"{binding.description}\n", style=style)
        text.append("\n")
    if refused:
        text.append("Struck-through keys change the fleet and are disabled (--read-only).\n", style="dim")
    return text


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, sections: Sequence[tuple[str, Sequence[Binding]]], refused: frozenset[str]) -> None:
        super().__init__()
        self.sections = sections
        # Not `disabled`: that is Textual's own flag, and a disabled screen neither focuses nor scrolls.
        self.refused = refused

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="help"):
            yield Static("loadmaster keys", classes="title")
            yield Static(help_text(self.sections, self.refused))

    def action_close(self) -> None:
        self.dismiss(None)
