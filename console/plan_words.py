"""What a plan's solver status means, in words shared by the console's plan screen and `loadmaster plan`.

Plain strings, no Rich: the CLI and the daemon load no Textual or Rich (tests/test_cli_daemon.py).
"""

from __future__ import annotations

from core.model import Plan, SolverStatus


def solver_words(plan: Plan, repack: str) -> str:
    """What the solver's status means for this plan, after `solver STATUS` (issue 12, item 12).

    OPTIMAL is proven for the plan's own goal — every replica placed, the fewest moves, then the fewest hosts
    among those — while the host bound is for any placement at all, moves or not: so an OPTIMAL plan can use
    more hosts than the bound without a contradiction, and says so instead of printing a gap. `repack`: how
    this front end asks for a plan onto the fewest hosts (`Shift+R`, `plan --repack`)."""
    fewest = plan.lower_bound
    hosts = f"uses {plan.hosts_used} host{'s' if plan.hosts_used != 1 else ''}"
    if plan.status is SolverStatus.INFEASIBLE:
        return f": {_replicas(len(plan.unplaced))} cannot be placed · {hosts}"
    if plan.status is SolverStatus.UNKNOWN:
        if plan.unplaced:
            return f": stopped before every replica was placed ({len(plan.unplaced)} unplaced) · {hosts}"
        return f" ({plan.reason}: not solved) · {hosts}"
    if plan.hosts_used <= fewest:
        return f" · {hosts}, the fewest possible"
    if plan.status is SolverStatus.OPTIMAL:
        goal = "for its goal" if plan.reason == "repack" else "for fewest moves"
        return f" {goal} · {hosts}; {fewest} could hold it all if replicas moved ({repack})"
    return f" (best found in the time limit, not proven) · {hosts}, at most {plan.hosts_used - fewest} above {fewest}"


def _replicas(n: int) -> str:
    return f"{n} replica{'s' if n != 1 else ''}"
