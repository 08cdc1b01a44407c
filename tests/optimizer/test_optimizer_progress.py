"""solve(progress=…) reports the best placement and the bound as the stages go, ending at the result."""

from __future__ import annotations

import itertools

from core.model import Resources, Service
from core.optimizer import HostSpec, PlacementProblem, solve


def test_progress_reports_end_at_the_result() -> None:
    hosts = tuple(HostSpec(f"h{i}", Resources(1000, 1000)) for i in range(8))
    # sizes that first-fit packs badly (3 × 400 + 3 × 300 + 3 × 300 fit 3 hosts exactly)
    services = (
        Service("a", "true", 3, Resources(400, 100)),
        Service("b", "true", 6, Resources(300, 100)),
    )
    reports: list[tuple[int, int | None]] = []
    result = solve(
        PlacementProblem(hosts, services), time_limit=2.0, workers=1, progress=lambda b, lb: reports.append((b, lb))
    )
    assert reports, "no progress was reported"
    assert reports[-1] == (result.hosts_used, result.lower_bound)
    assert all(later[0] <= earlier[0] for earlier, later in itertools.pairwise(reports))
    assert all(lb is None or lb <= best for best, lb in reports)


def test_a_repack_frees_hosts_that_fewest_moves_keeps() -> None:
    from core.model import Placement, ReplicaId

    hosts = tuple(HostSpec(f"h{i}", Resources(1000, 1000)) for i in range(4))
    services = (Service("w", "true", 4, Resources(500, 100)),)
    spread = Placement({ReplicaId("w", i): f"h{i}" for i in range(4)})  # fits on 2 hosts, runs on 4
    problem = PlacementProblem(hosts, services, current=spread)
    steady = solve(problem, time_limit=2.0, workers=1)
    assert steady.hosts_used == 4 and steady.placement == spread  # moves come first: nothing moves
    repacked = solve(problem, time_limit=2.0, workers=1, moves_first=False)
    assert repacked.hosts_used == 2 and repacked.lower_bound == 2
    stayed = sum(1 for r, h in repacked.placement.assignments.items() if spread.host_of(r) == h)
    assert stayed == 2  # the two replicas on the hosts that remain did not move
