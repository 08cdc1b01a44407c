"""Bin patterns for one-dimensional packing: which items one bin may hold, and the best of them.

A pattern is how many items of each type one bin holds (`pattern[t] * sizes[t]` summed is at most
the capacity). Column generation prices patterns against item values (the LP's duals): the most
valuable pattern is a bounded knapsack, solved here exactly by dynamic programming over loads.
Bounded counts are split into powers of two (1, 2, 4, …, rest), so each piece is a 0/1 item and a
type with n copies costs log2(n) passes instead of n. numpy does one pass over all loads at once,
which keeps a capacity of 1,000 at a few milliseconds per pricing in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Pattern = tuple[int, ...]

# Values closer than this count as equal: the duals come from a floating-point LP.
EPS = 1e-9


# Above this many DP cells per pricing (Scholl's set 3: capacity 100,000 and 200 sizes, 2e7) one
# pricing takes a quarter of a second here; such instances are priced on a coarser grid of
# loads, aiming at GRID_CELLS cells.
MAX_EXACT_CELLS = 4_000_000
GRID_CELLS = 500_000


@dataclass(frozen=True, slots=True)
class Priced:
    value: float  # the best value; with a grain > 1 an upper bound on it
    pattern: Pattern  # a pattern that fits; the best one when the grain is 1
    cells: int  # work done: DP cells updated (the deterministic cost of this pricing)


def pricing_cells(sizes: Sequence[int], counts: Sequence[int], capacity: int) -> int:
    """DP cells one exact pricing may update: (capacity + 1) per power-of-two piece of every type."""
    pieces = sum(min(n, capacity // w).bit_length() for w, n in zip(sizes, counts, strict=True) if n and w <= capacity)
    return pieces * (capacity + 1)


def grain_for(sizes: Sequence[int], counts: Sequence[int], capacity: int) -> int:
    """1 (exact pricing) unless that is too much work; then the coarsest grid step that keeps to GRID_CELLS."""
    cells = pricing_cells(sizes, counts, capacity)
    return 1 if cells <= MAX_EXACT_CELLS else -(-cells // GRID_CELLS)


def load(pattern: Sequence[int], sizes: Sequence[int]) -> int:
    return sum(n * w for n, w in zip(pattern, sizes, strict=True))


def best_pattern(
    sizes: Sequence[int], bounds: Sequence[int], values: Sequence[float], capacity: int, *, grain: int = 1
) -> Priced:
    """The pattern of largest total value with at most `bounds[t]` items of type t.

    Only types of positive value take part: the others add nothing. With `grain` > 1 the DP runs
    on loads rounded down to multiples of `grain` (sizes w // grain, capacity C // grain): every
    pattern that fits still fits there, so the value found is an upper bound on the best one (as
    Farley's bound needs); the pattern found may be a little too large, and then the items of
    least value per size are dropped until it fits.
    """
    true_sizes, true_capacity = sizes, capacity
    sizes, capacity = [w // grain for w in sizes], capacity // grain
    pieces: list[tuple[int, int]] = []  # (type, copies)
    for t, (w, n, v) in enumerate(zip(true_sizes, bounds, values, strict=True)):
        if v <= EPS or n <= 0 or w > true_capacity:
            continue
        n = min(n, true_capacity // w)
        k = 1
        while n > 0:
            take = min(k, n)
            pieces.append((t, take))
            n -= take
            k *= 2
    width = capacity + 1
    best = np.zeros(width)  # best[c]: most value within load c
    taken = np.zeros((len(pieces), width), dtype=bool)
    for j, (t, k) in enumerate(pieces):
        w, v = sizes[t] * k, values[t] * k
        candidate = best[: width - w] + v
        better = candidate > best[w:] + EPS
        taken[j, w:] = better
        best[w:] = np.where(better, candidate, best[w:])
    pattern = [0] * len(sizes)
    c = capacity
    for j in range(len(pieces) - 1, -1, -1):
        if taken[j, c]:
            t, k = pieces[j]
            pattern[t] += k
            c -= sizes[t] * k
    while load(pattern, true_sizes) > true_capacity:  # only with a grain > 1
        worst = min((t for t, n in enumerate(pattern) if n), key=lambda t: (values[t] / true_sizes[t], t))
        pattern[worst] -= 1
    return Priced(float(best[capacity]), tuple(pattern), len(pieces) * width)


def fill(pattern: Sequence[int], sizes: Sequence[int], bounds: Sequence[int], capacity: int) -> Pattern:
    """`pattern` topped up largest item first with what still fits: a maximal pattern.

    Columns that leave room unused are dominated in a covering LP; filling them costs nothing.
    """
    out = list(pattern)
    room = capacity - load(out, sizes)
    for t in sorted(range(len(sizes)), key=lambda t: (-sizes[t], t)):
        if sizes[t] <= room and out[t] < bounds[t]:
            extra = min(bounds[t] - out[t], room // sizes[t])
            out[t] += extra
            room -= extra * sizes[t]
    return tuple(out)
