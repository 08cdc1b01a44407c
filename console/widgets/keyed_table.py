"""A keyed, fixed-width table for large live data, drawn with Textual's line API.

DataTable re-renders every visible cell whenever any cell changes (its render
caches are keyed on a table-wide update counter), which at 1,000 hosts costs
more than a whole frame budget. This table keeps one rendered line per row and
redraws only rows whose cells changed; rows are shown, hidden and reordered by
key without being rebuilt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

Cell = str | Text


@dataclass(frozen=True, slots=True)
class TableColumn:
    key: str
    label: str
    width: int
    priority: int = 0  # when the table is too narrow, columns with the highest priority number go first


def _cell_text(value: Cell, width: int) -> Text:
    text = value.copy() if isinstance(value, Text) else Text(value)
    text.truncate(width, overflow="ellipsis")
    if text.justify == "right":
        text.pad_left(width - text.cell_len)
    text.pad_right(width - text.cell_len)
    return text


class KeyedTable(ScrollView, can_focus=True):
    """Rows by key, their cells fetched from `cells(key)` only when drawn.

    `show(keys)` picks and orders the visible rows; `changed(keys)` says which rows'
    cells are new, and only those lines are drawn again (if they are on screen).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select", "Select", show=False),
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,ctrl+home", "jump(0)", "First", show=False),
        Binding("end,ctrl+end", "jump(-1)", "Last", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "keyed-table--header",
        "keyed-table--cursor",
        "keyed-table--even",
        "keyed-table--odd",
    }
    DEFAULT_CSS = """
    KeyedTable { height: 1fr; }
    KeyedTable > .keyed-table--header { text-style: bold; background: $panel; }
    KeyedTable > .keyed-table--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
    KeyedTable:blur > .keyed-table--cursor { background: $block-cursor-blurred-background; }
    KeyedTable > .keyed-table--even { background: $surface; }
    KeyedTable > .keyed-table--odd { background: $surface-lighten-1; }
    """

    cursor_row: reactive[int] = reactive(0, always_update=True)

    class RowSelected(Message):
        def __init__(self, table: KeyedTable, key: str) -> None:
            super().__init__()
            self.table, self.key = table, key

    class RowHighlighted(Message):
        def __init__(self, table: KeyedTable, key: str) -> None:
            super().__init__()
            self.table, self.key = table, key

    class HeaderSelected(Message):
        def __init__(self, table: KeyedTable, column: str) -> None:
            super().__init__()
            self.table, self.column = table, column

    def __init__(
        self, columns: Sequence[TableColumn], cells: Callable[[str], Sequence[Cell]], *, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.columns = list(columns)
        self._labels: dict[str, Cell] = {c.key: c.label for c in columns}
        self._index = {c.key: i for i, c in enumerate(columns)}
        self._cells = cells
        self._order: list[str] = []  # visible rows, in display order
        self._position: dict[str, int] = {}
        self._lines: dict[str, tuple[tuple[bool, bool], Strip]] = {}  # key → ((cursor, odd), line)
        self._cell_strips: dict[tuple[str, int], tuple[Cell, Strip]] = {}  # (key, column) → (value, drawn)
        self._shown = list(range(len(self.columns)))  # indexes of the columns that fit, in order
        self._width = sum(c.width + 2 for c in columns)

    # --- columns that fit

    @property
    def shown_columns(self) -> list[str]:
        return [self.columns[i].key for i in self._shown]

    def fit_columns(self, width: int) -> None:
        """Keep the columns that fit in `width`, dropping the least important first (never priority 0),
        so the host's name and state never scroll out of sight on an 80-column terminal."""
        keep = list(range(len(self.columns)))
        by_priority = sorted(keep, key=lambda i: (-self.columns[i].priority, -i))
        total = sum(c.width + 2 for c in self.columns)
        for i in by_priority:
            if total <= width or self.columns[i].priority == 0:
                break
            keep.remove(i)
            total -= self.columns[i].width + 2
        if keep != self._shown:
            self._shown = keep
            self._width = total
            self._lines.clear()
            self.virtual_size = Size(self._width, len(self._order) + 1)
            self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self.fit_columns(self.scrollable_content_region.width or event.size.width)

    # --- data

    @property
    def row_count(self) -> int:
        return len(self._order)

    @property
    def visible_keys(self) -> list[str]:
        return list(self._order)

    def get_cell(self, key: str, column: str) -> Cell:
        return self._cells(key)[self._index[column]]

    def changed(self, keys: Iterable[str]) -> None:
        """These rows' cells changed: redraw them when (and only if) they are on screen."""
        top = int(self.scroll_y)
        bottom = top + self.scrollable_content_region.height
        redraw = False
        for key in keys:
            self._lines.pop(key, None)
            row = self._position.get(key)
            redraw = redraw or (row is not None and top <= row < bottom)
        if redraw:
            self.refresh()

    def show(self, keys: Iterable[str]) -> None:
        """Show exactly these rows, in this order; the cursor stays on its row when that row is still shown."""
        current = self.cursor_key
        self._order = list(keys)
        self._position = {k: i for i, k in enumerate(self._order)}
        if len(self._cell_strips) > 2 * len(self.columns) * max(len(self._order), 100):
            self._cell_strips.clear()  # rows that left for good: a filter only hides, so this is rare
        self.virtual_size = Size(self._width, len(self._order) + 1)
        fallback = min(self.cursor_row, max(0, len(self._order) - 1))
        row = fallback if current is None else self._position.get(current, fallback)
        self.cursor_row = row
        self.refresh()

    def set_label(self, column: str, label: Cell) -> None:
        self._labels[column] = label
        self.refresh(Region(0, 0, self.size.width, 1))

    # --- cursor

    @property
    def cursor_key(self) -> str | None:
        if 0 <= self.cursor_row < len(self._order):
            return self._order[self.cursor_row]
        return None

    def move_cursor_to(self, key: str) -> None:
        if key in self._position:
            self.cursor_row = self._position[key]

    def validate_cursor_row(self, row: int) -> int:
        return max(0, min(row, len(self._order) - 1))

    def watch_cursor_row(self, old: int, new: int) -> None:
        for index in (old, new):
            if 0 <= index < len(self._order):
                self._lines.pop(self._order[index], None)
        self._scroll_cursor_into_view()
        self.refresh()
        if (key := self.cursor_key) is not None:
            self.post_message(self.RowHighlighted(self, key))

    def _scroll_cursor_into_view(self) -> None:
        visible = max(1, self.scrollable_content_region.height - 1)
        if self.cursor_row < self.scroll_y:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= self.scroll_y + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False, immediate=True)

    def action_cursor(self, step: int) -> None:
        self.cursor_row += step

    def action_page(self, direction: int) -> None:
        self.cursor_row += direction * max(1, self.scrollable_content_region.height - 2)

    def action_jump(self, row: int) -> None:
        self.cursor_row = row if row >= 0 else len(self._order) - 1

    def action_select(self) -> None:
        if (key := self.cursor_key) is not None:
            self.post_message(self.RowSelected(self, key))

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            x = event.x + int(self.scroll_x)
            for column in (self.columns[i] for i in self._shown):
                x -= column.width + 2
                if x < 0:
                    self.post_message(self.HeaderSelected(self, column.key))
                    return
            return
        row = int(self.scroll_y) + event.y - 1
        if 0 <= row < len(self._order):
            self.cursor_row = row
            if event.chain > 1:
                self.action_select()

    # --- drawing

    def _cell_strip(self, value: Cell, width: int) -> Strip:
        text = _cell_text(value, width)
        text.pad(1)
        return Strip(list(text.render(self.app.console)), width + 2)

    def _render_row(self, key: str, cells: Sequence[Cell], style: Style) -> Strip:
        """A row's line: each cell drawn once per value (unchanged cells are reused), then the row style."""
        strips = []
        for index in self._shown:
            column, value = self.columns[index], cells[index]
            cached = self._cell_strips.get((key, index))
            if cached is not None and cached[0] is value:
                strips.append(cached[1])
                continue
            strip = self._cell_strip(value, column.width)
            self._cell_strips[(key, index)] = (value, strip)
            strips.append(strip)
        return Strip.join(strips).apply_style(style)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        scroll_x = int(self.scroll_x)
        if y == 0:
            style = self.get_component_rich_style("keyed-table--header")
            labels = [self._labels[c.key] for c in self.columns]
            strip = self._render_row("\0header", labels, style)
        else:
            row = int(self.scroll_y) + y - 1
            if row >= len(self._order):
                return Strip.blank(width, self.rich_style)
            key = self._order[row]
            state = (row == self.cursor_row, row % 2 == 1)
            cached = self._lines.get(key)
            if cached is not None and cached[0] == state:
                strip = cached[1]
            else:
                if state[0]:
                    style = self.get_component_rich_style("keyed-table--cursor")
                else:
                    style = self.get_component_rich_style("keyed-table--odd" if state[1] else "keyed-table--even")
                strip = self._render_row(key, self._cells(key), style)
                self._lines[key] = (state, strip)
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self._width

    def sort_keys(self, key: Callable[[str], Any], *, reverse: bool = False) -> None:
        """Reorder the visible rows."""
        self.show(sorted(self._order, key=key, reverse=reverse))
