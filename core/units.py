"""Parsing and formatting of cpu, memory and duration quantities.

The solver needs integers, so cpu is held in millicores and memory in bytes.
Every place that reads or prints a quantity goes through this module. Numbers
are read as exact fractions, so `"1.5G"` is exactly 1_500_000_000 bytes and no
input, however long, overflows a float.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from fractions import Fraction

_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"
_CPU_RE = re.compile(rf"^\s*{_NUMBER}\s*(m?)\s*$")
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
_SIZE_RE = re.compile(rf"^\s*{_NUMBER}\s*([A-Za-z]*)\s*$")
_DURATION_RE = re.compile(rf"^\s*{_NUMBER}\s*([A-Za-z]*)\s*$")

_BINARY = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
_DECIMAL = {"K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "P": 1000**5}
# Upper-cased unit → factor: `MiB`/`Mi` are binary, `MB`/`M` decimal, `B` or nothing is bytes.
_SIZE_FACTORS = {
    "": 1,
    "B": 1,
    **_DECIMAL,
    **{p + "B": f for p, f in _DECIMAL.items()},
    **{p + "I": f for p, f in _BINARY.items()},
    **{p + "IB": f for p, f in _BINARY.items()},
}
_DURATION_FACTORS = {"": Fraction(1), "ms": Fraction(1, 1000), "s": Fraction(1), "m": Fraction(60), "h": Fraction(3600)}

CPU_EXAMPLES = '0.5, 2 or "500m"'
SIZE_EXAMPLES = '"512MiB", "2GiB" or "1.5G"'
SIZE_UNITS = "B, KiB, MiB, GiB, TiB, PiB (binary) or K, M, G, T, P (decimal)"
DURATION_EXAMPLES = '3, "500ms", "10s", "1m" or "1h"'

# The solver works in 64-bit integers and multiplies amounts by replica counts; 2**53 (8 PiB of
# memory, 9e12 cores) leaves room for that while being far above any real machine.
MAX_AMOUNT = 2**53


class UnitError(ValueError):
    """A quantity that cannot be read; the message says what would be valid."""


def literal(value: object) -> str:
    """A value as it would be written in TOML, so messages quote what the user typed."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # JSON escapes every control character TOML forbids except DEL.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{k if _BARE_KEY_RE.fullmatch(k) else literal(k)} = {literal(v)}" for k, v in value.items())
        return "{ " + ", ".join(pairs) + " }" if value else "{}"
    return str(value)


def _number_text(value: object, what: str, examples: str) -> str:
    """The decimal text of a TOML number or string, or UnitError for other types and non-finite floats."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise UnitError(f"{literal(value)} is not {what} (use e.g. {examples})")
    if isinstance(value, float) and not math.isfinite(value):
        raise UnitError(f"{literal(value)} is not {what} (use e.g. {examples})")
    if isinstance(value, int | float) and value < 0:
        raise UnitError(f"{literal(value)} is negative (use e.g. {examples})")
    if isinstance(value, float):
        # repr is the shortest text that reads back as this float: 0.1 → "0.1", not 0.1000000000000000055…
        return format(Decimal(repr(value)), "f")
    if isinstance(value, str) and value.strip().startswith("-"):
        raise UnitError(f"{literal(value)} is negative (use e.g. {examples})")
    return str(value)


def _bounded(amount: int, value: object, examples: str) -> int:
    if amount > MAX_AMOUNT:
        raise UnitError(f"{literal(value)} is larger than any machine (use e.g. {examples})")
    return amount


def parse_cpu(value: object) -> int:
    """Cores as a number (`2`, `0.5`, `"2"`) or millicores as a string (`"500m"`) → millicores."""
    match = _CPU_RE.match(_number_text(value, "a cpu amount", CPU_EXAMPLES))
    if not match:
        raise UnitError(f"{literal(value)} is not a cpu amount (use e.g. {CPU_EXAMPLES})")
    number, milli = match.groups()
    millicores = Fraction(number) * (1 if milli else 1000)
    if millicores.denominator != 1:
        raise UnitError(f'{literal(value)} is finer than a millicore (use e.g. "250m")')
    return _bounded(int(millicores), value, CPU_EXAMPLES)


def format_cpu(millicores: int) -> str:
    """Millicores → the shortest string that parse_cpu reads back exactly."""
    if millicores % 1000 == 0:
        return str(millicores // 1000)
    return f"{millicores}m"


def parse_size(value: object) -> int:
    """`512MiB`, `2GiB`, `1.5G`, `1000` (bytes) → bytes."""
    if isinstance(value, float):
        raise UnitError(f"{literal(value)} is not a size: give a unit as a string (use e.g. {SIZE_EXAMPLES})")
    match = _SIZE_RE.match(_number_text(value, "a size", SIZE_EXAMPLES))
    if not match:
        raise UnitError(f"{literal(value)} is not a size (use e.g. {SIZE_EXAMPLES})")
    number, unit = match.groups()
    factor = _SIZE_FACTORS.get(unit.upper())
    if factor is None:
        raise UnitError(f'{literal(value)} has an unknown unit "{unit}" (use {SIZE_UNITS})')
    size = Fraction(number) * factor
    if size.denominator != 1:
        raise UnitError(f"{literal(value)} is not a whole number of bytes (use a smaller unit)")
    return _bounded(int(size), value, SIZE_EXAMPLES)


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
    """Millicores → cores, exactly: `3.5`, `0.25`, `0.125`, `4.0` (never 250m rounded to `0.2`)."""
    whole, part = divmod(abs(millicores), 1000)
    decimals = f"{part:03d}".rstrip("0") or "0"
    return f"{'-' if millicores < 0 else ''}{whole}.{decimals}"


def parse_quantity(value: object) -> int:
    """A further resource dimension (gpu, …): a non-negative whole number."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnitError(f"{literal(value)} is not a whole number of units (use e.g. 1 or 8)")
    if value < 0:
        raise UnitError(f"{literal(value)} is negative (use e.g. 1 or 8)")
    return _bounded(value, value, "1 or 8")


def parse_duration(value: object) -> float:
    """`3`, `2.5`, `"3s"`, `"500ms"`, `"1m"`, `"1h"` → seconds."""
    match = _DURATION_RE.match(_number_text(value, "a duration", DURATION_EXAMPLES))
    if not match:
        raise UnitError(f"{literal(value)} is not a duration (use e.g. {DURATION_EXAMPLES})")
    number, unit = match.groups()
    factor = _DURATION_FACTORS.get(unit.lower())
    if factor is None:
        raise UnitError(f'{literal(value)} has an unknown unit "{unit}" (use ms, s, m or h)')
    try:
        return float(Fraction(number) * factor)
    except OverflowError:
        raise UnitError(f"{literal(value)} is too long a duration (use e.g. {DURATION_EXAMPLES})") from None
