"""Failover plans made ahead: one per host and one per value of each label a service spreads over, and
their refresh when the fleet moves, redoing only the plans whose neighbourhood changed.

Which labels get a plan per value: every label a service spreads over (`spread_labels`),
since spreading over a label is how a service asks to survive losing one of its values.

A plan's neighbourhood is its lost hosts and the hosts it moves replicas to. When none of them changed
(state, capacity, labels, what runs there), the plan still holds exactly: the same replicas are displaced
and its targets have the same room, counts and neighbours. It may no longer be the plan a fresh pass
would pick (another host may have become fuller), which is the price of not redoing 1,000 plans because
one host moved. A plan that leaves replicas unplaced or moves others is always redone: room freed
anywhere may save it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from core.model import FailoverPlan, Placement, ReplicaId, Service
from core.optimizer.failover import FailoverContext
from core.optimizer.problem import PlacementProblem


@dataclass(frozen=True, slots=True)
class FailoverSummary:
    """Can the cluster lose any one host (N+1)? any one value of each label (e.g. a zone, a rack)?"""

    n_plus_one: bool
    label_safe: bool | None  # None when no plan per label value was made
    hosts_at_risk: tuple[str, ...]  # hosts whose loss leaves replicas unplaced
    values_at_risk: tuple[str, ...]  # "label=value" (e.g. "zone=z1") whose loss leaves replicas unplaced


@dataclass(frozen=True, slots=True)
class FailoverBook:
    """Failover plans and what they were made from, for the next `refresh`."""

    problem: PlacementProblem
    on_host: Mapping[str, frozenset[ReplicaId]]  # host → the replicas its plan displaces
    labels: tuple[str, ...]
    plans: tuple[FailoverPlan, ...]
    remade: int  # plans this refresh computed (the others were kept)


def spread_labels(services: Iterable[Service]) -> tuple[str, ...]:
    """Every label some service spreads over, sorted: the labels a failover plan per value is made for."""
    return tuple(sorted({s.spread_over for s in services if s.spread_over is not None}))


def failover_plans(
    problem: PlacementProblem, placement: Placement, *, labels: Iterable[str] | None = None
) -> tuple[FailoverPlan, ...]:
    """One plan per host (in problem order), then for each of `labels` (in order; by default
    `spread_labels` of the problem's services) one plan per value of it (sorted)."""
    return refresh_failover(None, problem, placement, labels=labels).plans


def refresh_failover(
    book: FailoverBook | None, problem: PlacementProblem, placement: Placement, *, labels: Iterable[str] | None = None
) -> FailoverBook:
    """`failover_plans` for `problem` and `placement`, keeping the plans of `book` whose neighbourhood did not
    change (all are made anew without a book, or when the services, the hosts listed or the labels differ)."""
    ctx = FailoverContext(problem, placement)
    wanted = spread_labels(problem.services) if labels is None else tuple(labels)
    on_host = {spec.name: frozenset(ctx.on_host[h]) for h, spec in enumerate(problem.hosts)}
    changed = _changed(book, problem, on_host, wanted)
    kept = {(p.scope, p.target): p for p in book.plans} if book is not None and changed is not None else {}
    degraded = tuple(sorted(ctx.degraded))
    plans: list[FailoverPlan] = []
    remade = 0

    def plan(lost: Sequence[int], scope: str, target: str) -> None:
        nonlocal remade
        old = kept.get((scope, target))
        names = tuple(problem.hosts[h].name for h in lost)
        if (
            old is not None
            and changed is not None
            and old.lost_hosts == names
            and not old.unplaced
            and not old.others_moved
            and changed.isdisjoint(names)
            and changed.isdisjoint(old.moves.values())
        ):
            plans.append(old if old.degraded == degraded else replace(old, degraded=degraded))
            return
        remade += 1
        plans.append(ctx.plan(lost, scope, target))

    for h, spec in enumerate(problem.hosts):
        plan([h], "host", spec.name)
    for label in wanted:
        values = sorted({spec.labels[label] for spec in problem.hosts if label in spec.labels})
        for value in values:
            plan([h for h, spec in enumerate(problem.hosts) if spec.labels.get(label) == value], label, value)
    return FailoverBook(problem, on_host, wanted, tuple(plans), remade)


def _changed(
    book: FailoverBook | None,
    problem: PlacementProblem,
    on_host: Mapping[str, frozenset[ReplicaId]],
    labels: tuple[str, ...],
) -> set[str] | None:
    """The hosts whose state, capacity, labels or replicas differ from `book`'s; None: nothing can be kept."""
    if book is None or book.labels != labels:
        return None
    before = book.problem
    if before.services != problem.services or before.strategy != problem.strategy:
        return None
    if [h.name for h in before.hosts] != [h.name for h in problem.hosts]:
        return None
    return {
        now.name
        for old, now in zip(before.hosts, problem.hosts, strict=True)
        if old != now or book.on_host.get(now.name) != on_host.get(now.name)
    }


def summarize(plans: Sequence[FailoverPlan]) -> FailoverSummary:
    hosts = [p for p in plans if p.scope == "host"]
    values = [p for p in plans if p.scope != "host"]
    return FailoverSummary(
        n_plus_one=all(p.survives for p in hosts),
        label_safe=all(p.survives for p in values) if values else None,
        hosts_at_risk=tuple(p.target for p in hosts if not p.survives),
        values_at_risk=tuple(f"{p.scope}={p.target}" for p in values if not p.survives),
    )
