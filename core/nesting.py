"""How deeply a parsed document nests, for the readers of files a person or a hostile host may have written."""

from __future__ import annotations

from typing import Any


def deeper_than(value: Any, limit: int) -> bool:
    """True when `value` nests tables/arrays more than `limit` levels; counted without recursion, so a
    hostile document cannot exhaust the stack, and it stops as soon as the limit is passed."""
    todo = [(value, 0)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict | list):
            if level + 1 > limit:
                return True
            todo.extend((v, level + 1) for v in (item.values() if isinstance(item, dict) else item))
    return False
