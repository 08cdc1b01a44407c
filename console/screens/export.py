"""Ask where to write the plan and in which format."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, RadioButton, RadioSet, Static

FORMATS = ("json", "csv", "toml")


class ExportScreen(ModalScreen[tuple[str, str] | None]):
    """Dismisses with `(path, format)`, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, stem: str) -> None:
        super().__init__()
        self.stem = stem

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Export the plan", classes="title")
            yield Input(f"{self.stem}.json", id="export-path")
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
        if path.suffix.lstrip(".") in FORMATS:
            box.value = str(path.with_suffix(f".{self.fmt}"))

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
        self.dismiss((str(Path(path).expanduser()), self.fmt))

    def action_cancel(self) -> None:
        self.dismiss(None)
