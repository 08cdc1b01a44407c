"""Repacking a few bins at a time: the one large-neighbourhood search both packers use.

A round takes the least filled bins plus a few others at random, asks the caller's exact
solver to pack their contents again, and keeps the answer when it needs fewer bins. Rounds
are counted, not timed, and the random choice is seeded, so the same input and seed give the
same bins (the wall clock only cuts the search short on an overloaded machine, see `Budget`).

A "bin" is whatever the caller packs: a host with its replica counts (`solve`), or an
anonymous bin of item counts (`arcflow`). The caller's solver returns the new bins for the
chosen ones, or None when it found nothing (or knows there is nothing to find).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from core.optimizer.cpsat import Budget

Bin = TypeVar("Bin")


@dataclass(frozen=True, slots=True)
class Neighbourhood:
    """How large a round is and how long it may search; each packer sets its own (see there why)."""

    rounds: int
    loose: int  # least filled bins (not full) per round
    others: int  # further bins per round, at random
    seconds: float  # at most, per round, of the caller's time limit
    patience: int | None = None  # stop after this many rounds in a row that free nothing (None: never)


Resolve = Callable[[list[Bin], Budget, int], Sequence[Bin] | None]  # (chosen bins, budget, seed) → new bins


def repack(
    bins: Sequence[Bin],
    *,
    fill: Callable[[Bin], float],
    resolve: Resolve[Bin],
    size: Neighbourhood,
    lb: int,
    budget: Budget,
    seed: int,
) -> list[Bin]:
    """Fewer (or the same) bins holding the same contents. `fill` is a bin's filled share, 1.0 when full."""
    rng = random.Random(seed)
    bins = list(bins)
    idle = 0
    for round_no in range(size.rounds):
        if len(bins) <= lb or budget.left() <= 0 or (size.patience is not None and idle >= size.patience):
            break
        filled = [fill(b) for b in bins]
        by_fill = sorted(range(len(bins)), key=lambda i: (filled[i], i))
        loose = [i for i in by_fill if filled[i] < 1.0][: size.loose]
        others = [i for i in range(len(bins)) if i not in loose]
        chosen = loose + rng.sample(others, min(len(others), size.others))
        found = resolve([bins[i] for i in chosen], budget.share(1.0, at_most=size.seconds), seed + round_no)
        idle += 1
        if found is not None and len(found) < len(chosen):
            taken = set(chosen)
            bins = [b for i, b in enumerate(bins) if i not in taken] + list(found)
            idle = 0
    return bins
