"""What every full-size console screen shares: the summary on top, the footer, redraws and the read-only guard.

A screen draws from the app's `ConsoleView` (`self.view`) and posts a message (console/messages.py)
for anything the operator asks; it never calls the app's methods or reads its other attributes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual import events
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input

from console.actions import CHANGING_ACTIONS, bindings
from console.view import ConsoleView
from console.widgets.footer import ConsoleFooter
from console.widgets.summary import ClusterSummary

if TYPE_CHECKING:
    from console.app import LoadmasterApp


class LiveScreen(Screen[None]):
    """A screen drawn from the console's view; the app calls `redraw` when a new one arrives."""

    BINDINGS: ClassVar[list[BindingType]] = bindings("screen")
    SCOPE: ClassVar[str] = ""  # which actions of console.actions are this screen's

    def __init__(self) -> None:
        super().__init__()
        self._binding_state: tuple[object, ...] | None = None
        self._styled_for: bool | None = None  # the terminal's focus when this screen was suspended

    @property
    def view(self) -> ConsoleView:
        """The latest view: a frozen value the app replaces, never changed from here."""
        return cast("LoadmasterApp", self.app).view

    def compose(self) -> ComposeResult:
        yield ClusterSummary(id="summary")
        yield from self.compose_body()
        yield ConsoleFooter(compact=True)

    def compose_body(self) -> ComposeResult:
        raise NotImplementedError

    def on_screen_suspend(self) -> None:
        self._styled_for = self.app.app_focus

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        # Textual re-styles every node of a resumed screen, which also empties each widget's render caches: a
        # screen switch then costs a full restyle and re-render (~45 ms at 20 hosts). What a suspended screen
        # cannot follow by itself is the terminal's focus (CSS and theme changes are caught up by Textual's
        # `_css_update_count` check in switch_mode; class changes restyle their nodes wherever they are), so restyle
        # only when that changed.
        if self._styled_for == self.app.app_focus:
            event.refresh_styles = False
        self.redraw()

    def redraw(self) -> None:
        view = self.view
        snapshot = view.snapshot
        self.query_one(ClusterSummary).show(snapshot, view.summary, read_only=view.read_only, notice=view.notice)
        self.show(view)
        # The footer recomposes on every bindings refresh: only ask when what enables a key has changed.
        applying = snapshot.applying is not None and not snapshot.applying.finished
        state = (view.read_only, snapshot.demo, snapshot.pending is not None, applying, *self.binding_state())
        if state != self._binding_state:
            self._binding_state = state
            self.refresh_bindings()

    def show(self, view: ConsoleView) -> None:
        raise NotImplementedError

    def binding_state(self) -> tuple[object, ...]:
        """Anything else a screen's `check_action` depends on."""
        return ()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        view = self.view
        if action in CHANGING_ACTIONS and view.read_only:
            return False
        return not (action in ("demo_toggle", "load") and not view.snapshot.demo)

    def action_back(self) -> None:
        """Pop a pushed screen; from the top of another view, go back to the fleet."""
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
        elif self.app.current_mode != "fleet":
            self.app.switch_mode("fleet")
            while len(self.app.screen_stack) > 1:  # the fleet itself, not a detail left open on it
                self.app.pop_screen()


class FilteredScreen(LiveScreen):
    """A live screen with a `/` filter box (`#filter`) over its table; Esc clears the filter first."""

    @property
    def table(self) -> Widget:
        """The table the filter applies to; each screen returns its own (a read-only property there too)."""
        raise NotImplementedError

    def __init__(self) -> None:
        super().__init__()
        self._filter = ""

    @property
    def filter(self) -> str:
        return self._filter

    def arrange_rows(self) -> None:
        """Lay the table out again: only the rows that match `self.filter`, in the screen's order."""
        raise NotImplementedError

    def set_filter(self, pattern: str) -> None:
        if pattern != self._filter:
            self._filter = pattern
            self.arrange_rows()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.table.focus()
        if not event.value:
            event.input.display = False

    def clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.display = False
        self.set_filter("")
        self.table.focus()

    def action_back(self) -> None:
        if self.query_one("#filter", Input).display or self._filter:
            self.clear_filter()
        else:
            super().action_back()
