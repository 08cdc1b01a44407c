"""Reading a cluster file's tables while collecting every problem: the field access every section uses."""

from __future__ import annotations

import difflib
import enum
from collections.abc import Callable
from typing import Any, TypeVar

from core.config.values import did_you_mean, got
from core.errors import ConfigProblem
from core.model import CPU, MEM, Resources
from core.units import UnitError, literal, parse_cpu, parse_quantity, parse_size

T = TypeVar("T")


class Missing(enum.Enum):
    """`take`'s default for a required key: a type of its own, so a default of any other type is a T."""

    MISSING = enum.auto()


_MISSING = Missing.MISSING


MISSING = Missing.MISSING


class Reader:
    """Reads one file's tables, collecting every problem instead of stopping at the first."""

    def __init__(self, file: str):
        self.file = file
        self.problems: list[ConfigProblem] = []

    def problem(self, entry: str, field: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.file, entry, field, message))

    def unknown_keys(self, table: dict[str, Any], known: tuple[str, ...], entry: str, what: str = "key") -> None:
        for key in table:
            if key not in known:
                self.problem(entry, key, f"is not a known {what}{did_you_mean(key, known)}")

    def take(
        self,
        table: dict[str, Any],
        key: str,
        entry: str,
        convert: Callable[[Any], T],
        default: T | Missing = MISSING,
        example: str = "",
    ) -> T | None:
        """The converted value of `key`, its default when absent, or None after recording a problem."""
        if key not in table:
            if isinstance(default, Missing):
                self.problem(entry, key, f"is required (e.g. {example})" if example else "is required")
                return None
            return default
        try:
            return convert(table[key])
        except (UnitError, ValueError) as exc:
            self.problem(entry, key, str(exc))
            return None

    def table(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.problem("", key, f"must be a table (write [{key}] above its keys), {got(value)}")
            return {}
        return value

    def entries(self, value: Any, section: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(label, position, table) per element of an array of tables: `hosts "name"` (or `hosts[i]`), `hosts[i]`."""
        if not isinstance(value, list):
            self.problem(
                "", section, f"must be an array of tables (write [[{section}]] above each entry), {got(value)}"
            )
            return []
        out = []
        for i, item in enumerate(value):
            name = item.get("name") if isinstance(item, dict) else None
            position = f"{section}[{i}]"
            entry = f'{section} "{name}"' if isinstance(name, str) and name.strip() else position
            if not isinstance(item, dict):
                self.problem(entry, "", f"must be a table (write [[{section}]] above its keys), {got(item)}")
                continue
            out.append((entry, position, item))
        return out

    def read_resources(
        self,
        t: dict[str, Any],
        field: str,
        entry: str,
        *,
        required: tuple[str, ...] = (),
        dimensions: tuple[str, ...] | None = None,
        forbidden: tuple[str, ...] = (),
    ) -> Resources | None:
        """A `{ cpu = …, mem = …, gpu = … }` table; cpu and mem must be more than zero when `required`.

        `dimensions` limits the keys (a reserve only takes what the host's capacity has);
        otherwise any further key is a new dimension such as gpu, counted in whole units.
        """
        value = t[field]
        if not isinstance(value, dict):
            self.problem(entry, field, f'must be a table like {{ cpu = 4, mem = "8GiB" }}, {got(value)}')
            return None
        before = len(self.problems)
        missing = [d for d in required if d not in value]
        amounts: dict[str, int] = {}
        for key, amount in value.items():
            where = f"{field}.{key}"
            if key in forbidden:
                self.problem(entry, where, f"belongs on the service itself ({key} = {literal(amount)}), not in {field}")
                continue
            close = difflib.get_close_matches(key, missing, n=1)
            if close or (dimensions is not None and key not in dimensions):
                known = missing if close else dimensions or ()
                self.problem(entry, where, f"is not a known dimension{did_you_mean(key, known)}")
                continue
            parse = parse_cpu if key == CPU else parse_size if key == MEM else parse_quantity
            try:
                amounts[key] = parse(amount)
            except UnitError as exc:
                self.problem(entry, where, str(exc))
                continue
            if key in required and amounts[key] <= 0:
                self.problem(entry, where, f"{literal(amount)} must be more than zero")
        if missing and len(self.problems) == before:
            self.problem(entry, field, f'must give {" and ".join(missing)}, e.g. {{ cpu = 4, mem = "8GiB" }}')
        return Resources.of(amounts) if len(self.problems) == before else None

    def read_labels(self, t: dict[str, Any], field: str, entry: str) -> dict[str, str]:
        value = t.get(field, {})
        if not isinstance(value, dict):
            self.problem(entry, field, f'must be a table like {{ zone = "eu-1" }}, {got(value)}')
            return {}
        labels = {}
        for key, label in value.items():
            if isinstance(label, str) and label.strip():
                labels[key] = label
            else:
                self.problem(entry, f"{field}.{key}", f'must be a non-empty string (e.g. {key} = "a"), {got(label)}')
        return labels

    def check_unique(self, named: list[tuple[str, str, str]], what: str) -> None:
        first: dict[str, str] = {}
        for name, entry, position in named:
            if name in first:
                twice = f'"{name}" is declared twice, as {first[name]} and {position}'
                self.problem(entry, "name", f"{twice} ({what} names must be unique)")
            elif name:
                first[name] = position
