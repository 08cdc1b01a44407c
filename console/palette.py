"""The console's own command palette (Ctrl+P): each action of `console.actions` once, in its words.

Textual's default palette adds its own commands (Keys, Maximize, Focus Next, Theme…) that mean nothing
to an operator; `LoadmasterApp.COMMANDS` lists only this provider (Posting does the same).
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterator
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode
from textual.screen import Screen

from console.actions import ACTIONS, ConsoleAction


def available(app: DOMNode, screen: Screen[object]) -> Iterator[tuple[ConsoleAction, DOMNode]]:
    """The actions that work right now on `screen`, each with the node that runs it (never one refused)."""
    scope = getattr(screen, "SCOPE", None)
    for action in ACTIONS:
        if not action.palette:
            continue
        if action.scope == "app":
            node: DOMNode = app
        elif action.scope == scope or (action.scope == "screen" and scope is not None):
            node = screen
        else:
            continue
        if node.check_action(action.name, action.parameters) is True:
            yield action, node


class ConsoleCommands(Provider):
    def _commands(self) -> list[tuple[str, str, partial[Coroutine[Any, Any, bool]]]]:
        return [
            (action.title, f"key {action.shown_keys}", partial(self.app.run_action, action.action, node))
            for action, node in available(self.app, self.screen)
        ]

    async def discover(self) -> Hits:
        for title, help_text, run in self._commands():
            yield DiscoveryHit(title, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, run in self._commands():
            if (score := matcher.match(title)) > 0:
                yield Hit(score, matcher.highlight(title), run, text=title, help=help_text)
