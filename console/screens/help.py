"""The keys, written for loadmaster: one entry per action of `console.actions`, keys as people type them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from console.actions import ACTIONS, SCOPE_TITLES, ConsoleAction
from console.screens.dialog import Dialog

KEY_WIDTH = 10


def help_sections(first: str | None) -> list[tuple[str, list[ConsoleAction]]]:
    """The registry by section: the screen in front first, then the other screens, then what works everywhere."""
    sections: dict[str, list[ConsoleAction]] = {}
    for action in ACTIONS:
        sections.setdefault(SCOPE_TITLES.get(action.scope, action.scope), []).append(action)
    front = SCOPE_TITLES.get(first or "", "")
    return sorted(sections.items(), key=lambda item: (item[0] != front, item[0] == "Everywhere"))


def help_text(sections: Sequence[tuple[str, Sequence[ConsoleAction]]], refused: frozenset[str]) -> Text:
    text = Text()
    for title, actions in sections:
        text.append(f"{title}\n", style="bold underline")
        for action in actions:
            style = "dim strike" if action.name in refused else ""
            text.append(f"  {action.shown_keys:<{KEY_WIDTH}} ", style="bold cyan")
            text.append(f"{action.title}\n", style=style)
        text.append("\n")
    if refused:
        text.append("Struck-through keys change the fleet and are disabled (--read-only).\n", style="dim")
    return text


class HelpScreen(Dialog[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, sections: Sequence[tuple[str, Sequence[ConsoleAction]]], refused: frozenset[str]) -> None:
        super().__init__()
        self.sections = sections
        # Not `disabled`: that is Textual's own flag, and a disabled screen neither focuses nor scrolls.
        self.refused = refused

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="help"):
            yield Static("loadmaster keys  (Esc closes)", classes="title")
            yield Static(help_text(self.sections, self.refused))

    def action_close(self) -> None:
        self.dismiss(None)
