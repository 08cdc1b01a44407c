"""Parsing and formatting of cpu, memory and duration quantities.

The solver needs integers, so cpu is held in millicores and memory in bytes.
Every place that reads or prints a quantity goes through this module.
"""

from __future__ import annotations

import math
import re

_CPU_RE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(m?)\s*$")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([KMGTP]?i?B?|[kmgtp]i?b?)\s*$")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$")

_SIZE_FACTORS = {
    "": 1,
    "B": 1,
    "K": 1000,
    "KB": 1000,
    "M": 1000**2,
    "MB": 1000**2,
    "G": 1000**3,
    "GB": 1000**3,
    "T": 1000**4,
    "TB": 1000**4,
    "P": 1000**5,
    "PB": 1000**5,
    "KI": 1024,
    "KIB": 1024,
    "MI": 1024**2,
    "MIB": 1024**2,
    "GI": 1024**3,
    "GIB": 1024**3,
    "TI": 1024**4,
    "TIB": 1024**4,
    "PI": 1024**5,
    "PIB": 1024**5,
}
_DURATION_FACTORS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class UnitError(ValueError):
    """A quantity that cannot be read; the message says what would be valid."""


def parse_cpu(value: object) -> int:
    """Cores as a number (`2`, `0.5`) or millicores as a string (`"500m"`) → millicores."""
    if isinstance(value, bool):
        raise UnitError(f'{value!r} is not a cpu amount (use e.g. 0.5, 2 or "500m")')
    if isinstance(value, int | float):
        text = repr(float(value)) if isinstance(value, float) else str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise UnitError(f'{value!r} is not a cpu amount (use e.g. 0.5, 2 or "500m")')
    match = _CPU_RE.match(text)
    if not match or (isinstance(value, float) and not math.isfinite(value)):
        raise UnitError(f'{value!r} is not a cpu amount (use e.g. 0.5, 2 or "500m")')
    number, milli = match.groups()
    millicores = float(number) if milli else float(number) * 1000
    if millicores != int(millicores):
        raise UnitError(f'{value!r} is finer than a millicore (use e.g. "250m")')
    return int(millicores)


def format_cpu(millicores: int) -> str:
    """Millicores → the shortest string that parse_cpu reads back exactly."""
    if millicores % 1000 == 0:
        return str(millicores // 1000)
    return f"{millicores}m"


def parse_size(value: object) -> int:
    """`512MiB`, `2GiB`, `1.5G`, `1000` (bytes) → bytes."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise UnitError(f'{value!r} is not a size (use e.g. "512MiB" or "2GiB")')
    if isinstance(value, int):
        if value < 0:
            raise UnitError(f'{value!r} is not a size (use e.g. "512MiB" or "2GiB")')
        return value
    match = _SIZE_RE.match(value)
    if not match:
        raise UnitError(f'{value!r} is not a size (use e.g. "512MiB" or "2GiB")')
    number, unit = match.groups()
    factor = _SIZE_FACTORS.get(unit.upper())
    if factor is None:
        raise UnitError(f"{value!r} has an unknown unit (use B, KiB, MiB, GiB, TiB or K, M, G, T)")
    size = float(number) * factor
    if size != int(size):
        raise UnitError(f"{value!r} is not a whole number of bytes")
    return int(size)


def format_size(size: int) -> str:
    """Bytes → the largest binary unit that represents it exactly (`"1536MiB"`)."""
    for unit, factor in (("PiB", 1024**5), ("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


def human_size(size: int) -> str:
    """Bytes → a short approximate label for tables (`"1.5GiB"`)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f}{unit}" if unit == "B" or value >= 100 else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_cpu(millicores: int) -> str:
    """Millicores → cores with one decimal for tables (`"3.5"`)."""
    return f"{millicores / 1000:.1f}"


def parse_quantity(value: object) -> int:
    """A further resource dimension (gpu, …): a non-negative whole number."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UnitError(f"{value!r} is not a whole number of units (use e.g. 1 or 8)")
    return value


def parse_duration(value: object) -> float:
    """`3`, `2.5`, `"3s"`, `"500ms"`, `"1m"` → seconds."""
    if isinstance(value, bool):
        raise UnitError(f'{value!r} is not a duration (use e.g. 3, "500ms" or "1m")')
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise UnitError(f'{value!r} is not a duration (use e.g. 3, "500ms" or "1m")')
        return float(value)
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match:
            number, unit = match.groups()
            return float(number) * _DURATION_FACTORS[unit]
    raise UnitError(f'{value!r} is not a duration (use e.g. 3, "500ms" or "1m")')
