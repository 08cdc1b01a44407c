"""How many CP-SAT searches run at once: `[policy] solver_workers`, or the cores available.

Each worker is a single-thread search with its own seed under a deterministic budget (see
`cpsat.run`), so a plan depends on the input, the seed and the number of workers, not on the
machine's speed. Two machines with different core counts therefore agree on a plan only when
`solver_workers` is set to the same value on both. More workers than free cores would let the
wall-clock safety limit cut searches short (and then plans may differ between runs), so the
default never exceeds the cores this process may use.
"""

from __future__ import annotations

import os

DEFAULT_MAX = 8  # each worker holds its own copy of the model: a large fleet on a large host should not take 64


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def solver_workers(configured: int | None) -> int:
    """The configured number of workers, or the cores available, at most DEFAULT_MAX."""
    if configured is not None:
        return configured
    return max(1, min(DEFAULT_MAX, available_cores()))
