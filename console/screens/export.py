"""Ask where to write the plan and in which format: the file's extension decides, as on the CLI."""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, RadioButton, RadioSet, Static

from console.screens.dialog import Dialog

FORMATS = ("json", "csv", "toml")


def named_format(path: Path) -> str | None:
    """The format a file name asks for by its extension (as `loadmaster plan --out` reads it), if any."""
    suffix = path.suffix.lstrip(".").lower()
    return suffix if suffix in FORMATS else None


def export_name(cluster: str, at: float) -> str:
    """The offered file name: `plan-<cluster>-<local time>.json`."""
    return f"plan-{cluster}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(at))}.json"


class ExportScreen(Dialog[tuple[str, str] | None]):
    """Dismisses with `(absolute path, format)`, or None when cancelled. A known extension (.json, .csv,
    .toml) sets the format, like `loadmaster plan --out`; choosing a format renames the extension."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name_offered = name

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Export the plan", classes="title")
            yield Input(self.name_offered, id="export-path")
            with RadioSet(id="export-format"):
                for i, fmt in enumerate(FORMATS):
                    yield RadioButton(fmt, value=i == 0, id=f"fmt-{fmt}")
            yield Static("", id="export-error")
            with Horizontal(classes="buttons"):
                yield Button("Export (enter)", variant="primary", id="export")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#export-path", Input).focus()

    @property
    def fmt(self) -> str:
        pressed = self.query_one("#export-format", RadioSet).pressed_index
        return FORMATS[max(pressed, 0)]

    def on_radio_set_changed(self, _event: RadioSet.Changed) -> None:
        box = self.query_one("#export-path", Input)
        path = Path(box.value)
        if named_format(path) not in (None, self.fmt):
            box.value = str(path.with_suffix(f".{self.fmt}"))

    def on_input_changed(self, event: Input.Changed) -> None:
        """Typing `plan.csv` picks csv: the name and the format never disagree."""
        named = named_format(Path(event.value.strip()))
        if named not in (None, self.fmt):
            self.query_one(f"#fmt-{named}", RadioButton).value = True

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "export":
            self._submit()
        else:
            self.dismiss(None)

    def _submit(self) -> None:
        path = self.query_one("#export-path", Input).value.strip()
        if not path:
            self.query_one("#export-error", Static).update("Enter a file name.")
            return
        target = Path(path).expanduser().absolute()
        self.dismiss((str(target), named_format(target) or self.fmt))

    def action_cancel(self) -> None:
        self.dismiss(None)
