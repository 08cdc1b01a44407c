"""Placement optimizer: pure functions from (services, hosts, what runs now) to a placement.

No I/O, no globals; the only clock read is the solver's wall-clock budget.
"""

from core.optimizer.bounds import lower_bound
from core.optimizer.failover import failover_for
from core.optimizer.failover_book import (
    FailoverBook,
    FailoverSummary,
    failover_plans,
    refresh_failover,
    spread_labels,
    summarize,
)
from core.optimizer.problem import HostSpec, PlacementProblem, PlacementResult, unplannable
from core.optimizer.solve import greedy, solve
from core.optimizer.workers import solver_workers

__all__ = [
    "FailoverBook",
    "FailoverSummary",
    "HostSpec",
    "PlacementProblem",
    "PlacementResult",
    "failover_for",
    "failover_plans",
    "greedy",
    "lower_bound",
    "refresh_failover",
    "solve",
    "solver_workers",
    "spread_labels",
    "summarize",
    "unplannable",
]
