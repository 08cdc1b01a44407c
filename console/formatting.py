"""Small text renderings shared by the screens: bars, sparklines, ages, clock times."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.text import Text

from core.sanitize import printable
from core.units import human_cpu, human_size

_EIGHTHS = " ▏▎▍▌▋▊▉█"
_SPARKS = "▁▂▃▄▅▆▇█"


def literal(value: object, style: str = "") -> Text:
    """Text a host supplied (a replica name, an error, an event quoting one) as a cell or a line: never parsed
    as markup, so `[bold red]` shows as written, and with control and bidi characters made visible."""
    return Text(printable(value), style=style)


def cut(value: object, width: int, style: str = "") -> Text:
    """Host-supplied or long text for a fixed-width cell: cut to `width` with a visible `…` (Enter shows it whole)."""
    text = value.copy() if isinstance(value, Text) else literal(value, style)
    text.truncate(max(1, width), overflow="ellipsis")
    return text


def level_style(fraction: float) -> str:
    """Green while there is room, yellow when tight, red when full or over."""
    if fraction >= 0.9:
        return "bold red"
    if fraction >= 0.7:
        return "yellow"
    return "green"


def bar(used: float, capacity: float, width: int = 8) -> Text:
    """`used` of `capacity` as a horizontal bar in eighth-cell steps; over-full bars are red and full."""
    fraction = used / capacity if capacity > 0 else (1.0 if used > 0 else 0.0)
    eighths = round(min(fraction, 1.0) * width * 8)
    full, part = divmod(eighths, 8)
    filled = "█" * full + (_EIGHTHS[part] if part else "")
    text = Text()
    text.append(filled, style=level_style(fraction))
    text.append("░" * (width - len(filled)), style="grey37")
    return text


def cpu_bar(used: int, capacity: int, width: int = 8) -> Text:
    """Millicores requested of capacity: a bar and `2.5/4.0`."""
    text = bar(used, capacity, width)
    text.append(f" {human_cpu(used)}/{human_cpu(capacity)}")
    return text


def mem_bar(used: int, capacity: int, width: int = 8) -> Text:
    """Bytes requested of capacity: a bar and `3.0/8.0G` (GiB)."""
    text = bar(used, capacity, width)
    text.append(f" {used / 1024**3:.1f}/{capacity / 1024**3:.1f}G")
    return text


def sparkline(samples: Sequence[float], width: int, top: float = 100.0) -> str:
    """The last `width` samples (0..top) as block characters, right-aligned."""
    recent = list(samples)[-width:]
    marks = "".join(_SPARKS[min(len(_SPARKS) - 1, max(0, int(s / top * len(_SPARKS))))] for s in recent)
    return marks.rjust(width)


def age(seconds: float | None) -> str:
    """A duration as the one unit an operator reads at a glance: `4s`, `3m`, `2h`, `5d`."""
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def clock(at: float) -> str:
    """Unix seconds as local wall-clock `HH:MM:SS`."""
    return time.strftime("%H:%M:%S", time.localtime(at))


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}%"


def size(value: int | None) -> str:
    return "—" if value is None else human_size(value)


def cores(millicores: int | None) -> str:
    return "—" if millicores is None else human_cpu(millicores)
