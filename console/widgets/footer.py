"""The screens' footer: Textual's, except that the keys it replaces are let go.

Each FooterKey binds `compact` to its Footer (`data_bind`), which adds a watcher to the Footer's list; Textual
prunes that list only when `compact` changes, and ours never does. The Footer composes its keys anew at every
screen switch and dialog, so the list, and every key it names, grew without end: 300 keys after 12 screen
switches and 10 dialogs, and the full garbage collections that walk them grew from 55 to 124 ms, on the event
loop, every few key presses (Textualize/textual#6666, open).
"""

from __future__ import annotations

from textual.widgets import Footer


class ConsoleFooter(Footer):
    async def recompose(self) -> None:
        await super().recompose()
        # Textual keeps a reactable's watchers in its `__watchers` attribute (textual.reactive._watch).
        for watchers in getattr(self, "__watchers", {}).values():
            watchers[:] = [(node, callback) for node, callback in watchers if node.is_attached]
