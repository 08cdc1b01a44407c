"""The vector-packing heuristic families of the literature, as warm starts for the counts model.

Panigrahy et al. ("Heuristics for Vector Bin Packing", 2011) and Mommessin, Erlebach &
Shakhlevich ("Classification and evaluation of the algorithms for vector bin packing", 2025)
found no single heuristic best: which one wins depends on the instance. So `solve` runs all of
these (each a few milliseconds: numpy over hosts or services) and keeps the best as its
incumbent; the CP-SAT search then starts from a packing no worse than any family's here.

* item-centric first fit decreasing (FFD): items sorted by a size measure, each to the first
  host with room; measures sum, max, product and L2 norm of the item's share of a host, each
  unweighted, weighted by the mean demand per dimension (a scarce dimension counts more) and by
  its reciprocal (the Vectorpack library's "ReciprocAvg");
* item-centric best fit decreasing (BFD): same orders, each item to the used host it leaves
  the least room on (the same measure applied to the room left);
* bin-centric (BC): one host at a time, filled with the item that fits best, by the largest dot
  product of item and room left, or by the smallest L2 distance between them; weights none,
  the mean demand, its reciprocal, or the demand still to place (recomputed at each new host).

Sizes are shares of the mean host capacity per dimension, as in `greedy.size_key`. They apply
to "fewest hosts" problems where no rule links hosts and nothing runs (`hosts_independent`):
each respects every host's bound `ub` (require, state, max_per_host, fit); spread, avoid and
moves are the counts model's and greedy's business. Everything is deterministic: ties go to the
lower service and the earlier host.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import numpy.typing as npt

from core.optimizer.compiled import Compiled, Counts, hosts_independent

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

MEASURES = ("sum", "max", "prod", "l2")
MAX_WORK = 5_000_000  # replicas x (services + hosts) beyond which the families cost more than they help


def applies(c: Compiled) -> bool:
    """True when the families may run: nothing links hosts or runs yet, and the work stays small."""
    total = sum(c.replicas)
    return bool(total) and hosts_independent(c) and total * (c.n_services + c.n_hosts) <= MAX_WORK


class _Shape:
    """The problem as arrays: demand and capacity per dimension, host order, per-host bounds."""

    def __init__(self, c: Compiled) -> None:
        self.c = c
        self.demand: Ints = np.array(c.demand, dtype=np.int64).reshape(c.n_services, len(c.dims))
        self.cap: Ints = np.array(c.cap, dtype=np.int64).reshape(c.n_hosts, len(c.dims))
        mean_cap = np.maximum(1.0, self.cap.mean(axis=0)) if c.n_hosts else np.ones(len(c.dims))
        self.share: Floats = self.demand / mean_cap  # an item's share of a typical host
        self.mean_cap = mean_cap
        self.ub: Ints = np.array(c.ub, dtype=np.int64).reshape(c.n_services, c.n_hosts)
        self.replicas: Ints = np.array(c.replicas, dtype=np.int64)
        total = np.maximum(1, self.replicas.sum())
        self.avg: Floats = (self.share * self.replicas[:, None]).sum(axis=0) / total
        size = (self.cap / mean_cap).sum(axis=1)
        self.host_order = sorted(range(c.n_hosts), key=lambda h: (-size[h], h))  # as greedy: largest first


def _size(share: Floats, w: Floats, measure: str) -> Floats:
    """Size of each row of `share` (items, or room left) under weights `w`."""
    v = share * w
    if measure == "sum":
        return v.sum(axis=1)
    if measure == "max":
        return v.max(axis=1)
    if measure == "prod":
        return np.prod(share + 1e-9, axis=1) * np.prod(w)
    return np.sqrt((v * v).sum(axis=1))


def _fits(demand: Ints, residual: Ints) -> Ints:
    """How many of an item (`demand` per dimension) fit into each row of `residual`."""
    need = demand > 0
    if not need.any():
        return np.full(residual.shape[0], 2**62, dtype=np.int64)
    return (residual[:, need] // demand[need]).min(axis=1)


def item_centric(p: _Shape, measure: str, w: Floats, *, best_fit: bool) -> Counts:
    """FFD (`best_fit` False) or BFD by `measure` under weights `w`.

    Hosts are taken in host order, so the used ones lie before `reach`; only that window is
    searched unless nothing in it fits (then the first host after it that fits opens).
    """
    c = p.c
    order = np.array(p.host_order, dtype=np.int64)
    residual = p.cap[order].copy()  # by position in host order
    ub = p.ub[:, order]
    x = np.zeros((c.n_services, c.n_hosts), dtype=np.int64)
    used = np.zeros(c.n_hosts, dtype=bool)
    reach = 1
    size = _size(p.share, w, measure)
    for s in sorted(range(c.n_services), key=lambda s: (-size[s], s)):
        left = int(p.replicas[s])
        while left:
            room = np.minimum(_fits(p.demand[s], residual[:reach]), ub[s, :reach] - x[s, :reach])
            ok = room > 0
            if best_fit and (ok & used[:reach]).any():
                ok &= used[:reach]
                after = residual[:reach] - p.demand[s]  # room left by one more replica
                slack = np.where(ok, _size(after / p.mean_cap, w, measure), np.inf)
                i, n = int(np.argmin(slack)), 1
            elif ok.any():
                i = int(np.argmax(ok))
                n = min(left, int(room[i]))
            else:
                beyond = np.minimum(_fits(p.demand[s], residual[reach:]), ub[s, reach:] - x[s, reach:])
                if not (beyond > 0).any():
                    break
                i = reach + int(np.argmax(beyond > 0))
                n = min(left, int(beyond[i - reach]))
            x[s, i] += n
            residual[i] -= p.demand[s] * n
            used[i] = True
            reach = max(reach, min(c.n_hosts, i + 2))
            left -= n
    out = np.zeros_like(x)
    out[:, order] = x
    return out.tolist()


def bin_centric(p: _Shape, score: str, weights: str) -> Counts:
    """Fill one host at a time (host order) with the best-scoring item that fits, one replica at a time."""
    c = p.c
    x = np.zeros((c.n_services, c.n_hosts), dtype=np.int64)
    left = p.replicas.copy()
    for h in p.host_order:
        if not left.any():
            break
        residual = p.cap[h].copy()
        if weights == "left":
            w = (p.share * left[:, None]).sum(axis=0) / max(1, int(left.sum()))
        elif weights == "recip":
            w = np.where(p.avg > 0, 1.0 / np.maximum(p.avg, 1e-12), 0.0)
        else:
            w = p.avg if weights == "avg" else np.ones(len(c.dims))
        while True:
            need = p.demand > 0
            ratio = np.where(need, residual // np.maximum(p.demand, 1), 2**62)
            room = np.minimum(np.minimum(ratio.min(axis=1), p.ub[:, h] - x[:, h]), left)
            ok = room > 0
            if not ok.any():
                break
            r = residual / p.mean_cap
            if score == "dot":
                value = np.where(ok, (p.share * r * w).sum(axis=1), -np.inf)
                s = int(np.argmax(value))
            else:
                gap = (r - p.share) * w
                value = np.where(ok, (gap * gap).sum(axis=1), np.inf)
                s = int(np.argmin(value))
            x[s, h] += 1
            left[s] -= 1
            residual -= p.demand[s]
    return x.tolist()


def heuristics(c: Compiled) -> list[tuple[str, Callable[[], Counts]]]:
    """Every family member by name, not yet run (empty when `applies(c)` is False)."""
    if not applies(c):
        return []
    p = _Shape(c)
    ones = np.ones(len(c.dims))
    recip = np.where(p.avg > 0, 1.0 / np.maximum(p.avg, 1e-12), 0.0)
    out: list[tuple[str, Callable[[], Counts]]] = []
    for fit in (False, True):
        for measure in MEASURES:
            for wname, w in (("1", ones), ("avg", p.avg), ("recip", recip)):
                if measure == "prod" and wname != "1":
                    continue  # weights scale a product by a constant: the same order
                name = f"{'bfd' if fit else 'ffd'}-{measure}-{wname}"
                out.append((name, partial(item_centric, p, measure, w, best_fit=fit)))
    for score in ("dot", "l2"):
        for wname in ("1", "avg", "recip", "left"):
            out.append((f"bc-{score}-{wname}", partial(bin_centric, p, score, wname)))
    return out


def family_starts(c: Compiled) -> list[Counts]:
    """The packing of every family member (see `heuristics`); the caller keeps the best."""
    return [run() for _, run in heuristics(c)]
